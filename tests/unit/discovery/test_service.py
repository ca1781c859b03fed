"""TXT record encoding, wire parsing and validation for zcall's mDNS announcement."""

from __future__ import annotations

import pytest
from zeroconf import ServiceInfo

from zcall.discovery.lan import candidate_name, instance_label
from zcall.discovery.service import (
    MAX_NAME_BYTES,
    ZCALL_SERVICE,
    Announcement,
    TxtError,
    decode_announcement,
    decode_txt,
    encode_txt,
    parse_txt_record,
)

ZID = bytes.fromhex("0123456789abcdef01234567")


def wire(*strings: bytes) -> bytes:
    return b"".join(bytes([len(s)]) + s for s in strings)


FIELDS = [b"txtvers=1", b"zid=0123456789abcdef01234567", b"sip=5060", b"name=Kitchen", b"ver=0.1.0"]
GOOD = wire(*FIELDS)


def good_with(old: bytes, new: bytes) -> bytes:
    """The good record with one entry swapped, length prefixes recomputed."""
    assert old in FIELDS
    return wire(*(new if f == old else f for f in FIELDS))


def test_round_trip_through_zeroconf_wire_encoding() -> None:
    props = encode_txt(ZID, 5062, "Büro 2", "0.1.0")
    info = ServiceInfo(ZCALL_SERVICE, f"Büro 2.{ZCALL_SERVICE}", port=5062, properties=props)
    assert decode_txt(info.text) == Announcement(zid=ZID, sip_port=5062, name="Büro 2", version="0.1.0")


def test_decode_published_shape() -> None:
    assert decode_txt(GOOD) == Announcement(zid=ZID, sip_port=5060, name="Kitchen", version="0.1.0")


def test_keys_case_insensitive_and_first_wins() -> None:
    raw = wire(b"TXTVERS=1", b"Zid=0123456789abcdef01234567", b"zid=ffffffffffffffffffffffff", b"SIP=7000",
               b"name=A", b"ver=1", b"=ignored", b"flag")
    props = parse_txt_record(raw)
    assert props["zid"] == b"0123456789abcdef01234567"
    assert props["flag"] is None
    assert decode_announcement(props).sip_port == 7000


def test_empty_record() -> None:
    assert parse_txt_record(b"\x00") == {}
    with pytest.raises(TxtError, match="missing-txtvers"):
        decode_txt(b"\x00")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (GOOD[:-3], "truncated"),
        (wire(b"a=b") * 40, "too-many-entries"),
        (wire(b"x=" + b"y" * 250) * 6, "too-long"),
        (wire(b"\xffkey=1"), "bad-key"),
        (wire(b"ke\x01y=1"), "bad-key"),
        (good_with(b"txtvers=1", b"txtvers=2"), "bad-txtvers"),
        (good_with(b"zid=0123456789abcdef01234567", b"zid=0123456789ABCDEF01234567"), "bad-zid"),
        (good_with(b"zid=0123456789abcdef01234567", b"zid=0123456789abcdef0123456z"), "bad-zid"),
        (wire(b"txtvers=1", b"zid=0123", b"sip=5060", b"name=K", b"ver=1"), "bad-zid"),
        (good_with(b"sip=5060", b"sip=0000"), "bad-sip"),
        (good_with(b"sip=5060", b"sip=65536"), "bad-sip"),
        (good_with(b"sip=5060", b"sip=+506"), "bad-sip"),
        (good_with(b"sip=5060", b"sip"), "missing-sip"),
        (good_with(b"name=Kitchen", b"name=Kit\nchen"), "bad-name"),
        (good_with(b"name=Kitchen", b"name=\xc3("), "bad-name"),
        (good_with(b"name=Kitchen", b"name="), "bad-name"),
        (good_with(b"name=Kitchen", b"name=" + b"k" * 64), "bad-name"),
        (good_with(b"ver=0.1.0", b"ver=0.1 beta"), "bad-ver"),
    ],
)
def test_rejects_malformed(raw: bytes, reason: str) -> None:
    with pytest.raises(TxtError) as info:
        decode_txt(raw)
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("zid", "port", "name", "version"),
    [
        (b"short", 5060, "A", "1"),
        (ZID, 0, "A", "1"),
        (ZID, 65536, "A", "1"),
        (ZID, 5060, "", "1"),
        (ZID, 5060, " padded", "1"),
        (ZID, 5060, "é" * 32, "1"),  # 64 UTF-8 bytes: over one DNS label
        (ZID, 5060, "A", "has space"),
    ],
)
def test_encode_refuses_what_peers_would_reject(zid: bytes, port: int, name: str, version: str) -> None:
    with pytest.raises(ValueError):
        encode_txt(zid, port, name, version)


def test_candidate_names() -> None:
    assert candidate_name("Desk", 1) == "Desk"
    assert candidate_name("Desk", 2) == "Desk (2)"
    long = "é" * 31  # 62 bytes
    renamed = candidate_name(long, 12)
    assert renamed.endswith(" (12)") and len(renamed.encode()) <= MAX_NAME_BYTES
    assert renamed.encode().decode() == renamed  # never cut inside a character


def test_instance_label() -> None:
    assert instance_label("Desk (2)._zcall._udp.local.") == "Desk (2)"
    assert instance_label("Desk._ZCALL._udp.local.") == "Desk"
    assert instance_label("Desk._sip._udp.local.") is None
    assert instance_label("._zcall._udp.local.") is None
