"""The RFC 7983 demultiplexing table, plus ZRTP's cookie, on real packets from our own encoders."""

from __future__ import annotations

import pytest

from zcall.media.demux import PacketKind, classify, classify_with_reason
from zcall.media.rtp import Bye, ReceiverReport, RtpPacket, SenderReport, serialize_rtcp_compound
from zcall.media.srtp import SrtpSender
from zcall.media.srtpkeys import SrtpKeys, SrtpProfile

KEYS = SrtpKeys(SrtpProfile.AES_CM_128_HMAC_SHA1_80, bytes(range(16)), bytes(range(14)))

# A ZRTP Hello-shaped packet: 0x10, unused, sequence, magic cookie, SSRC, message, CRC.
ZRTP = (
    bytes.fromhex("10000001")
    + b"ZRTP"
    + bytes.fromhex("cafebabe")
    + b"\x50\x5a\x00\x1d"
    + b"Hello   "
    + bytes(4)
)
# STUN binding request: type 0x0001, length 0, magic cookie 0x2112A442, 96-bit transaction id.
STUN = bytes.fromhex("000100002112a442") + bytes(12)
# DTLS 1.2 handshake record header (content type 22, version fefd, epoch, sequence, length) and a body.
DTLS = bytes.fromhex("16fefd0000000000000000000c") + bytes(12)


def test_table_on_real_packets() -> None:
    sender = SrtpSender(KEYS)
    rtp = RtpPacket(111, 1, 960, 0xCAFEBABE, b"opus").serialize()
    rtcp = serialize_rtcp_compound([SenderReport(0xCAFEBABE, 1 << 32, 960, 1, 4), Bye((0xCAFEBABE,))])
    assert classify(rtp) is PacketKind.RTP
    assert classify(sender.protect(rtp)) is PacketKind.RTP
    assert classify(rtcp) is PacketKind.RTCP
    assert classify(sender.protect_rtcp(serialize_rtcp_compound([ReceiverReport(5)]))) is PacketKind.RTCP
    assert classify(ZRTP) is PacketKind.ZRTP
    assert classify(STUN) is PacketKind.STUN
    assert classify(DTLS) is PacketKind.DTLS


@pytest.mark.parametrize(
    ("first", "kind"),
    [
        (0, PacketKind.STUN),
        (3, PacketKind.STUN),
        (20, PacketKind.DTLS),
        (63, PacketKind.DTLS),
        (128, PacketKind.RTP),
        (191, PacketKind.RTP),
    ],
)
def test_first_octet_boundaries(first: int, kind: PacketKind) -> None:
    assert classify(bytes([first]) + bytes(39)) is kind


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (bytes([4]) + bytes(30), "unassigned_first_octet"),
        (bytes([15]) + bytes(30), "unassigned_first_octet"),
        (bytes([64]) + bytes(30), "turn_channel"),
        (bytes([79]) + bytes(30), "turn_channel"),
        (bytes([80]) + bytes(30), "unassigned_first_octet"),
        (bytes([127]) + bytes(30), "unassigned_first_octet"),
        (bytes([192]) + bytes(30), "unassigned_first_octet"),
        (bytes([255]) + bytes(30), "unassigned_first_octet"),
        (b"\x10\x00\x00\x01XRTP" + bytes(12), "zrtp_no_cookie"),
        (b"\x11" + ZRTP[1:], "zrtp_no_cookie"),
        (ZRTP[:12], "zrtp_no_cookie"),
        (STUN[:19], "short_stun"),
        (DTLS[:12], "short_dtls"),
        (b"\x80\x00\x00\x01", "short_rtp"),
        (b"\x80\xc9\x00", "short_rtcp"),
    ],
)
def test_everything_else_is_dropped_with_a_reason(data: bytes, reason: str) -> None:
    assert classify_with_reason(data) == (PacketKind.UNKNOWN, reason)


def test_rtcp_split_by_rtcp_mux_rule() -> None:
    for second in range(256):
        data = bytes([0x80, second]) + bytes(30)
        expected = PacketKind.RTCP if 192 <= second <= 223 else PacketKind.RTP
        assert classify(data) is expected
