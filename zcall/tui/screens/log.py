"""Log: the event stream, one human-readable line per event (model.describe)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Log, Static

from zcall import events
from zcall.tui.screens.base import ZScreen


class LogScreen(ZScreen):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "app.pop_screen", "Back")]

    def compose(self) -> ComposeResult:
        yield Static("Log", classes="title")
        yield Log(id="log", max_lines=1000, auto_scroll=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._shown = 0
        self.refresh_view()

    def refresh_view(self, event: events.Event | None = None) -> None:
        lines = list(self.zapp.view.log)
        log = self.query_one(Log)
        if self._shown > len(lines):  # the bounded log rolled over: start again
            log.clear()
            self._shown = 0
        log.write_lines(lines[self._shown :])
        self._shown = len(lines)
