"""The public event contract: frozen dataclasses and their JSON-lines form (field names are the contract)."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any, ClassVar, Literal

from zcall.errors import ZcallError

Direction = Literal["out", "in"]


class CallState(StrEnum):
    """Where one call is; the values are the contract's `state` strings."""

    DIALING = "dialing"
    RINGING = "ringing"
    INCOMING = "incoming"
    ANSWERED = "answered"
    SECURE = "secure"
    ENDED = "ended"


class AlertKind(StrEnum):
    """Why a call raised an alarm; the values are the contract's alert `kind` strings."""

    CACHE_MISMATCH = "cache_mismatch"
    ZRTP_HASH_MISMATCH = "zrtp_hash_mismatch"
    FINGERPRINT_MISMATCH = "fingerprint_mismatch"
    SAS_MISMATCH = "sas_mismatch"
    IDENTITY_MISMATCH = "identity_mismatch"
    CHANNEL_BINDING_MISMATCH = "channel_binding_mismatch"
    DOWNGRADE = "downgrade"


MediaPath = Literal["host", "srflx", "prflx", "relay"]


class EndCause(StrEnum):
    """Why a call ended, for scripts and the UI (the `cause` field); `reason` stays the words for people."""

    LOCAL_HANGUP = "local_hangup"
    REMOTE_HANGUP = "remote_hangup"
    BUSY = "busy"
    DECLINED = "declined"
    NO_ANSWER = "no_answer"
    CANCELLED = "cancelled"
    UNREACHABLE = "unreachable"
    FAILED = "failed"
    NO_ZRTP = "no_zrtp"
    KEYS_FAILED = "keys_failed"
    ALARM = "alarm"
    MEDIA_FAILED = "media_failed"
    FALLBACK = "fallback"
    PHONE_CLOSED = "phone_closed"


MAX_EVENT_LINE = 64 * 1024


class EventDecodeError(ZcallError, ValueError):
    """A line that is not one of the contract's events."""


@dataclass(frozen=True)
class Event:
    kind: ClassVar[str] = ""
    # Fields left at None are not written (the secure event carries ZRTP-only or DTLS-only fields).
    omit_none: ClassVar[bool] = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.kind}
        for item in fields(self):
            value = getattr(self, item.name)
            if value is None and self.omit_none:
                continue
            out[item.name] = list(value) if isinstance(value, tuple) else value
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Ready(Event):
    kind: ClassVar[str] = "ready"
    name: str
    zid: str
    sip_uri: str


@dataclass(frozen=True)
class Peer(Event):
    kind: ClassVar[str] = "peer"
    action: Literal["up", "down"]
    name: str
    zid: str
    address: str | None = None
    port: int | None = None


@dataclass(frozen=True)
class Call(Event):
    kind: ClassVar[str] = "call"
    id: str
    state: CallState
    direction: Direction
    peer: str  # in: the caller's SIP display name, else its URI; out: what was dialled (or the unit's name)
    uri: str | None = None  # the peer's SIP URI: the caller's From (what it says), or the URI dialled
    # Where the signalling comes from (in: seen, not claimed) or goes to (out); through a server, the server.
    address: str | None = None
    port: int | None = None


@dataclass(frozen=True)
class Secure(Event):
    kind: ClassVar[str] = "secure"
    omit_none: ClassVar[bool] = True
    id: str
    method: Literal["zrtp", "dtls-srtp"]
    srtp_profile: str
    # ZRTP only
    sas: str | None = None
    sas_type: Literal["B256", "B32"] | None = None
    sas_words: tuple[str, ...] | None = None
    hash: str | None = None
    cipher: str | None = None
    auth: str | None = None
    key_agreement: str | None = None
    peer_zid: str | None = None
    cache: Literal["new", "match", "mismatch"] | None = None
    verified: bool | None = None
    # DTLS only
    fingerprint_ok: bool | None = None
    # Whether this call has words to compare: always on the LAN; on the server path only when ZRTP ran
    # with the peer over the DTLS-SRTP flow (a peer without ZRTP: false, and no ZRTP fields).
    verifiable: bool | None = None
    # the server path with ICE: the kind of route media takes (the more indirect end of the selected pair)
    path: MediaPath | None = None


@dataclass(frozen=True)
class Alert(Event):
    kind: ClassVar[str] = "alert"
    id: str | None
    alert: AlertKind  # written as "kind" on the wire; see to_dict
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind, "id": self.id, "kind": str(self.alert), "message": self.message}


@dataclass(frozen=True)
class Stats(Event):
    kind: ClassVar[str] = "stats"
    id: str
    sent: int
    received: int
    lost: int
    jitter_ms: float
    rtt_ms: float | None
    jitter_buffer_ms: float
    mos: float | None


@dataclass(frozen=True)
class Registered(Event):
    kind: ClassVar[str] = "registered"
    server: str
    expires: int


@dataclass(frozen=True)
class RegistrationFailed(Event):
    kind: ClassVar[str] = "registration_failed"
    reason: str


@dataclass(frozen=True)
class Ended(Event):
    kind: ClassVar[str] = "ended"
    id: str
    reason: str
    duration_s: float
    cause: EndCause = EndCause.FAILED


@dataclass(frozen=True)
class Error(Event):
    kind: ClassVar[str] = "error"
    message: str


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (Ready, Peer, Call, Secure, Alert, Stats, Registered, RegistrationFailed, Ended, Error)
}


def decode(line: str) -> Event:
    """Parse one JSON line back into its event (for `zcall ctl`, tests and the TUI log)."""
    if len(line) > MAX_EVENT_LINE:
        raise EventDecodeError("event line too long")
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise EventDecodeError(f"not JSON: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise EventDecodeError("not a JSON object")
    kind = data.pop("event", None)
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise EventDecodeError(f"unknown event {kind!r}")
    try:
        if cls is Alert:
            data["alert"] = AlertKind(data.pop("kind", None))
        if cls is Ended and "cause" in data:
            data["cause"] = EndCause(data["cause"])
        if cls is Call and "state" in data:
            data["state"] = CallState(data["state"])
    except ValueError as exc:
        raise EventDecodeError(f"{kind}: {exc}") from exc
    names = {item.name for item in fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise EventDecodeError(f"{kind}: unknown fields {sorted(unknown)}")
    if "sas_words" in data and isinstance(data["sas_words"], list):
        data["sas_words"] = tuple(data["sas_words"])
    try:
        return cls(**data)
    except TypeError as exc:
        raise EventDecodeError(f"{kind}: {exc}") from exc
