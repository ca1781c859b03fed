"""Hypothesis against the DTLS-SRTP wrapper: random and mutated records never escape receive()."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.dtls.harness import Pair, make_cred, session
from zcall.dtls import (
    DtlsClosed,
    DtlsFailed,
    DtlsSecure,
    DtlsSrtpSession,
    Fingerprint,
    FingerprintMismatch,
    FingerprintParseError,
    PeerPin,
    SetupError,
    role_for,
)
from zcall.dtls.records import RecordError, split_records

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LIVE = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ALICE, BOB = make_cred("alice"), make_cred("bob")
ALICE_FP = Fingerprint.of(ALICE.certificate)
EVENT_TYPES = (DtlsSecure, DtlsFailed, DtlsClosed, FingerprintMismatch)


def _transcript() -> tuple[list[bytes], list[bytes]]:
    pair = Pair(session("client", ALICE, BOB, mtu=400), session("server", BOB, ALICE, mtu=400))
    pair.client.start(0.0)
    pair.settle(0.0)
    pair.secure()
    return pair.sent["c2s"], pair.sent["s2c"]


C2S, S2C = _transcript()


Mutation = tuple[list[tuple[int, int]], int | None, bytes]


def _mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None, tail: bytes) -> bytes:
    buf = bytearray(data)
    for position, value in edits:
        buf[position % len(buf)] = value
    if cut is not None:
        del buf[cut % (len(buf) + 1) :]
    return bytes(buf) + tail


mutations = st.tuples(
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
    st.none() | st.integers(0, 10_000),
    st.binary(max_size=40),
)


def _check_events(events: Sequence[object]) -> None:
    assert all(isinstance(e, EVENT_TYPES) for e in events)


def _drain(s: DtlsSrtpSession) -> list[object]:
    out: list[object] = []
    while (event := s.next_event()) is not None:
        out.append(event)
    return out


def _framed(content_type: int, epoch: int, body: bytes) -> bytes:
    header = bytes([content_type, 0xFE, 0xFD]) + epoch.to_bytes(2, "big") + bytes(6)
    return header + len(body).to_bytes(2, "big") + body


# Raw noise is mostly stopped by our framing check; well-framed records with random bodies reach OpenSSL.
datagrams = st.binary(max_size=300) | st.builds(
    _framed, st.integers(20, 23), st.integers(0, 1), st.binary(max_size=300)
)


@FUZZ
@given(st.lists(datagrams, min_size=1, max_size=4))
def test_random_bytes_into_a_fresh_server(datagrams: list[bytes]) -> None:
    server = session("server", BOB, ALICE)
    for datagram in datagrams:
        server.receive(datagram, 1.0)
    server.datagrams_to_send(1.0)
    _check_events(_drain(server))
    server.handle_timer(1e9)


@FUZZ
@given(st.sampled_from(range(len(C2S))), mutations)
def test_mutated_client_flights_into_a_server(index: int, mutation: Mutation) -> None:
    server = session("server", BOB, ALICE)
    for datagram in C2S[:index]:
        server.receive(datagram, 1.0)
    server.receive(_mutate(C2S[index], *mutation), 1.0)
    server.datagrams_to_send(1.0)
    events = _drain(server)
    _check_events(events)
    # The real client's keys are not derivable from a transcript replayed against a fresh server.
    assert not any(isinstance(e, DtlsSecure) for e in events)


@FUZZ
@given(st.sampled_from(range(len(S2C))), mutations)
def test_mutated_server_flights_into_a_client(index: int, mutation: Mutation) -> None:
    client = session("client", ALICE, BOB)
    client.start(0.0)
    for datagram in S2C[:index]:
        client.receive(datagram, 1.0)
    client.receive(_mutate(S2C[index], *mutation), 1.0)
    client.datagrams_to_send(1.0)
    events = _drain(client)
    _check_events(events)
    assert not any(isinstance(e, DtlsSecure) for e in events)


@LIVE
@given(st.sampled_from(["c2s", "s2c"]), st.integers(0, 8), mutations)
def test_live_handshake_with_one_mutated_datagram(direction: str, index: int, mutation: Mutation) -> None:
    def policy(d: str, first: int, batch: list[bytes]) -> list[bytes]:
        hit = (direction, index)
        return [_mutate(x, *mutation) if (d, i) == hit else x for i, x in enumerate(batch, first)]

    pair = Pair(session("client", ALICE, BOB, mtu=400), session("server", BOB, ALICE, mtu=400), policy=policy)
    pair.client.start(0.0)
    pair.settle(0.0)
    for events in pair.events.values():
        _check_events(events)
    secure = [e for events in pair.events.values() for e in events if isinstance(e, DtlsSecure)]
    if len(secure) == 2:  # whatever got through, both ends agree on the keys
        assert secure[0].local_key == secure[1].remote_key and secure[0].remote_key == secure[1].local_key


@FUZZ
@given(st.lists(st.binary(min_size=0, max_size=200), min_size=1, max_size=5), st.integers(20, 23))
def test_records_after_the_handshake(bodies: list[bytes], content_type: int) -> None:
    pair = Pair(session("client", ALICE, BOB), session("server", BOB, ALICE))
    pair.client.start(0.0)
    pair.settle(0.0)
    for seq, body in enumerate(bodies, 100):
        epoch = seq % 3
        header = bytes([content_type, 0xFE, 0xFD]) + epoch.to_bytes(2, "big") + seq.to_bytes(6, "big")
        pair.server.receive(header + len(body).to_bytes(2, "big") + body, 2.0)
    pair.settle(2.0)
    _check_events(pair.events["server"])
    assert pair.server.state in ("secure", "failed", "closed")


@FUZZ
@given(st.text(max_size=300))
def test_fingerprint_parser_raises_only_its_error(text: str) -> None:
    try:
        fp = Fingerprint.parse(text)
    except FingerprintParseError:
        return
    assert Fingerprint.parse(str(fp)) == fp


@FUZZ
@given(st.lists(st.text(max_size=120) | st.sampled_from([str(ALICE_FP), "sha-1 " + "AB:" * 19 + "AB"]),
                max_size=10))
def test_pin_from_sdp_raises_only_its_error(values: list[str]) -> None:
    try:
        pin = PeerPin.from_sdp(values)
    except FingerprintParseError:
        return
    assert pin.fingerprints and len({f.algorithm for f in pin.fingerprints}) == 1
    assert pin.matches(ALICE.certificate) == (ALICE_FP in pin.fingerprints)


@FUZZ
@given(st.binary(max_size=2000))
def test_record_splitter_raises_only_its_error(data: bytes) -> None:
    try:
        records = split_records(data)
    except RecordError:
        return
    assert b"".join(records) == data


@FUZZ
@given(st.text(max_size=20), st.text(max_size=20), st.booleans())
def test_role_for_raises_only_its_error(local: str, remote: str, is_offerer: bool) -> None:
    try:
        assert role_for(local, remote, is_offerer) in ("client", "server")
    except SetupError:
        pass
