"""RED (RFC 2198): the payload format, its parser's limits (fuzzed), two sessions repairing loss with it."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.relay import Impairment, UdpRelay
from tests.unit.media.test_stream import KEY_A, KEY_B, ListSink
from zcall.media import red
from zcall.media.audio import ToneSource
from zcall.media.stream import MediaSession

OPUS, RED = 111, 63


def test_round_trip_carries_the_previous_frames() -> None:
    encoder = red.RedEncoder(OPUS, distance=2)
    payloads = [encoder.encode(b"frame%d" % i, 1000 + 960 * i) for i in range(4)]
    assert red.parse(payloads[0], RED) == [red.RedBlock(OPUS, 0, b"frame0")]
    assert red.parse(payloads[3], RED) == [
        red.RedBlock(OPUS, 1920, b"frame1"), red.RedBlock(OPUS, 960, b"frame2"),
        red.RedBlock(OPUS, 0, b"frame3"),
    ]
    encoder.set_distance(0)
    assert red.parse(encoder.encode(b"x", 1000 + 960 * 4), RED) == [red.RedBlock(OPUS, 0, b"x")]
    assert encoder.encode(b"y", 0) == bytes([OPUS]) + b"y"  # 1 byte of overhead on a clean path


def test_frames_too_old_to_describe_are_left_out() -> None:
    encoder = red.RedEncoder(OPUS, distance=1)
    encoder.encode(b"before the pause", 0)
    after = encoder.encode(b"after", 48000)  # 1 s: beyond the 14-bit offset
    assert red.parse(after, RED) == [red.RedBlock(OPUS, 0, b"after")]


@pytest.mark.parametrize(("payload", "reason"), [
    (b"", "empty"),
    (b"\x80\x00", "truncated-header"),
    (b"\xef\x00\x0f\xff" * 5 + b"\x6f", "too-many-blocks"),
    (bytes([0x80 | OPUS, 0, 0x0c, 0x05, OPUS]) + b"abc", "truncated-block"),
    (bytes([0x80 | RED, 0, 0x0c, 0x01, OPUS]) + b"ab", "nested-red"),
])
def test_malformed_payloads_have_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(red.RedError) as caught:
        red.parse(payload, RED)
    assert caught.value.reason == reason and reason in red.REASONS


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_parse_splits_or_refuses(payload: bytes) -> None:
    try:
        blocks = red.parse(payload, RED)
    except red.RedError as exc:
        assert exc.reason in red.REASONS
        return
    assert 1 <= len(blocks) <= red.MAX_BLOCKS
    assert sum(len(b.payload) for b in blocks) <= len(payload)


def test_distance_follows_the_loss() -> None:
    assert [red.distance_for_loss(p) for p in (0, 1, 5, 10, 15, 30)] == [0, 1, 1, 2, 2, 3]


async def _call(loss: float, with_red: bool) -> dict[str, object]:
    a = MediaSession(ToneSource(500), ListSink(), rtcp_interval_s=0.2)
    b = MediaSession(ToneSource(700), ListSink(), rtcp_interval_s=0.2)
    if with_red:
        a.set_red(RED)
        b.set_red(RED)
    addr_a, addr_b = await a.open(("127.0.0.1", 0)), await b.open(("127.0.0.1", 0))
    relay = UdpRelay(to_a=addr_a, to_b=addr_b, seed=5, a_to_b=Impairment(loss=loss), b_to_a=Impairment())
    relay.start()
    try:
        a.set_remote(relay.address_a)
        b.set_remote(relay.address_b)
        a.start_srtp(KEY_A, KEY_B)
        b.start_srtp(KEY_B, KEY_A)
        await asyncio.sleep(3.0)
    finally:
        relay.stop()
        a.close()
        b.close()
    return {"a": a.stats(), "b": b.stats()}


async def test_red_repairs_what_the_network_lost() -> None:
    """20 % loss a->b: with RED the frames are rebuilt from the copies in later packets."""
    with_red, without = await _call(0.2, True), await _call(0.2, False)
    print("red:", with_red["b"]["playout"], with_red["a"]["red_distance"], "plain:", without["b"]["playout"])
    repaired, plain = with_red["b"]["playout"], without["b"]["playout"]
    assert with_red["b"]["lost"] > 20  # the network did lose packets
    assert with_red["a"]["red_distance"] >= 2 and not with_red["a"]["fec"]  # sized by RTCP; FEC off
    assert with_red["b"]["counters"]["red_blocks"] > 0
    # Frames the jitter buffer had to give up on (FEC or concealment) fall sharply.
    assert repaired["lost"] * 3 < plain["lost"]
