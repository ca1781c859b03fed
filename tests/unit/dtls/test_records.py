"""DTLS record framing: split and pack."""

from __future__ import annotations

import pytest

from zcall.dtls.records import HEADER, RecordError, pack_datagrams, split_records


def record(content_type: int, body: bytes, epoch: int = 0, seq: int = 0) -> bytes:
    return bytes([content_type, 0xFE, 0xFD]) + epoch.to_bytes(2, "big") + seq.to_bytes(6, "big") \
        + len(body).to_bytes(2, "big") + body


def test_split_finds_each_record() -> None:
    records = [record(22, b"a" * 10), record(20, b"\x01", seq=1), record(23, b"", epoch=1)]
    assert split_records(b"".join(records)) == records


def test_pack_respects_mtu_and_order() -> None:
    records = [record(22, bytes(100), seq=i) for i in range(10)]
    datagrams = pack_datagrams(records, 250)
    assert all(len(d) <= 250 for d in datagrams)
    assert b"".join(datagrams) == b"".join(records)
    assert [len(split_records(d)) for d in datagrams] == [2, 2, 2, 2, 2]
    # A record bigger than the MTU still goes out, alone.
    assert pack_datagrams([record(22, bytes(300)), record(22, b"x")], 250) == [record(22, bytes(300)),
                                                                               record(22, b"x")]


def test_errors_name_a_reason() -> None:
    with pytest.raises(RecordError) as info:
        split_records(record(22, b"abc") + b"\x16\xfe")
    assert info.value.reason == "truncated_header"
    assert len(record(22, b"")) == HEADER
