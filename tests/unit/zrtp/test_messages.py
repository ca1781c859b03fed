"""Every RFC 6189 §5 message round-trips at its exact size; malformed input raises a specific ParseError."""

from __future__ import annotations

import os
import struct

import pytest

from zcall.zrtp import messages as m
from zcall.zrtp.packet import (
    MAX_PACKET_LEN,
    BadCrc,
    BadLength,
    Malformed,
    NotZrtp,
    ParseError,
    UnknownType,
    encode_packet,
    parse_packet,
)


def _hello(**kw: object) -> m.Hello:
    fields: dict[str, object] = dict(
        version=b"1.10",
        client_id=b"zcall 0.1       ",
        h3=os.urandom(32),
        zid=os.urandom(12),
        hashes=(b"S256", b"S384"),
        ciphers=(b"AES1", b"AES3"),
        auths=(b"HS80", b"HS32"),
        key_agreements=(b"X255", b"DH3k", b"EC25"),
        sas_types=(b"B256", b"B32 "),
        mac=os.urandom(8),
        signature_capable=True,
        passive=True,
    )
    fields.update(kw)
    return m.Hello(**fields)  # type: ignore[arg-type]


def _commit(ka: bytes = b"DH3k") -> m.Commit:
    value = os.urandom(16 if ka in (b"Mult", b"Prsh") else 32)
    return m.Commit(
        h2=os.urandom(32),
        zid=os.urandom(12),
        hash=b"S256",
        cipher=b"AES1",
        auth=b"HS32",
        key_agreement=ka,
        sas=b"B32 ",
        hvi=value,
        key_id=os.urandom(8) if ka == b"Prsh" else b"",
        mac=os.urandom(8),
    )


def _dhpart(part: int, pv_len: int = 384) -> m.DHPart:
    return m.DHPart(part, *(os.urandom(n) for n in (32, 8, 8, 8, 8, pv_len, 8)))


SAMPLES: dict[str, tuple[m.Message, int]] = {
    # name: (message, expected length in words, from the §5 figures)
    "Hello": (_hello(), 22 + 11),
    "HelloACK": (m.HelloAck(), 3),
    "Commit(DH)": (_commit(), 29),
    "Commit(Mult)": (_commit(b"Mult"), 25),
    "Commit(Prsh)": (_commit(b"Prsh"), 27),
    "DHPart1(DH3k)": (_dhpart(1), 117),
    "DHPart2(DH2k)": (_dhpart(2, 256), 85),
    "DHPart1(X255)": (_dhpart(1, 32), 29),
    "DHPart2(EC25)": (_dhpart(2, 64), 37),
    "Confirm1": (m.Confirm(1, os.urandom(8), os.urandom(16), os.urandom(40)), 19),
    "Confirm2+sig": (m.Confirm(2, os.urandom(8), os.urandom(16), os.urandom(48)), 21),
    "Conf2ACK": (m.Conf2Ack(), 3),
    "Error": (m.Error(0x61), 4),
    "ErrorACK": (m.ErrorAck(), 3),
    "GoClear": (m.GoClear(os.urandom(8)), 5),
    "ClearACK": (m.ClearAck(), 3),
    "SASrelay": (m.SasRelay(os.urandom(8), os.urandom(16), os.urandom(40)), 19),
    "RelayACK": (m.RelayAck(), 3),
    "Ping": (m.Ping(b"1.10", os.urandom(8)), 6),
    "PingACK": (m.PingAck(b"1.10", os.urandom(8), os.urandom(8), 0xDEADBEEF), 9),
}


@pytest.mark.parametrize("name", list(SAMPLES))
def test_round_trip_and_size(name: str) -> None:
    message, words = SAMPLES[name]
    raw = message.encode()
    assert len(raw) == 4 * words
    assert raw[:2] == b"\x50\x5a" and struct.unpack("!H", raw[2:4])[0] == words
    parsed = m.parse_message(raw)
    assert parsed == message and type(parsed) is type(message)
    assert parsed.raw == raw and parsed.encode() == raw


# DHPart and Confirm/SASrelay carry variable parts (public value, signature): their sizes are checked where
# the meaning is known (the session's PV_LEN, parse_confirm_body), tested separately below.
FIXED_LAYOUT = [n for n in SAMPLES if not n.startswith(("DHPart", "Confirm", "SASrelay"))]


@pytest.mark.parametrize("name", FIXED_LAYOUT)
def test_truncated_and_extended_are_rejected(name: str) -> None:
    raw = SAMPLES[name][0].encode()
    for bad in (raw[:-4], raw + b"\x00" * 4):
        # Keep the length field consistent with the new size, so the per-type layout check must catch it.
        fixed = bad[:2] + struct.pack("!H", len(bad) // 4) + bad[4:]
        with pytest.raises(ParseError):
            m.parse_message(fixed)
    with pytest.raises(BadLength):
        m.parse_message(raw[:-4])  # length field now disagrees with the size


def test_hello_flags_and_lists() -> None:
    hello = _hello(mitm=True, signature_capable=False, passive=False)
    raw = hello.encode()
    assert raw[76] == 0x20  # M flag alone
    assert raw[77] & 0x0F == 2 and raw[78] == 0x22 and raw[79] == 0x32
    parsed = m.parse_message(raw)
    assert isinstance(parsed, m.Hello) and parsed.mitm and not parsed.passive


def test_hello_counts_over_seven_rejected() -> None:
    raw = bytearray(_hello().encode())
    raw[77] = (raw[77] & 0xF0) | 0x08
    with pytest.raises(Malformed):
        m.parse_message(bytes(raw))
    with pytest.raises(ValueError):
        _hello(hashes=(b"S256",) * 8).encode()


def test_hello_non_ascii_algorithm_rejected() -> None:
    raw = bytearray(_hello().encode())
    raw[80] = 0xFF
    with pytest.raises(Malformed):
        m.parse_message(bytes(raw))


def test_bad_preamble_and_unknown_type() -> None:
    raw = m.HelloAck().encode()
    with pytest.raises(Malformed):
        m.parse_message(b"\x50\x5b" + raw[2:])
    with pytest.raises(UnknownType):
        m.parse_message(raw[:4] + b"Bogus   ")
    with pytest.raises(BadLength):
        m.parse_message(b"")


def test_fixed_size_messages_reject_other_sizes() -> None:
    raw = m.Error(0x10).encode() + b"\x00" * 4
    with pytest.raises(BadLength):
        m.parse_message(raw[:2] + struct.pack("!H", 5) + raw[4:])


def test_commit_length_must_fit_key_agreement() -> None:
    raw = _commit(b"DH3k").encode()
    # Claim Mult but keep the DH layout: 29 words is wrong for Mult (25).
    bad = raw[:68] + b"Mult" + raw[72:]
    with pytest.raises(BadLength):
        m.parse_message(bad)


def test_dhpart_public_value_limits() -> None:
    with pytest.raises(ValueError):
        _dhpart(1, 2048).encode()
    raw = _dhpart(1, 32).encode()
    short = raw[:12] + raw[12:84]  # header + fixed fields, no pv, no MAC
    with pytest.raises(ParseError):
        m.parse_message(short[:2] + struct.pack("!H", len(short) // 4) + short[4:])


def test_confirm_body_round_trip_and_flags() -> None:
    body = m.ConfirmBody(h0=os.urandom(32), sas_verified=True, disclosure=True, cache_expiry=86400)
    raw = body.encode()
    assert len(raw) == 40 and raw[35] == 0x05
    assert m.parse_confirm_body(raw) == body
    signed = m.ConfirmBody(h0=os.urandom(32), signature=os.urandom(8))
    assert m.parse_confirm_body(signed.encode()) == signed
    with pytest.raises(BadLength):
        m.parse_confirm_body(raw + b"\x00" * 4)  # sig len says 0 but 4 more bytes follow
    with pytest.raises(BadLength):
        m.parse_confirm_body(raw[:36])


def test_packet_round_trip_and_crc() -> None:
    msg = m.Ping(b"1.10", b"abcdefgh").encode()
    pkt = encode_packet(0x1234, 0xCAFEBABE, msg)
    assert pkt[:4] == b"\x10\x00\x12\x34" and pkt[4:8] == b"ZRTP"
    parsed = parse_packet(pkt)
    assert (parsed.sequence, parsed.ssrc, parsed.message) == (0x1234, 0xCAFEBABE, msg)
    corrupt = bytearray(pkt)
    corrupt[20] ^= 1
    with pytest.raises(BadCrc):
        parse_packet(bytes(corrupt))
    with pytest.raises(NotZrtp):
        parse_packet(b"\x80" + pkt[1:])
    with pytest.raises(BadLength):
        parse_packet(pkt[:20])
    with pytest.raises(BadLength):
        parse_packet(pkt + bytes(MAX_PACKET_LEN))


def test_fragmented_packets_refused() -> None:
    from zcall.zrtp.crc32c import zrtp_crc_bytes

    pkt = encode_packet(1, 2, m.HelloAck().encode())
    frag = bytes([0x30]) + pkt[1:-4]
    with pytest.raises(Malformed):
        parse_packet(frag + zrtp_crc_bytes(frag))


def test_variable_messages_below_minimum_rejected() -> None:
    for name in ("DHPart1(X255)", "Confirm1", "SASrelay"):
        raw = SAMPLES[name][0].encode()
        cut = raw[: 4 * (len(raw) // 4 - 8)]
        with pytest.raises(BadLength):
            m.parse_message(cut[:2] + struct.pack("!H", len(cut) // 4) + cut[4:])


def test_a_hello_with_unused_bits_set_parses_and_encodes_back_to_its_bytes() -> None:
    """§5.2: unused bits are ignored on receipt; a Hello is hashed and MACed as sent (found by hypothesis)."""
    hello = m.Hello(b"1.10", b"zcall".ljust(16), bytes(32), bytes(12), (b"S256",), (b"AES1",), (b"HS32",),
                    (b"X255",), (b"B32 ",), passive=True)  # fmt: skip
    raw = bytearray(hello.encode())
    raw[76] |= 0x8F
    raw[77] |= 0xF0
    parsed = m.parse_message(bytes(raw))
    assert isinstance(parsed, m.Hello) and parsed.passive and not parsed.mitm and parsed.hashes == (b"S256",)
    assert parsed.encode() == bytes(raw)
