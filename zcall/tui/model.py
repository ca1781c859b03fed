"""What the TUI shows, folded from the engine's events: pure state, no widgets, no I/O.

The screens read this; the app feeds it every event. Keeping it apart from Textual lets the folding be tested
with plain events and keeps the widgets thin.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from zcall import events

Trust = Literal["verified", "known", "new"]
MAX_RECENT = 20
MAX_LOG = 500


@dataclass(frozen=True)
class KnownDevice:
    """What the trust cache says about one ZID (the TUI's own copy; no secrets)."""

    zid: str
    name: str
    verified: bool
    has_secret: bool


@dataclass
class LanPeer:
    name: str
    zid: str
    address: str
    port: int
    busy: bool = False


@dataclass
class CallView:
    id: str
    peer: str
    direction: events.Direction
    state: events.CallState
    started: float
    secure: events.Secure | None = None
    secure_at: float | None = None
    stats: events.Stats | None = None
    alerts: list[events.Alert] = field(default_factory=list)
    verified: bool = False
    muted: bool = False  # our microphone is held back (by the user, or after an alarm until they choose)
    user_muted: bool = False
    ended: events.Ended | None = None

    @property
    def alarm(self) -> events.Alert | None:
        """The alert that must stay on screen until the user decides (cache or hash mismatch)."""
        return next((a for a in self.alerts if a.alert in ALARMS), None)


ALARMS = ("cache_mismatch", "zrtp_hash_mismatch")


@dataclass(frozen=True)
class RecentCall:
    peer: str
    direction: events.Direction
    reason: str
    duration_s: float
    at: float


def _stamp(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))


def describe(event: events.Event) -> str:
    """One human-readable line per event for the log screen (never secrets: events carry none)."""
    if isinstance(event, events.Ready):
        return f"ready as {event.name} ({event.sip_uri})"
    if isinstance(event, events.Peer):
        where = f" at {event.address}:{event.port}" if event.address else ""
        return f"peer {event.name} {'appeared' if event.action == 'up' else 'left'}{where}"
    if isinstance(event, events.Call):
        return f"call {event.id} {event.direction} {event.peer}: {event.state}"
    if isinstance(event, events.Secure):
        if event.method == "zrtp":
            return (
                f"call {event.id} secure (ZRTP {event.key_agreement}/{event.cipher}/{event.auth}, "
                f"cache {event.cache}, {'verified' if event.verified else 'not verified'})"
            )
        return f"call {event.id} secure (DTLS-SRTP {event.srtp_profile})"
    if isinstance(event, events.Alert):
        return f"ALERT {event.alert}: {event.message}"
    if isinstance(event, events.Stats):
        mos = f"{event.mos:.1f}" if event.mos is not None else "-"
        return f"call {event.id} stats: lost {event.lost}, jitter {event.jitter_ms:.0f} ms, MOS {mos}"
    if isinstance(event, events.Registered):
        return f"registered to {event.server} for {event.expires} s"
    if isinstance(event, events.RegistrationFailed):
        return f"registration failed: {event.reason}"
    if isinstance(event, events.Ended):
        return f"call {event.id} ended: {event.reason} ({event.duration_s:.0f} s)"
    if isinstance(event, events.Error):
        return f"error: {event.message}"
    return event.to_json()


class PhoneView:
    """The folded state. `clock` is injected so snapshots and tests see fixed times."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.name = ""
        self.zid = ""
        self.sip_uri = ""
        self.registration: str | None = None  # None: no server configured
        self.peers: dict[str, LanPeer] = {}
        self.known: dict[str, KnownDevice] = {}
        self.calls: dict[str, CallView] = {}
        self.recent: collections.deque[RecentCall] = collections.deque(maxlen=MAX_RECENT)
        self.log: collections.deque[str] = collections.deque(maxlen=MAX_LOG)

    # --- trust ---

    def set_known(self, devices: Iterable[KnownDevice]) -> None:
        self.known = {d.zid: d for d in devices}

    def trust_of(self, zid: str) -> Trust:
        device = self.known.get(zid)
        if device is None or not device.has_secret:
            return "new"
        return "verified" if device.verified else "known"

    def nickname(self, zid: str) -> str:
        device = self.known.get(zid)
        return device.name if device is not None else ""

    def peer_rows(self) -> list[tuple[LanPeer, str, Trust]]:
        """(peer, label, trust): peers with a nickname first, then by name."""
        rows = [(p, self.nickname(p.zid) or p.name, self.trust_of(p.zid)) for p in self.peers.values()]
        rows.sort(key=lambda row: (not self.nickname(row[0].zid), row[1].lower()))
        return rows

    # --- calls ---

    @property
    def active(self) -> CallView | None:
        """The call the in-call and incoming screens are about: the newest one not ended."""
        live = [c for c in self.calls.values() if c.ended is None]
        return live[-1] if live else None

    def elapsed(self, call: CallView) -> float:
        if call.ended is not None:
            return call.ended.duration_s
        start = call.secure_at if call.secure_at is not None else call.started
        return max(0.0, self.clock() - start)

    # --- folding ---

    def apply(self, event: events.Event) -> None:
        now = self.clock()
        self.log.append(f"{_stamp(now)} {describe(event)}")
        if isinstance(event, events.Ready):
            self.name, self.zid, self.sip_uri = event.name, event.zid, event.sip_uri
        elif isinstance(event, events.Peer):
            if event.action == "up" and event.address is not None and event.port is not None:
                self.peers[event.name] = LanPeer(event.name, event.zid, event.address, event.port)
            elif event.action == "down":
                self.peers.pop(event.name, None)
        elif isinstance(event, events.Call):
            self._on_call(event, now)
        elif isinstance(event, events.Secure):
            call = self.calls.get(event.id)
            if call is not None:
                call.secure, call.secure_at = event, now
                call.verified = bool(event.verified)
                call.muted = call.muted or event.cache == "mismatch"
        elif isinstance(event, events.Alert):
            call = self.calls.get(event.id or "")
            if call is not None:
                call.alerts.append(event)
                if event.alert in ALARMS:
                    call.muted = True
        elif isinstance(event, events.Stats):
            call = self.calls.get(event.id)
            if call is not None:
                call.stats = event
        elif isinstance(event, events.Ended):
            self._on_ended(event, now)
        elif isinstance(event, events.Registered):
            self.registration = f"registered to {event.server}"
        elif isinstance(event, events.RegistrationFailed):
            self.registration = f"not registered: {event.reason}"

    def _on_call(self, event: events.Call, now: float) -> None:
        call = self.calls.get(event.id)
        if call is None:
            call = CallView(event.id, event.peer, event.direction, event.state, now)
            self.calls[event.id] = call
        call.state = event.state

    def _on_ended(self, event: events.Ended, now: float) -> None:
        call = self.calls.pop(event.id, None)
        if call is None:
            return
        call.ended = event
        self.recent.appendleft(RecentCall(call.peer, call.direction, event.reason, event.duration_s, now))
        if event.reason.startswith("486"):
            for peer in self.peers.values():
                if peer.name == call.peer:
                    peer.busy = True
        else:
            for peer in self.peers.values():
                if peer.name == call.peer:
                    peer.busy = False
