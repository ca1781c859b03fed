"""Dial: type a SIP URI (or a peer's name or ZID) and press Enter."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Input, Static

from zcall.tui.screens.base import ZScreen

MAX_TARGET = 256


class DialScreen(ZScreen):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "app.pop_screen", "Back", priority=True)]

    def compose(self) -> ComposeResult:
        yield Static("Dial", classes="title")
        yield Static("A peer's name or ZID, or a SIP URI:", classes="hint")
        yield Input(placeholder="sip:bob@10.0.0.5:5060", id="target", max_length=MAX_TARGET)
        yield Static("Enter calls, Escape goes back.", classes="hint")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted, "#target")
    def _call(self, message: Input.Submitted) -> None:
        target = message.value.strip()
        if not target:
            return
        self.app.pop_screen()
        self.zapp.dial(target)
