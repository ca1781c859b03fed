"""Hypothesis against every ZRTP parser and against live sessions fed mutated packets."""

from __future__ import annotations

import os
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.zrtp.harness import make, run_pair
from zcall.zrtp import messages as m
from zcall.zrtp.crc32c import zrtp_crc_bytes
from zcall.zrtp.events import Failed, SecureReady
from zcall.zrtp.packet import ParseError, encode_packet, parse_packet
from zcall.zrtp.states import State

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LIVE = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VALID = [
    m.Hello(
        b"1.10",
        b"x" * 16,
        os.urandom(32),
        os.urandom(12),
        (b"S256",),
        (b"AES1",),
        (b"HS80", b"HS32"),
        (b"X255", b"DH3k"),
        (b"B32 ",),
    ).encode(),
    m.HelloAck().encode(),
    m.Commit(
        os.urandom(32), os.urandom(12), b"S256", b"AES1", b"HS80", b"X255", b"B256", os.urandom(32)
    ).encode(),
    m.DHPart(1, *(os.urandom(n) for n in (32, 8, 8, 8, 8, 32))).encode(),
    m.DHPart(2, *(os.urandom(n) for n in (32, 8, 8, 8, 8, 384))).encode(),
    m.Confirm(1, os.urandom(8), os.urandom(16), os.urandom(40)).encode(),
    m.Conf2Ack().encode(),
    m.Error(0x10).encode(),
    m.ErrorAck().encode(),
    m.GoClear(os.urandom(8)).encode(),
    m.ClearAck().encode(),
    m.SasRelay(os.urandom(8), os.urandom(16), os.urandom(40)).encode(),
    m.RelayAck().encode(),
    m.Ping(b"1.10", os.urandom(8)).encode(),
    m.PingAck(b"1.10", os.urandom(8), os.urandom(8), 5).encode(),
]


@FUZZ
@given(st.binary(max_size=3000))
def test_parse_packet_arbitrary_bytes(data: bytes) -> None:
    try:
        packet = parse_packet(data)
    except ParseError:
        return
    assert encode_packet(packet.sequence, packet.ssrc, packet.message) == data


@FUZZ
@given(st.binary(max_size=2500))
def test_parse_message_arbitrary_bytes(data: bytes) -> None:
    try:
        msg = m.parse_message(data)
    except ParseError:
        return
    assert msg.raw == data and msg.encode() == data


@FUZZ
@given(
    st.sampled_from(VALID),
    st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=6),
    st.integers(0, 64),
    st.booleans(),
)
def test_mutated_messages(raw: bytes, flips: list[tuple[int, int]], cut: int, fix_length: bool) -> None:
    data = bytearray(raw)
    for pos, value in flips:
        data[pos % len(data)] = value
    if cut:
        del data[-(cut % len(data)) :]
    if fix_length and len(data) >= 4:
        data[2:4] = (len(data) // 4).to_bytes(2, "big")
    try:
        msg = m.parse_message(bytes(data))
    except ParseError:
        return
    assert msg.encode() == bytes(data)


@FUZZ
@given(st.binary(max_size=2200))
def test_confirm_body_arbitrary(data: bytes) -> None:
    try:
        body = m.parse_confirm_body(data)
    except ParseError:
        return
    assert body.encode() == data


def _mutator(fix_crc: bool):  # type: ignore[no-untyped-def]
    def mutate(data: bytes, rng: random.Random) -> bytes:
        body = bytearray(data[:-4] if fix_crc else data)
        for _ in range(rng.randint(1, 3)):
            if not body:
                break
            choice = rng.random()
            pos = rng.randrange(len(body))
            if choice < 0.7:
                body[pos] ^= 1 << rng.randrange(8)
            elif choice < 0.85:
                del body[pos:]
            else:
                body[pos:pos] = os.urandom(rng.choice((1, 4, 8)))
        return bytes(body) + zrtp_crc_bytes(bytes(body)) if fix_crc else bytes(body)

    return mutate


@LIVE
@given(
    st.integers(0, 2**32),
    st.floats(0.0, 0.6),
    st.floats(0.0, 0.3),
    st.booleans(),
    st.sampled_from([None, "initiator", "responder"]),
)
def test_live_sessions_survive_mutation(
    seed: int, rate: float, loss: float, fix_crc: bool, role: str | None
) -> None:
    a, b = make(1, role), make(2)
    run = run_pair(
        a, b, loss=loss, jitter=0.1, seed=seed, mutate=_mutator(fix_crc), mutate_rate=rate, until=90
    )
    for side, sess in (("a", a), ("b", b)):
        assert sess.drops["internal_error"] == 0
        # Every other state keeps a retransmission or stall timer, so a finished run ends in one of these.
        assert sess.state in (State.SECURE, State.FAILED)
        assert sess.get_timer() is None
        done = [e for e in run.events[side] if isinstance(e, SecureReady | Failed)]
        assert len(done) <= 2  # at most SecureReady, then a Failed from a later refused message
    ra = [e for e in run.events["a"] if isinstance(e, SecureReady)]
    rb = [e for e in run.events["b"] if isinstance(e, SecureReady)]
    if ra and rb:  # whatever got through, two secure ends agree on keys and SAS
        assert ra[0].local_key == rb[0].remote_key and ra[0].sas_value == rb[0].sas_value


@LIVE
@given(st.lists(st.binary(min_size=0, max_size=600), max_size=12), st.integers(0, 5))
def test_junk_into_every_state(junk: list[bytes], stop_after: int) -> None:
    """Run an exchange, pause it after a few deliveries, inject junk (valid CRC) and carry on."""
    a, b = make(1, "initiator"), make(2, "responder")
    a.start(0.0)
    b.start(0.0)
    now = 0.0
    for _ in range(stop_after):
        now += 0.01
        for src, dst in ((a, b), (b, a)):
            for packet in src.datagrams_to_send(now):
                dst.receive(packet, now)
    for blob in junk:
        framed = encode_packet(1, 2, blob[: len(blob) - len(blob) % 4])
        a.receive(framed, now)
        b.receive(framed, now)
        a.receive(blob, now)
    assert a.drops["internal_error"] == 0 and b.drops["internal_error"] == 0
