"""What the SIP user agent reports through next_event(): calls, re-INVITEs, OPTIONS and registrations."""

from __future__ import annotations

from dataclasses import dataclass

from zcall.net import Addr
from zcall.sip.model import Response
from zcall.sip.uri import NameAddr


@dataclass(frozen=True)
class Registered:
    token: str
    expires: int  # 0 after a successful un-REGISTER


@dataclass(frozen=True)
class RegistrationFailed:
    token: str
    status: int
    reason: str


@dataclass(frozen=True)
class IncomingCall:
    call_id: str
    caller: NameAddr
    sdp: bytes
    source: Addr


@dataclass(frozen=True)
class CallProgress:
    call_id: str
    status: int
    reason: str
    sdp: bytes


@dataclass(frozen=True)
class CallAnswered:
    call_id: str
    sdp: bytes


@dataclass(frozen=True)
class CallConfirmed:
    """The ACK for our 2xx arrived (UAS side)."""

    call_id: str
    sdp: bytes  # non-empty when the ACK carried the answer


@dataclass(frozen=True)
class CallFailed:
    call_id: str
    status: int
    reason: str


@dataclass(frozen=True)
class CallEnded:
    call_id: str
    reason: str  # "bye" | "cancelled" | "no-ack" | "timeout"


@dataclass(frozen=True)
class ReInviteReceived:
    call_id: str
    sdp: bytes


@dataclass(frozen=True)
class ReInviteResult:
    call_id: str
    status: int
    sdp: bytes


@dataclass(frozen=True)
class OptionsResult:
    token: str
    status: int
    response: Response | None


UaEvent = (
    IncomingCall
    | CallProgress
    | CallAnswered
    | CallConfirmed
    | CallFailed
    | CallEnded
    | ReInviteReceived
    | ReInviteResult
    | OptionsResult
    | Registered
    | RegistrationFailed
)
