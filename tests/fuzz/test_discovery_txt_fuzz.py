"""Hypothesis: TXT records from the network either decode to valid fields or raise TxtError, nothing else."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from zcall.discovery.service import (
    MAX_NAME_BYTES,
    Announcement,
    TxtError,
    decode_txt,
    encode_txt,
    parse_txt_record,
)

_entry = st.one_of(
    st.binary(max_size=40),
    st.tuples(
        st.sampled_from([b"txtvers", b"zid", b"sip", b"name", b"ver", b"ZID", b""]),
        st.one_of(st.binary(max_size=30), st.sampled_from([b"1", b"5060", b"0123456789abcdef01234567"])),
    ).map(lambda kv: kv[0] + b"=" + kv[1]),
)


def _wire(entries: list[bytes]) -> bytes:
    return b"".join(bytes([len(e)]) + e for e in entries)


def _check(raw: bytes) -> None:
    try:
        ann = decode_txt(raw)
    except TxtError as exc:
        assert exc.reason
        return
    assert len(ann.zid) == 12 and 1 <= ann.sip_port <= 65535
    assert 0 < len(ann.name.encode()) <= MAX_NAME_BYTES


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=1400))
def test_random_bytes(raw: bytes) -> None:
    _check(raw)


@settings(max_examples=400, deadline=None)
@given(st.lists(_entry, max_size=40))
def test_structured_records(entries: list[bytes]) -> None:
    _check(_wire(entries))


@settings(max_examples=200, deadline=None)
@given(
    st.binary(min_size=12, max_size=12),
    st.integers(min_value=1, max_value=65535),
    st.text(min_size=1, max_size=20).filter(lambda s: s == s.strip()),
    st.from_regex(r"[0-9A-Za-z.+~_-]{1,32}", fullmatch=True),
)
def test_whatever_we_encode_peers_accept(zid: bytes, port: int, name: str, version: str) -> None:
    try:
        props = encode_txt(zid, port, name, version)
    except ValueError:
        return  # a name with control characters: refused at our end too
    raw = _wire([f"{k}={v}".encode() for k, v in props.items()])
    assert decode_txt(raw) == Announcement(zid=zid, sip_port=port, name=name, version=version)
    assert parse_txt_record(raw)["zid"] == zid.hex().encode()
