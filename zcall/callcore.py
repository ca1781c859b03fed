"""The call policy for one call, as a sans-I/O state machine.

Inputs: SIP dialog facts (`sip_*`), key-agreement events (`on_key_event`, one interface for ZRTP and
DTLS-SRTP), the user's commands (answer, reject, hangup, words, mute), media facts (`media_*`) and timers
(`handle_timer(now)` when `get_timer()` is due). Outputs: `next_action()` hands out zcall.actions values —
contract events to emit and effects for the shell (send SIP, open media, install keys, store or roll back a
retained secret, mute). It reads no clock and does no I/O, so the whole policy is tested on a fake clock.

One place decides mute (`_muted`); one table says which state may follow which (`TRANSITIONS`).
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, replace

from zcall import actions as act
from zcall import events
from zcall.calltrust import CallTrust
from zcall.errors import ZcallError
from zcall.events import AlertKind, CallState, Direction, EndCause
from zcall.keying import KeyAlarm, KeyEvent, KeyFailed, KeysReady
from zcall.net import Addr
from zcall.sip import offeranswer, sdp
from zcall.sip.errors import SipParseError

S = CallState
# Which state may follow which (h11 _state.py style): anything else is a bug in the caller.
TRANSITIONS: dict[CallState, frozenset[CallState]] = {
    S.DIALING: frozenset({S.RINGING, S.ANSWERED, S.ENDED}),
    S.RINGING: frozenset({S.ANSWERED, S.ENDED}),
    S.INCOMING: frozenset({S.ANSWERED, S.ENDED}),
    S.ANSWERED: frozenset({S.SECURE, S.ENDED}),
    S.SECURE: frozenset({S.ENDED}),
    S.ENDED: frozenset(),
}

# A final SIP status says why an outgoing call ended.
STATUS_CAUSES: dict[int, EndCause] = {
    486: EndCause.BUSY, 600: EndCause.BUSY, 603: EndCause.DECLINED, 480: EndCause.NO_ANSWER,
    408: EndCause.NO_ANSWER, 487: EndCause.CANCELLED, 404: EndCause.UNREACHABLE, 503: EndCause.UNREACHABLE,
}  # fmt: skip
# How the dialog's end (sip.CallEnded.reason) reads for people and scripts.
DIALOG_ENDS: dict[str, tuple[str, EndCause]] = {
    "bye": ("remote hangup", EndCause.REMOTE_HANGUP),
    "cancelled": ("cancelled by the caller", EndCause.CANCELLED),
}


# The `reason` of a call a key alarm ended (the words scripts have read since the first release).
ALARM_REASONS = {
    AlertKind.ZRTP_HASH_MISMATCH: "zrtp hash mismatch",
    AlertKind.FINGERPRINT_MISMATCH: "dtls fingerprint mismatch",
}
WORDS_DIFFER_TEXT = "The words differ: hung up. This device is not trusted any more."


class Timer(enum.Enum):
    FALLBACK = "fallback"  # a LAN peer that does not ring is called through the server
    RING = "ring"  # an incoming call nobody answers gets 480
    KEYS = "keys"  # ZRTP or DTLS-SRTP must finish in time


class CallCommandError(ZcallError):
    """A user command that does not fit the call's state; the message is for the user."""


@dataclass(frozen=True)
class CallPolicy:
    """The knobs of the policy (from settings)."""

    on_mismatch: str = "continue"  # "hangup": end at once on a cache mismatch; "continue": muted, words asked
    ring_timeout_s: float = 60.0
    keys_deadline_s: float = 20.0
    lan_fallback_s: float = 3.0


class CallCore:
    def __init__(
        self,
        call_id: str,
        direction: Direction,
        peer: str,
        policy: CallPolicy,
        now: float,
        *,
        dtls: bool = False,
        expected_zid: bytes | None = None,
        offer: sdp.SessionDescription | None = None,
        fallback_aor: str | None = None,
        account: str | None = None,
        auto_answer: bool = False,
        unattended_needs_verified: bool = False,
        where: tuple[str, Addr] | None = None,
    ) -> None:
        self.id = call_id
        self.direction: Direction = direction
        self.peer = peer
        self.where = where  # the peer's SIP URI and signalling address, said in every call event
        self.policy = policy
        self.dtls = dtls
        self.trust = CallTrust(peer, expected_zid, account)
        self.state = S.DIALING if direction == "out" else S.INCOMING
        self.offer = offer  # ours (out) or the caller's (in)
        self.local: offeranswer.LocalAudio | None = None
        self.secure: events.Secure | None = None
        self.path: events.MediaPath | None = None  # ICE's selected route, said in the secure event
        self.user_muted = False
        self._held = False
        self._muted_sent: bool | None = None
        self._sdp_version = 1
        self._secure_at: float | None = None
        self._opening = False
        self._unattended = False
        self._fallback_aor = fallback_aor
        self._timers: dict[Timer, float] = {}
        self._actions: deque[act.Action] = deque()
        if direction == "out":
            self._do(act.OpenMedia())
            self._opening = True
            if fallback_aor is not None:
                self._timers[Timer.FALLBACK] = now + policy.lan_fallback_s
        else:
            self._do(act.SendRinging())
            self._emit_state()
            self._timers[Timer.RING] = now + policy.ring_timeout_s
            if auto_answer:
                # Answered by no one: with "verified", only a call that proves both sides verified gets the
                # microphone (a device that merely claims a verified ZID stays muted).
                self._unattended = unattended_needs_verified
                self.answer(now)

    # --- outputs ------------------------------------------------------------------------------------

    def next_event(self) -> act.Action | None:
        """The next thing the shell must do (the core's events are actions)."""
        return self._actions.popleft() if self._actions else None

    def datagrams_to_send(self, now: float) -> tuple[()]:
        return ()  # the shell sends SIP and media; the core only decides

    def get_timer(self) -> float | None:
        return min(self._timers.values()) if self._timers else None

    @property
    def ended(self) -> bool:
        return self.state is S.ENDED

    @property
    def muted(self) -> bool:
        """Whether our microphone is held back: the one place that decides it."""
        unproven = self._unattended and not self.trust.verified
        return self.user_muted or self.trust.alarm or self._held or unproven or self.state is not S.SECURE

    # --- media ---------------------------------------------------------------------------------------

    def media_opened(self, local: offeranswer.LocalAudio, session_id: str, now: float) -> None:
        if self.ended or not self._opening:
            return
        self.local, self._opening = local, False
        if self.direction == "out":
            self.offer = offeranswer.make_offer(local, session_id=session_id, version=1)
            self._do(act.SendInvite(self.offer.serialize()))
            self._emit_state()
            return
        assert self.offer is not None
        try:
            answer = offeranswer.answer(self.offer, local, session_id=session_id, version=1)
            remote = offeranswer.audio_params(self.offer)
        except SipParseError as exc:
            self._do(act.SendReject(exc.status or 488, f"incompatible offer: {exc.reason}"))
            self._end(f"incompatible offer: {exc.reason}", EndCause.FAILED, now)
            return
        self._do(act.SendAnswer(answer.serialize()))
        self._go(S.ANSWERED)
        self._start_keys(remote, now)

    def media_path(self, path: events.MediaPath) -> None:
        """ICE selected the route media takes (host, srflx, prflx or relay), before keys start on it."""
        self.path = path

    def media_failed(self, reason: str, now: float) -> None:
        if self.ended:
            return
        if self.direction == "in":
            self._do(act.SendReject(500, reason))
        self._end(f"media: {reason}", EndCause.MEDIA_FAILED, now)

    # --- SIP ----------------------------------------------------------------------------------------

    def sip_progress(self, status: int, now: float) -> None:
        if status in (180, 183) and self.state is S.DIALING:
            self._timers.pop(Timer.FALLBACK, None)
            self._go(S.RINGING)

    def sip_answered(self, answer_sdp: bytes, now: float) -> None:
        if self.state not in (S.DIALING, S.RINGING):
            return
        self._timers.pop(Timer.FALLBACK, None)
        try:
            remote = offeranswer.audio_params(sdp.parse(answer_sdp), answer_to=self.offer)
        except SipParseError as exc:
            self._hang_up(f"unusable answer: {exc.reason}", EndCause.FAILED, now)
            return
        self._go(S.ANSWERED)
        self._start_keys(remote, now)

    def sip_failed(self, status: int, reason: str, now: float) -> None:
        self._end(f"{status} {reason}".strip(), STATUS_CAUSES.get(status, EndCause.FAILED), now)

    def sip_unreachable(self, why: str, now: float) -> None:
        """ICMP says nothing listens where our INVITE went: end now, not after 32 s of retransmissions."""
        if self.state is S.DIALING:
            self._hang_up(f"unreachable ({why})", EndCause.UNREACHABLE, now)

    def sip_ended(self, reason: str, now: float) -> None:
        text, cause = DIALOG_ENDS.get(reason, (reason, EndCause.FAILED))
        self._end(text, cause, now)

    def sip_reoffer(self, offer_sdp: bytes, now: float) -> None:
        """A re-INVITE (hold, resume): answered on the same media and keys; anything else gets 488."""
        try:
            if self.local is None or not offer_sdp:
                raise sdp.SdpError("re-INVITE without an offer", 488)
            offer = sdp.parse(offer_sdp)
            self._sdp_version += 1
            answer = offeranswer.answer(
                offer, self.local, session_id=str(self._sdp_version), version=self._sdp_version
            )
            direction = offeranswer.audio_params(offer).direction
        except SipParseError as exc:
            self._do(act.AnswerReInvite(b"", exc.status or 488))
            return
        self._do(act.AnswerReInvite(answer.serialize()))
        self._held = direction in ("sendonly", "inactive")
        self._update_mute()

    # --- the user's commands --------------------------------------------------------------------------

    def answer(self, now: float) -> None:
        if self.state is not S.INCOMING or self._opening:
            raise CallCommandError("nothing to answer")
        self._opening = True
        self._timers.pop(Timer.RING, None)
        self._do(act.OpenMedia())

    def reject(self, now: float) -> None:
        if self.state is not S.INCOMING:
            raise CallCommandError("nothing to reject")
        self._do(act.SendReject(603, "Decline"))
        self._end("rejected", EndCause.DECLINED, now)

    def hangup(
        self, now: float, reason: str = "local hangup", cause: EndCause = EndCause.LOCAL_HANGUP
    ) -> None:
        self._hang_up(reason, cause, now)

    def set_muted(self, muted: bool) -> None:
        self.user_muted = muted
        self._update_mute()

    def words(self, match: bool, now: float) -> None:
        """The people compared the words: a match verifies the peer; a difference revokes it and hangs up."""
        if self.state is not S.SECURE or self.trust.peer_zid is None:
            raise CallCommandError("no words to compare in this call")
        if match and self.trust.unbound:
            raise CallCommandError("equal words cannot vouch for this call: its encryption is not theirs")
        for action in self.trust.words(match):
            self._do(action)
        if not match:
            self._alert(AlertKind.SAS_MISMATCH, WORDS_DIFFER_TEXT)
            self._hang_up("sas mismatch", EndCause.ALARM, now)
        self._update_mute()

    # --- key agreement ------------------------------------------------------------------------------

    def on_key_event(self, event: KeyEvent, now: float) -> None:
        if self.ended:
            return
        if isinstance(event, KeysReady):
            self._keys_ready(event, now)
        elif isinstance(event, KeyAlarm):
            self._alert(event.alert, event.message)
            if event.fatal:
                reason = ALARM_REASONS.get(event.alert, event.alert.replace("_", " "))
                self._hang_up(reason, EndCause.ALARM, now)
            elif event.mutes:
                self.trust.alarm = True
        elif isinstance(event, KeyFailed):
            self._hang_up(event.reason, event.cause, now)
        # SecretsWanted and ReceiveKeys are the shell's business (the trust cache, the media receiver)

    def _keys_ready(self, ready: KeysReady, now: float) -> None:
        if self.state is not S.ANSWERED:
            return
        self._timers.pop(Timer.KEYS, None)
        secure = ready.secure
        if ready.zrtp is not None:
            actions, alarms = self.trust.met(ready.zrtp)
            for kind, text in alarms:
                self._alert(kind, text)
            for action in actions:
                self._do(action)
            secure = replace(secure, verified=self.trust.verified)
        if self.path is not None:
            secure = replace(secure, path=self.path)
        self.secure = secure
        self._secure_at = now
        self._do(act.InstallKeys(ready.tx, ready.rx))
        self._go(S.SECURE)
        self._do(act.Emit(secure))
        self._update_mute()
        if ready.zrtp is not None and self.policy.on_mismatch == "hangup":
            if self.trust.unbound:
                self._hang_up("channel binding mismatch", EndCause.ALARM, now)
            elif ready.zrtp.cache == "mismatch":
                self._hang_up("cache mismatch", EndCause.ALARM, now)

    # --- timers -------------------------------------------------------------------------------------

    def handle_timer(self, now: float) -> None:
        for timer, due in list(self._timers.items()):
            if due <= now and self._timers.pop(timer, None) is not None and not self.ended:
                self._fire(timer, now)

    def _fire(self, timer: Timer, now: float) -> None:
        if timer is Timer.FALLBACK and self.state is S.DIALING and self._fallback_aor is not None:
            self._hang_up("no answer on the LAN; calling through the server", EndCause.FALLBACK, now)
            self._do(act.FallBack(self._fallback_aor, self.trust.expected_zid))
        elif timer is Timer.RING and self.state is S.INCOMING:
            self._do(act.SendReject(480, "Temporarily Unavailable"))
            self._end("not answered", EndCause.NO_ANSWER, now)
        elif timer is Timer.KEYS and self.state is S.ANSWERED:
            if self.dtls:
                self._hang_up("DTLS-SRTP did not complete", EndCause.KEYS_FAILED, now)
            else:
                self._hang_up("peer does not support ZRTP", EndCause.NO_ZRTP, now)

    # --- machinery ----------------------------------------------------------------------------------

    def _start_keys(self, remote: offeranswer.AudioParams, now: float) -> None:
        self._timers[Timer.KEYS] = now + self.policy.keys_deadline_s
        self._do(act.StartKeys(remote))

    def _hang_up(self, reason: str, cause: EndCause, now: float) -> None:
        if not self.ended:
            self._do(act.SendHangup())
            self._end(reason, cause, now)

    def _end(self, reason: str, cause: EndCause, now: float) -> None:
        if self.ended:
            return
        self._timers.clear()
        self.trust.forget_pending()
        self._do(act.CloseMedia())  # first, so the call's last stats are reported before it ends
        self._go(S.ENDED)
        duration = now - self._secure_at if self._secure_at is not None else 0.0
        self._do(
            act.Emit(events.Ended(id=self.id, reason=reason, duration_s=round(duration, 3), cause=cause))
        )

    def _go(self, state: CallState) -> None:
        if state not in TRANSITIONS[self.state]:
            raise RuntimeError(f"call {self.id}: {self.state} -> {state} is not a transition")
        self.state = state
        self._emit_state()

    def _emit_state(self) -> None:
        uri, (address, port) = self.where if self.where is not None else (None, (None, None))
        call = events.Call(self.id, self.state, self.direction, self.peer, uri, address, port)
        self._do(act.Emit(call))

    def _alert(self, kind: AlertKind, message: str) -> None:
        self._do(act.Emit(events.Alert(id=self.id, alert=kind, message=message)))

    def _update_mute(self) -> None:
        muted = self.muted
        if muted != self._muted_sent:
            self._muted_sent = muted
            self._do(act.SetMuted(muted))

    def _do(self, action: act.Action) -> None:
        self._actions.append(action)
