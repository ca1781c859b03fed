"""What the TUI shows, folded from the engine's events: pure state, no widgets, no I/O.

The app feeds it every event and publishes the result as reactive attributes; screens watch those. Every
value handed out is immutable (frozen dataclasses, tuples), so a watcher fires only when something it shows
really changed. Keeping it apart from Textual lets the folding be tested with plain events.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from zcall import events

Trust = Literal["verified", "known", "new"]
MAX_LOG = 500
MAX_ENDED = 4  # ended calls kept so a screen showing one can still say how it ended
# Alerts the in-call screen shows in red until the call ends, the most serious first (a call can raise two:
# identity_mismatch, then channel_binding_mismatch, which the words cannot lift).
ALARMS = (
    "channel_binding_mismatch",
    "zrtp_hash_mismatch",
    "fingerprint_mismatch",
    "identity_mismatch",
    "cache_mismatch",
    "downgrade",
)
# The engine (zcall/callcore.py) mutes the microphone for all but a downgrade: a call without words has
# nothing to wait for, so the microphone stays the user's.
MUTING_ALARMS = frozenset(ALARMS) - {"downgrade"}
STANDING = {"match": "known, not verified", "new": "new device", "mismatch": "secret MISMATCH"}


def is_busy(ended: events.Ended) -> bool:
    """Whether a call ended because the peer was busy."""
    return ended.cause is events.EndCause.BUSY


@dataclass(frozen=True)
class KnownDevice:
    """What the trust cache says about one ZID (the TUI's own copy; no secrets)."""

    zid: str
    name: str
    verified: bool
    has_secret: bool


@dataclass(frozen=True)
class LanPeer:
    name: str
    zid: str
    address: str
    port: int


@dataclass(frozen=True)
class PeerRow:
    """One line of the Home list: the peer, what to call it, how far we trust it, whether it was busy."""

    peer: LanPeer
    label: str
    trust: Trust
    busy: bool


@dataclass(frozen=True)
class CallView:
    id: str
    peer: str
    direction: events.Direction
    state: events.CallState
    started: float
    zid: str = ""  # the ZID the call was placed to, or the one ZRTP proved (empty until known)
    target: str = ""  # what the user dialled (outgoing calls placed from this TUI)
    uri: str = ""  # the peer's SIP URI: a caller's From (what it says), or the URI dialled
    source: str = ""  # address:port the call's signalling comes from (in) or goes to (out)
    secure: events.Secure | None = None
    secure_at: float | None = None
    stats: events.Stats | None = None
    alerts: tuple[events.Alert, ...] = ()
    verified: bool = False
    muted: bool = False  # our microphone is held back (by the user, or after an alarm until they choose)
    user_muted: bool = False
    ended: events.Ended | None = None

    @property
    def alarm(self) -> events.Alert | None:
        """The alert that must stay on screen until the user decides: the most serious one raised."""
        raised = [a for a in self.alerts if a.alert in ALARMS]
        return min(raised, key=lambda a: ALARMS.index(a.alert), default=None)

    @property
    def unbound(self) -> bool:
        """Someone else's DTLS keys the audio: equal words cannot vouch for this call (the engine refuses)."""
        return any(a.alert == "channel_binding_mismatch" for a in self.alerts)


@dataclass(frozen=True)
class Who:
    """Who is on the other end, as far as this unit can tell."""

    name: str  # the trust entry's name once ZRTP proved the ZID, else what the peer calls itself
    claimed: str  # what the peer calls itself (its SIP display name, or its URI)
    zid: str  # "" until ZRTP proved one
    standing: str  # "" until ZRTP: then verified / known / new device / secret mismatch
    address: str  # where it is (a LAN peer's address, or the URI dialled); "" if unknown


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
        # Where the call comes from (or goes), said once at its start.
        parts = [event.uri or "", f"at {event.address}:{event.port}" if event.address else ""]
        shown = " ".join(p for p in parts if p)
        where = f" ({shown})" if shown and event.state in ("incoming", "dialing") else ""
        return f"call {event.id} {event.direction} {event.peer}{where}: {event.state}"
    if isinstance(event, events.Secure):
        trust = f"cache {event.cache}, {'verified' if event.verified else 'not verified'}"
        if event.method == "zrtp":
            return f"call {event.id} secure (ZRTP {event.key_agreement}/{event.cipher}/{event.auth}, {trust})"
        if event.sas_words is not None:  # a zcall unit through the server: ZRTP's words over DTLS's keys
            return f"call {event.id} secure (DTLS-SRTP {event.srtp_profile}, words by ZRTP, {trust})"
        return f"call {event.id} secure (DTLS-SRTP {event.srtp_profile}, not verifiable: no words)"
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
        self.ready = False  # the engine said `ready` (until then name and ZID are what the files say)
        self.registration: str | None = None  # None: no server configured
        self.peers: dict[str, LanPeer] = {}  # by ZID, as the engine keys them: two units may share a name
        self.busy: set[str] = set()  # ZIDs whose last call ended "busy"
        self.known: dict[str, KnownDevice] = {}
        self.calls: dict[str, CallView] = {}  # live calls, then the last few ended ones
        self.log: collections.deque[str] = collections.deque(maxlen=MAX_LOG)
        self.logged = 0  # lines ever appended (the deque forgets; this does not)

    def expect(self, name: str, zid: str) -> None:
        """This unit as its settings and identity file describe it, shown before the engine is up (`ready`
        then says what is in effect: on the LAN the name may have become "name (2)")."""
        if not self.ready:
            self.name, self.zid = name, zid

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

    def peer_rows(self) -> tuple[PeerRow, ...]:
        """Peers with a nickname first, then by name."""
        rows = [
            PeerRow(p, self.nickname(p.zid) or p.name, self.trust_of(p.zid), p.zid in self.busy)
            for p in self.peers.values()
        ]
        rows.sort(key=lambda row: (not self.nickname(row.peer.zid), row.label.lower()))
        return tuple(rows)

    # --- calls ---

    @property
    def active(self) -> CallView | None:
        """The call the in-call and incoming screens are about: the newest one not ended."""
        live = [c for c in self.calls.values() if c.ended is None]
        return live[-1] if live else None

    def who(self, call: CallView) -> Who:
        secure = call.secure
        zid = (secure.peer_zid or "") if secure is not None else ""
        standing = ""
        if secure is not None and secure.sas_words is not None:
            standing = "verified" if call.verified else STANDING.get(secure.cache or "", "")
        elif secure is not None:  # keys without words, whatever `verifiable` says: nothing to compare
            standing = "not verifiable"
        lan = next((p for p in self.peers.values() if zid and p.zid == zid), None)
        if lan is None and call.direction == "out":
            lan = next((p for p in self.peers.values() if call.zid and p.zid == call.zid), None)
        if lan is not None:
            address = f"{lan.address}:{lan.port}"
        elif call.target.lower().startswith(("sip:", "sips:")):
            address = call.target
        elif call.uri:
            address = call.uri
        else:
            address = call.peer if call.peer.lower().startswith(("sip:", "sips:")) else ""
        return Who(self.nickname(zid) or call.peer, call.peer, zid, standing, address)

    def elapsed(self, call: CallView) -> float:
        if call.ended is not None:
            return call.ended.duration_s
        start = call.secure_at if call.secure_at is not None else call.started
        return max(0.0, self.clock() - start)

    def update_call(self, call_id: str, **changes: Any) -> CallView | None:
        """Replace one call's view with some fields changed (the app's own commands: verify, mute, ZID)."""
        call = self.calls.get(call_id)
        if call is None:
            return None
        call = dataclasses.replace(call, **changes)
        self.calls[call_id] = call
        return call

    # --- folding ---

    def note(self, text: str) -> None:
        self.log.append(f"{_stamp(self.clock())} {text}")
        self.logged += 1

    def apply(self, event: events.Event) -> None:
        now = self.clock()
        self.note(describe(event))
        if isinstance(event, events.Ready):
            self.name, self.zid, self.sip_uri = event.name, event.zid, event.sip_uri
            self.ready = True
        elif isinstance(event, events.Peer):
            if event.action == "up" and event.address is not None and event.port is not None:
                self.peers[event.zid] = LanPeer(event.name, event.zid, event.address, event.port)
            elif event.action == "down":
                self.peers.pop(event.zid, None)
        elif isinstance(event, events.Call):
            call = self.calls.get(event.id)
            if call is None:
                source = f"{event.address}:{event.port}" if event.address and event.port else ""
                uri = event.uri or ""
                self.calls[event.id] = CallView(
                    event.id, event.peer, event.direction, event.state, now, uri=uri, source=source
                )
            else:
                self.update_call(event.id, state=event.state)
        elif isinstance(event, events.Secure):
            call = self.calls.get(event.id)
            if call is not None:
                self.update_call(
                    event.id,
                    secure=event,
                    secure_at=now,
                    zid=event.peer_zid or call.zid,
                    verified=bool(event.verified),
                    muted=call.muted or event.cache == "mismatch",
                )
        elif isinstance(event, events.Alert):
            call = self.calls.get(event.id or "")
            if call is not None:
                self.update_call(
                    call.id, alerts=(*call.alerts, event), muted=call.muted or event.alert in MUTING_ALARMS
                )
        elif isinstance(event, events.Stats):
            self.update_call(event.id, stats=event)
        elif isinstance(event, events.Ended):
            self._on_ended(event)
        elif isinstance(event, events.Registered):
            self.registration = f"registered to {event.server}"
        elif isinstance(event, events.RegistrationFailed):
            self.registration = f"not registered: {event.reason}"

    def _on_ended(self, event: events.Ended) -> None:
        call = self.update_call(event.id, ended=event, state="ended")
        if call is None:
            return
        ended = [c.id for c in self.calls.values() if c.ended is not None]
        for old in ended[:-MAX_ENDED]:
            del self.calls[old]
        # A call placed by name or URI has no ZID until ZRTP proves one: find the peer by its name then.
        zids = {call.zid} if call.zid else {p.zid for p in self.peers.values() if p.name == call.peer}
        if is_busy(event):
            self.busy |= zids
        else:
            self.busy -= zids
