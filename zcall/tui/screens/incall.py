"""In call: securing → secure, the SAS words large, suite and cache state, verify / differ / mute / volume /
hang up, a quality meter and a call timer. A cache, Hello-hash, fingerprint, identity or channel-binding
mismatch, or a downgrade, turns it into a red alarm."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.reactive import reactive
from textual.widgets import Footer, Static

from zcall.tui.model import CallView
from zcall.tui.screens.base import ZScreen
from zcall.tui.widgets.meter import quality_text
from zcall.tui.widgets.sas import SasWords

ALARM_TEXT = {
    "cache_mismatch": (
        "SECURITY ALARM: this device's secret does not match the one kept from your earlier calls.\n"
        "Someone may be listening in the middle, or the other unit was reset. Your microphone is MUTED.\n"
        "Read the words below to each other by voice. Same words: press Y (or OK) to unmute and trust "
        "them again. Different words: press N (or BACK) to hang up, and do not say anything private."
    ),
    "zrtp_hash_mismatch": (
        "SECURITY ALARM: the call's key exchange does not match what its invitation promised: "
        "the connection was tampered with. The call was ended before any audio was sent.\n"
        "Do not trust this connection. Tell the other person by another way, then call again."
    ),
    "identity_mismatch": (
        "SECURITY ALARM: this is not the device you chose: another unit answered at its address. Your "
        "microphone is MUTED.\nRead the words below to each other by voice. Same words: press Y (or OK) to "
        "talk and trust this unit. Different words: press N (or BACK) to hang up."
    ),
    "fingerprint_mismatch": (
        "SECURITY ALARM: the other end's encryption certificate is not the one its invitation named: "
        "someone may be in the middle. The call was ended before any audio was sent.\n"
        "Do not trust this connection. Tell the other person by another way, then call again."
    ),
    "channel_binding_mismatch": (
        "SECURITY ALARM: the words do not cover this call's encryption: someone between you and the other "
        "unit (the server, or whoever it sends the audio to) can listen. Your microphone is MUTED, and "
        "equal words cannot change that.\nPress H to hang up. Do not say anything private."
    ),
    "downgrade": (
        "SECURITY ALARM: you verified this device, but this call has no words to compare: the server or "
        "someone on the way may be in the middle. Your microphone is ON.\nSay nothing you would not say "
        "in the clear, or press H to hang up."
    ),
}
UNBOUND_HINT = "Equal words cannot make this call safe: its encryption is not the other unit's. H: hang up"
ENDED_MISMATCH_TEXT = (
    "SECURITY ALARM: this device's secret did not match the one kept from your earlier calls, so the call "
    "was ended (no audio was sent). Someone may have been in the middle, or the other unit was reset.\n"
    "Ask the other person by another way whether they reset their unit; then call again and compare the "
    "words before you say anything private. Escape: back."
)
DIFFER_TEXT = (
    "The words differed, so the call was hung up: someone may have been in the middle. Call again and "
    "compare the words; if they differ again, the network is not safe for this call."
)
STATE_TEXT = {
    "dialing": "calling…",
    "ringing": "ringing…",
    "incoming": "incoming",
    "answered": "securing…",
    "secure": "secure",
    "ended": "ended",
}


def clock_text(seconds: float) -> str:
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    return (f"{hours}:" if hours else "") + f"{rest // 60:02d}:{rest % 60:02d}"


class InCallScreen(ZScreen):
    # Most needed first: a narrow console's footer shows as many as fit, from the left.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("h", "hangup", "Hang up"),
        Binding("y", "match", "Match"),
        Binding("enter", "match", "Words match", show=False),
        Binding("n", "differ", "Differ"),
        Binding("m", "mute", "Mute"),
        Binding("up,plus", "volume(1)", "Vol+"),
        Binding("down,minus", "volume(-1)", "Vol-"),
        Binding("escape", "hangup", "Hang up", show=False),
    ]

    call: reactive[CallView | None] = reactive(None, init=False)

    def __init__(self, call_id: str) -> None:
        super().__init__()
        self.call_id = call_id

    def compose(self) -> ComposeResult:
        yield Static("", id="status", classes="title")
        with VerticalScroll(id="body"):
            yield Static("", id="alarm")
            yield Static("", id="warning")
            yield Static("", id="who", classes="line")
            yield SasWords(id="sas")
            yield Static("", id="hint", classes="line")
            yield Static("", id="suite", classes="line")
            yield Static("", id="quality", classes="line")
            yield Static("", id="audio", classes="line")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#sas", SasWords).border_title = "SAS"
        self.watch(self.app, "calls", self._follow)
        self.watch(self.app, "volume", self._show_audio)
        # Who the peer is depends on the trust cache and the LAN list too, not only on the call.
        self.watch(self.app, "records", self._show_again, init=False)
        self.watch(self.app, "peers", self._show_again, init=False)
        if self.zapp.live:
            self.set_interval(1.0, self._tick)

    def _follow(self, calls: dict[str, CallView]) -> None:
        # An ended call leaves the app's list after a while; this screen keeps its last state.
        self.call = calls.get(self.call_id, self.call)

    def _show_again(self) -> None:
        self.watch_call(self.call)

    def _tick(self) -> None:
        if self.call is not None:
            self._status(self.call)

    def keeps_open(self) -> bool:
        """After the call ends, stay if there is a warning the user must read (they leave with Escape)."""
        return self.call is not None and any(
            a.alert in (*ALARM_TEXT, "sas_mismatch") for a in self.call.alerts
        )

    def watch_call(self, call: CallView | None) -> None:
        if call is None:
            return
        self._status(call)
        self._who(call)
        alarm = call.alarm
        alarm_box = self.query_one("#alarm", Static)
        alarm_box.set_class(alarm is not None, "shown")
        if alarm is not None:
            text = ALARM_TEXT.get(alarm.alert, alarm.message)
            if call.ended is not None and alarm.alert == "cache_mismatch":
                text = ENDED_MISMATCH_TEXT
            alarm_box.update(text)
        differ = any(a.alert == "sas_mismatch" for a in call.alerts)
        warning = self.query_one("#warning", Static)
        warning.set_class(differ, "shown")
        warning.update(DIFFER_TEXT if differ else "")
        self._sas(call, compact=alarm is not None)
        self.query_one("#quality", Static).update(quality_text(call.stats))
        self._show_audio()

    def _status(self, call: CallView) -> None:
        """Badge, state and clock, then the peer; the line wraps on a narrow panel rather than cut."""
        text = Text()
        if call.secure is not None:
            text.append(
                " VERIFIED " if call.verified else " NOT VERIFIED ",
                style="bold black on green" if call.verified else "bold black on yellow",
            )
            text.append(" ")
        text.append("ended" if call.ended is not None else STATE_TEXT[call.state])
        if call.state in ("answered", "secure") or call.ended is not None:
            text.append(f" {clock_text(self.zapp.view.elapsed(call))}")
        text.append(f" {'→' if call.direction == 'out' else '←'} {self.zapp.view.who(call).name}")
        if call.ended is not None:
            text.append(f" · {call.ended.reason}")
        self.query_one("#status", Static).update(text)

    def _who(self, call: CallView) -> None:
        """The device as the trust cache knows it once ZRTP proved its ZID, and where it is."""
        who = self.zapp.view.who(call)
        text = Text(who.name, style="bold")
        if who.claimed != who.name:
            text.append(f" (calls itself {who.claimed})")
        if who.standing:
            style = {"verified": "green", "secret MISMATCH": "bold red"}.get(who.standing, "yellow")
            text.append(" · ")
            text.append(who.standing, style=style)
            if who.zid:
                text.append(f" · ZID {who.zid[:8]}")
        elif call.ended is None:
            text.append(" · not identified until the call is secure", style="dim")
        if who.address and who.address != who.name:
            text.append(f" · {who.address}")
        self.query_one("#who", Static).update(text)

    def _sas(self, call: CallView, compact: bool) -> None:
        sas = self.query_one("#sas", SasWords)
        secure = call.secure
        hint = self.query_one("#hint", Static)
        suite = self.query_one("#suite", Static)
        sas.set_class(call.verified, "verified")
        if secure is not None and secure.sas_words is None:  # a phone without ZRTP, through the server
            sas.show((), "B256", compact, blank="no words in this call")
            hint.update("Not verifiable: this phone has no words to compare. Encrypted to the server's peer.")
            if any(a.alert == "downgrade" for a in call.alerts):
                hint.update(Text("Not verifiable: the words did not reach this call.", style="bold red"))
            suite.update(f"DTLS-SRTP {secure.srtp_profile}")
            return
        if secure is None or secure.sas_words is None:
            sas.show((), "B256", compact)
            hint.update("Agreeing keys with the peer; no audio is sent until the call is secure.")
            suite.update("")
            return
        sas.show(secure.sas_words, secure.sas_type or "B256", compact)
        if call.ended is not None:
            hint.update("The call has ended. Escape: back.")
        elif call.unbound:
            hint.update(Text(UNBOUND_HINT, style="bold red"))
        elif call.verified:
            hint.update(Text("Words confirmed: this peer is verified.", style="green"))
        else:
            hint.update(Text("Read your words to each other. Y: same · N: differ", style="bold"))
        parts = (secure.key_agreement, secure.cipher, secure.auth, secure.hash)  # no cipher/auth over DTLS
        keyed = f" over DTLS-SRTP {secure.srtp_profile}" if secure.method == "dtls-srtp" else ""
        suite.update(f"ZRTP {' · '.join(p for p in parts if p)} · cache {secure.cache}{keyed}")

    def _show_audio(self) -> None:
        call = self.call
        if call is None:
            return
        text = Text("mic ")
        if call.ended is not None:
            text.append("off")
        elif call.muted or call.user_muted or call.secure is None:
            text.append("MUTED", style="bold red")
        else:
            text.append("live", style="green")
        text.append(f" · volume {self.zapp.volume}%")
        self.query_one("#audio", Static).update(text)

    # --- keys ---

    def action_match(self) -> None:
        if self.call is not None and self.call.ended is None:
            if self.call.unbound:  # the engine refuses too: said here, without a round trip
                self.notify(UNBOUND_HINT, severity="error")
                return
            self.zapp.words_match(self.call_id)

    def action_differ(self) -> None:
        if self.call is not None and self.call.ended is None:
            self.zapp.words_differ(self.call_id)

    def action_mute(self) -> None:
        if self.call is not None and self.call.ended is None:
            self.zapp.toggle_mute(self.call_id)

    def action_volume(self, steps: int) -> None:
        self.zapp.change_volume(steps)

    def action_hangup(self) -> None:
        if self.call is None or self.call.ended is not None:
            self.app.pop_screen()  # the call is over: Escape leaves the alarm behind
            return
        self.zapp.hangup(self.call_id)
