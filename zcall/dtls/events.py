"""What a DtlsSrtpSession reports through next_event()."""

from __future__ import annotations

from dataclasses import dataclass, field

from zcall.media.srtpkeys import SrtpKeys, SrtpProfile


@dataclass(frozen=True)
class DtlsSecure:
    """Handshake done, peer certificate matched its fingerprint: SRTP keys for both directions."""

    srtp_profile: str  # a zcall.media.srtp.SrtpProfile value
    local_key: bytes = field(repr=False)  # protects what we send
    local_salt: bytes = field(repr=False)
    remote_key: bytes = field(repr=False)  # verifies what the peer sends
    remote_salt: bytes = field(repr=False)
    # An exporter value of this DTLS session (its own label, 32 bytes): the same on both ends only when no
    # one terminates DTLS in between. ZRTP takes it as its auxiliary secret on the server path.
    channel_binding: bytes = field(repr=False, default=b"")
    peer_fingerprint_ok: bool = True

    def sender_keys(self) -> SrtpKeys:
        return SrtpKeys(SrtpProfile(self.srtp_profile), self.local_key, self.local_salt)

    def receiver_keys(self) -> SrtpKeys:
        return SrtpKeys(SrtpProfile(self.srtp_profile), self.remote_key, self.remote_salt)


@dataclass(frozen=True)
class FingerprintMismatch:
    """The peer's certificate is not the one the SDP named. The session is over; no keys were made."""

    expected: str
    got: str


@dataclass(frozen=True)
class DtlsFailed:
    """The handshake failed (alert, timeout, no common SRTP profile...). The session is over."""

    reason: str


@dataclass(frozen=True)
class DtlsClosed:
    """The peer sent close_notify after the handshake."""


DtlsEvent = DtlsSecure | FingerprintMismatch | DtlsFailed | DtlsClosed
