"""RTP/RTCP wire format (RFC 3550) round trips, known encodings and rejects; rtcp-mux classification."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zcall.media.rtp import (
    SDES_CNAME,
    Bye,
    ReceiverReport,
    ReportBlock,
    RtpPacket,
    RtpParseError,
    SdesChunk,
    SenderReport,
    SourceDescription,
    UnknownRtcp,
    is_rtcp,
    parse_rtcp_compound,
    serialize_rtcp_compound,
)


def test_minimal_packet_known_bytes() -> None:
    packet = RtpPacket(
        payload_type=111, sequence=0x1234, timestamp=0xDECAFBAD, ssrc=0xCAFEBABE, payload=b"hi", marker=True
    )
    wire = packet.serialize()
    assert wire.hex() == "80ef1234decafbadcafebabe" + b"hi".hex()
    assert RtpPacket.parse(wire) == packet


def test_full_header_round_trip() -> None:
    packet = RtpPacket(
        96,
        65535,
        2**32 - 1,
        1,
        b"\x00" * 7,
        csrcs=(1, 2, 3),
        extension=(0xBEDE, b"\x10\xaa\x00\x00"),
        padding=5,
    )
    wire = packet.serialize()
    assert wire[0] == 0x80 | 0x20 | 0x10 | 3
    assert wire[-1] == 5 and len(wire) == 12 + 12 + 4 + 4 + 7 + 5
    assert RtpPacket.parse(wire) == packet


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (b"\x80\x00\x00", "truncated"),
        (bytes.fromhex("400000010000000000000001"), "bad_version"),
        (bytes.fromhex("820000010000000000000001") + b"\x00\x00\x00\x01", "truncated"),  # 2 CSRCs, 1 present
        (bytes.fromhex("900000010000000000000001") + b"\xbe\xde\x00\x02\x00\x00\x00\x00", "truncated"),
        (bytes.fromhex("a00000010000000000000001") + b"ab\x00", "bad_padding"),  # zero padding count
        (bytes.fromhex("a00000010000000000000001") + b"ab\x10", "bad_padding"),  # padding beyond payload
        (b"\x80" * 3000, "too_large"),
    ],
)
def test_malformed_rtp_is_rejected_with_reason(wire: bytes, reason: str) -> None:
    with pytest.raises(RtpParseError) as exc:
        RtpPacket.parse(wire)
    assert exc.value.reason == reason


def test_invalid_fields_refused_at_construction() -> None:
    with pytest.raises(ValueError):
        RtpPacket(128, 0, 0, 0, b"")
    with pytest.raises(ValueError):
        RtpPacket(0, 65536, 0, 0, b"")
    with pytest.raises(ValueError):
        RtpPacket(0, 0, 0, 0, b"", extension=(1, b"abc"))
    with pytest.raises(ValueError):
        RtpPacket(0, 0, 0, 0, b"", csrcs=tuple(range(16)))


def test_rtcp_compound_round_trip() -> None:
    block = ReportBlock(
        ssrc=0x11111111,
        fraction_lost=25,
        cumulative_lost=-3,
        highest_sequence=70000,
        jitter=120,
        lsr=0xABCD1234,
        dlsr=65536,
    )
    packets = [
        SenderReport(
            0x22222222,
            ntp_timestamp=0xE1234567_89ABCDEF,
            rtp_timestamp=960,
            packet_count=50,
            octet_count=4000,
            reports=(block,),
        ),
        SourceDescription(
            (
                SdesChunk(0x22222222, ((SDES_CNAME, b"alice@zcall"),)),
                SdesChunk(0x33333333, ((SDES_CNAME, b"x"), (6, b"zcall 0.1"))),
            )
        ),
        ReceiverReport(0x22222222, (block, block)),
        UnknownRtcp(207, 0, b"\x00" * 8),
        Bye((0x22222222, 0x33333333), b"hangup"),
    ]
    wire = serialize_rtcp_compound(packets)
    assert len(wire) % 4 == 0
    assert parse_rtcp_compound(wire) == packets
    assert is_rtcp(wire)


def test_rtcp_known_encoding_of_receiver_report() -> None:
    wire = serialize_rtcp_compound([ReceiverReport(0xCAFEBABE)])
    assert wire.hex() == "80c90001cafebabe"
    block = ReportBlock(1, 0x80, 0x000102, 3, 4, 5, 6)
    wire = serialize_rtcp_compound([ReceiverReport(7, (block,))])
    assert wire.hex() == "81c90007" + "00000007" + "00000001" + "80000102" + "".join(
        f"{v:08x}" for v in (3, 4, 5, 6)
    )


def test_rtcp_bye_without_reason_and_sdes_padding() -> None:
    packets = [Bye((5,)), SourceDescription((SdesChunk(9, ((SDES_CNAME, b"abc"),)),))]
    wire = serialize_rtcp_compound(packets)
    assert parse_rtcp_compound(wire) == packets


def test_rtcp_padding_only_on_last_packet() -> None:
    rr = serialize_rtcp_compound([ReceiverReport(1)])
    padded = bytes([rr[0] | 0x20, rr[1], 0, 2]) + rr[4:] + b"\x00\x00\x00\x04"
    assert parse_rtcp_compound(padded) == [ReceiverReport(1)]
    with pytest.raises(RtpParseError) as exc:
        parse_rtcp_compound(padded + rr)
    assert exc.value.reason == "bad_padding"


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (b"\x80\xc9\x00", "truncated"),
        (bytes.fromhex("80c90002cafebabe"), "truncated"),  # length beyond the datagram
        (bytes.fromhex("40c90001cafebabe"), "bad_version"),
        (bytes.fromhex("80600001cafebabe"), "not_rtcp"),
        (bytes.fromhex("81c90001cafebabe"), "truncated"),  # one report block announced, none present
        (bytes.fromhex("80c80001cafebabe"), "truncated"),  # SR without sender info
        (bytes.fromhex("81ca000200000001010361626364"[:24]), "truncated"),  # SDES item list not terminated
        (bytes.fromhex("82cb0001cafebabe"), "truncated"),  # BYE announces 2 SSRCs
        (bytes.fromhex("81cb0002cafebabe09616263"), "truncated"),  # BYE reason longer than packet
        (bytes.fromhex("80c90001cafebabe") * 40, "too_many_packets"),
    ],
)
def test_malformed_rtcp_is_rejected_with_reason(wire: bytes, reason: str) -> None:
    with pytest.raises(RtpParseError) as exc:
        parse_rtcp_compound(wire)
    assert exc.value.reason == reason


def test_rtcp_mux_rule() -> None:
    # RFC 5761 §4: second octet 192..223 is RTCP (SR=200 ... XR=207); dynamic RTP types stay RTP.
    for second in (192, 200, 201, 206, 223):
        assert is_rtcp(bytes([0x80, second, 0, 1]))
    for pt in (0, 8, 96, 111, 127):
        assert not is_rtcp(RtpPacket(pt, 1, 1, 1, b"").serialize())
        assert not is_rtcp(RtpPacket(pt, 1, 1, 1, b"", marker=True).serialize())
    assert not is_rtcp(b"\x80")


@settings(max_examples=300, deadline=None)
@given(header=st.binary(min_size=12, max_size=12), body=st.binary(max_size=80))
def test_parsed_packets_pass_the_constructor_checks(header: bytes, body: bytes) -> None:
    # parse() skips the constructor's range checks for fields it unpacked: they must hold anyway, and the
    # result must be an ordinary packet (equal, hashable, same bytes back for the usual header).
    wire = bytes((0x80 | header[0] & 0x3F,)) + header[1:] + body
    try:
        packet = RtpPacket.parse(wire)
    except RtpParseError:
        return
    rebuilt = RtpPacket(**{f.name: getattr(packet, f.name) for f in dataclasses.fields(RtpPacket)})
    assert rebuilt == packet and hash(rebuilt) == hash(packet)
    assert RtpPacket.parse(rebuilt.serialize()) == packet
    if wire[0] == 0x80:
        assert packet.serialize() == wire and packet.marker == bool(wire[1] & 0x80)
