"""Which peer Hello a session may accept: the version, ZID and SSRC rules of §4.1 and §5.9, and the match
with the peer's SDP a=zrtp-hash (§8.1)."""

from __future__ import annotations

from zcall.zrtp import crypto
from zcall.zrtp import messages as m
from zcall.zrtp.errors import Abort, Drop, ZrtpErrorCode
from zcall.zrtp.packet import Packet
from zcall.zrtp.retransmit import T1_SPAN


def check_first_hello(hello: m.Hello, packet: Packet, *, own_zid: bytes, own_ssrc: int) -> None:
    """Raise Drop or Abort unless a first Hello from the peer can start the exchange."""
    if hello.version[:3] != m.VERSION[:3]:
        if hello.version > m.VERSION:
            raise Drop("newer_version")  # §4.1.1: the peer falls back to ours
        raise Abort(ZrtpErrorCode.VERSION, f"unsupported ZRTP version {hello.version!r}")
    if hello.zid == own_zid:
        raise Abort(ZrtpErrorCode.EQUAL_ZID, "peer uses our ZID")
    if packet.ssrc == own_ssrc:
        raise Abort(ZrtpErrorCode.SSRC_COLLISION, "peer uses our SSRC")


class SignaledHash:
    """The peer's a=zrtp-hash (§8.1), and until when a Hello it does not vouch for may go unreplaced (§9)."""

    def __init__(self) -> None:
        self.value: str | None = None  # hex, once the signalling carried it
        self.alarm_at: float | None = None  # a Hello failed the hash: alarm unless a good one comes

    def set(self, value: str) -> None:
        """The attribute's value, with or without its version prefix."""
        self.value = value.strip().split()[-1].lower() if value.strip() else ""

    def vouches_for(self, hello: m.Hello) -> bool:
        """Nothing signalled yet, or the Hello's SHA-256 is the signalled one (constant time)."""
        if self.value is None:
            return True
        return crypto.macs_equal(crypto.implicit_hash(hello.raw).hex().encode(), self.value.encode())

    def rejected(self, now: float) -> None:
        """§9: a Hello the signalling does not vouch for is rejected, and the exchange may still complete
        with the right one; only if none comes while the peer would still be sending it is it an alarm."""
        if self.alarm_at is None:
            self.alarm_at = now + T1_SPAN
