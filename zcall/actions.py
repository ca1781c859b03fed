"""What the call core asks its shell to do: plain data, carried out by zcall/call.py (media, keys, the trust
cache) and zcall/engine.py (SIP, the phone's listeners, the fallback call).

The core never does I/O itself; every effect of the call policy is one of these.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from zcall import events
from zcall.media.srtpkeys import SrtpKeys
from zcall.sip.offeranswer import AudioParams


@dataclass(frozen=True)
class Emit:
    """Tell the faces (TUI, headless, ctl): one contract event."""

    event: events.Event


@dataclass(frozen=True)
class OpenMedia:
    """Open the audio devices and the call's UDP port; answer with `media_opened` or `media_failed`."""


@dataclass(frozen=True)
class SendInvite:
    sdp: bytes


@dataclass(frozen=True)
class SendRinging:
    pass


@dataclass(frozen=True)
class SendAnswer:
    sdp: bytes


@dataclass(frozen=True)
class SendReject:
    status: int
    reason: str = ""


@dataclass(frozen=True)
class SendHangup:
    """End the dialog the way its state asks: CANCEL, BYE or a final response."""


@dataclass(frozen=True)
class AnswerReInvite:
    sdp: bytes
    status: int = 200


@dataclass(frozen=True)
class StartKeys:
    """The SDP exchange is done: point media at the peer and run the key agreement with it."""

    remote: AudioParams


@dataclass(frozen=True)
class InstallKeys:
    tx: SrtpKeys = field(repr=False)
    rx: SrtpKeys = field(repr=False)


@dataclass(frozen=True)
class SetMuted:
    muted: bool


@dataclass(frozen=True)
class SetSasVerified:
    """The V flag ZRTP sends in its Confirm from now on."""

    verified: bool


@dataclass(frozen=True)
class StoreSecret:
    peer_zid: bytes
    rs1: bytes = field(repr=False)
    expires_in: int


@dataclass(frozen=True)
class RollbackSecret:
    """Undo the StoreSecret of this call (the people found the words differ)."""

    peer_zid: bytes


@dataclass(frozen=True)
class SetVerified:
    peer_zid: bytes
    verified: bool


@dataclass(frozen=True)
class RememberPeer:
    """First/last seen, and the name to show when the entry has none yet."""

    peer_zid: bytes
    name: str


@dataclass(frozen=True)
class RememberAccount:
    """A bound ZRTP exchange met this ZID at this server account (user@host): later calls expect it there."""

    account: str
    peer_zid: bytes


@dataclass(frozen=True)
class FallBack:
    """The LAN path did not ring: call the peer's server address instead, expecting the same device."""

    aor: str
    expected_zid: bytes | None = None


@dataclass(frozen=True)
class CloseMedia:
    pass


Action = (
    Emit
    | OpenMedia
    | SendInvite
    | SendRinging
    | SendAnswer
    | SendReject
    | SendHangup
    | AnswerReInvite
    | StartKeys
    | InstallKeys
    | SetMuted
    | SetSasVerified
    | StoreSecret
    | RollbackSecret
    | SetVerified
    | RememberPeer
    | RememberAccount
    | FallBack
    | CloseMedia
)
