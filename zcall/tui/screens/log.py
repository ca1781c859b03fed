"""Log: the event stream, one human-readable line per event (model.describe)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, RichLog, Static

from zcall.tui.screens.base import ZScreen


class LogScreen(ZScreen):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self) -> None:
        super().__init__()
        self.written = 0  # the app's line count when this screen last wrote

    def compose(self) -> ComposeResult:
        yield Static("Log", classes="title")
        # Wrapped at words, never cut: a desk unit's console can be 40 columns wide.
        yield RichLog(id="log", max_lines=1000, wrap=True, min_width=20, markup=False, highlight=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.watch(self.app, "logged", self._show_new)

    def _show_new(self, logged: int) -> None:
        lines = list(self.zapp.view.log)
        new = min(logged - self.written, len(lines))  # the bounded log may have forgotten some
        if new > 0:
            log = self.query_one(RichLog)
            for line in lines[-new:]:
                log.write(line)
        self.written = logged
