"""Incoming call: the whole screen, the caller and what we know of them, answer or reject."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Static

from zcall.tui.screens.base import ZScreen

# Before the call is answered nothing is proven: a name is only what the caller says. So the screen says
# which device that name belongs to, and that ZRTP will check it, never "this is a verified device".
TRUST_WORDS = {
    "verified": "the name of a device you verified",
    "known": "the name of a device you know (not verified)",
    "new": "the name of a device seen before",
}


class IncomingScreen(ZScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "answer", "Answer"),
        Binding("a", "answer", "Answer", show=False),
        Binding("escape", "reject", "Reject"),
        Binding("r", "reject", "Reject", show=False),
    ]

    def __init__(self, call_id: str) -> None:
        super().__init__()
        self.call_id = call_id

    def compose(self) -> ComposeResult:
        yield Static("Incoming call", classes="title")
        yield Static("", id="incoming")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.watch(self.app, "calls", self._show)
        self.watch(self.app, "peers", self._show)

    def caller_trust(self, caller: str) -> str | None:
        """What the cache says about a caller whose display name matches a LAN peer or a known device."""
        view = self.zapp.view
        peers = [p for p in view.peers.values() if p.name == caller]
        if len(peers) == 1:  # two units announcing one name: nothing is said about either
            return view.trust_of(peers[0].zid)
        named = [d for d in view.known.values() if d.name == caller]
        return view.trust_of(named[0].zid) if len(named) == 1 else None

    def _show(self) -> None:
        call = self.zapp.calls.get(self.call_id)
        if call is None:
            return
        text = Text("\n((( ringing )))\n\n", style="bold")
        text.append(f"{call.peer}\n", style="bold reverse")
        if call.uri and call.uri != call.peer:  # what it says it is, and where it really calls from
            text.append(f"{call.uri}\n")
        if call.source:
            text.append(f"from {call.source}\n", style="dim")
        text.append("\n")
        trust = self.caller_trust(call.peer)
        if trust is None:
            text.append("a name this unit has not seen before\n", style="dim")
        else:
            text.append(f"{TRUST_WORDS[trust]}\n", style="yellow" if trust != "new" else "")
        text.append("once answered, the key exchange shows which device it is\n", style="dim")
        text.append("\nEnter: answer    Escape: reject")
        self.query_one("#incoming", Static).update(text)

    def action_answer(self) -> None:
        self.zapp.answer(self.call_id)

    def action_reject(self) -> None:
        self.zapp.hangup(self.call_id)
