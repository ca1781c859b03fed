"""One UDP port for everything: classify each datagram by its first octet (RFC 7983 §7) and ZRTP by its magic
cookie (RFC 6189 §5). Anything else is dropped and counted by reason."""

from __future__ import annotations

import enum

from zcall.media.rtp import is_rtcp
from zcall.zrtp.packet import MAGIC_COOKIE

_ZRTP_MAGIC = MAGIC_COOKIE.to_bytes(4, "big")
_ZRTP_FIRST = 0x10
_ZRTP_MIN = 12 + 4  # packet header plus CRC
_STUN_MIN = 20  # STUN header
_DTLS_MIN = 13  # DTLS record header
_RTP_MIN = 12
_RTCP_MIN = 8


class PacketKind(enum.Enum):
    RTP = "rtp"
    RTCP = "rtcp"
    ZRTP = "zrtp"
    DTLS = "dtls"
    STUN = "stun"
    UNKNOWN = "unknown"


def classify_with_reason(data: bytes) -> tuple[PacketKind, str | None]:
    """The packet's kind, and for UNKNOWN a short drop reason."""
    if not data:
        return PacketKind.UNKNOWN, "empty"
    first = data[0]
    if first <= 3:
        return (PacketKind.STUN, None) if len(data) >= _STUN_MIN else (PacketKind.UNKNOWN, "short_stun")
    if 16 <= first <= 19:
        # RFC 7983 gives 16..19 to ZRTP; we also insist on version 0's first octet and the cookie.
        if first == _ZRTP_FIRST and len(data) >= _ZRTP_MIN and data[4:8] == _ZRTP_MAGIC:
            return PacketKind.ZRTP, None
        return PacketKind.UNKNOWN, "zrtp_no_cookie"
    if 20 <= first <= 63:
        return (PacketKind.DTLS, None) if len(data) >= _DTLS_MIN else (PacketKind.UNKNOWN, "short_dtls")
    if 64 <= first <= 79:
        return PacketKind.UNKNOWN, "turn_channel"  # we run no TURN client
    if 128 <= first <= 191:
        if is_rtcp(data):
            return (PacketKind.RTCP, None) if len(data) >= _RTCP_MIN else (PacketKind.UNKNOWN, "short_rtcp")
        return (PacketKind.RTP, None) if len(data) >= _RTP_MIN else (PacketKind.UNKNOWN, "short_rtp")
    return PacketKind.UNKNOWN, "unassigned_first_octet"


def classify(data: bytes) -> PacketKind:
    return classify_with_reason(data)[0]
