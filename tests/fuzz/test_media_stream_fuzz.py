"""Whatever arrives on the media port, the session counts it and keeps playing; it never raises."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from zcall.media.audio import NullSink, SilenceSource
from zcall.media.codec import FRAME_BYTES
from zcall.media.srtp import SrtpError, SrtpSender
from zcall.media.srtpkeys import SrtpKeys, SrtpProfile
from zcall.media.stream import MediaSession

KEY = SrtpKeys(SrtpProfile.AES_CM_128_HMAC_SHA1_80, bytes(range(16)), bytes(range(14)))


class CountingSink(NullSink):
    def write_frame(self, pcm: bytes) -> None:
        assert len(pcm) == FRAME_BYTES
        super().write_frame(pcm)


def _session() -> tuple[MediaSession, CountingSink, list[bytes]]:
    keyed: list[bytes] = []
    sink = CountingSink()
    session = MediaSession(SilenceSource(), sink, on_key_packet=lambda data, _addr: keyed.append(data),
                           clock=lambda: 0.0)
    session.start_srtp(KEY, KEY)
    return session, sink, keyed


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=300), max_size=8))
def test_fuzz_raw_datagrams(datagrams: list[bytes]) -> None:
    session, sink, keyed = _session()
    for i, data in enumerate(datagrams):
        session._on_datagram(data, ("192.0.2.1", 4000))
        session.tick(i * 0.02)
    stats = session.stats()
    handled = len(keyed) + stats["received"] + stats["counters"].get("rtcp_received", 0)
    assert handled + sum(stats["drops"].values()) >= len(datagrams) - stats["drops"].get("no-remote", 0)
    assert sink.frames == len(datagrams)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF), st.binary(min_size=0, max_size=200),
                  st.integers(0, 127)),
        min_size=1, max_size=12,
    )
)
def test_fuzz_authentic_packets_with_garbage_inside(packets: list[tuple[int, int, bytes, int]]) -> None:
    """Packets that pass SRTP (the far end holds the key) but carry nonsense headers or Opus payloads."""
    session, sink, _ = _session()
    sender = SrtpSender(KEY)
    for i, (seq, ts, payload, pt) in enumerate(packets):
        try:
            if 64 <= pt <= 95:  # RTCP packet types under rtcp-mux: exercise the RTCP path instead
                rtcp = struct.pack("!BBHI", 0x80, 128 + pt, 1, 7) + payload[:4]
                data = sender.protect_rtcp(rtcp)
            else:
                data = sender.protect(struct.pack("!BBHII", 0x80, pt, seq, ts, 0x1234) + payload)
        except SrtpError:
            data = b""  # our own sender refuses to reuse an index: send nothing this tick
        session._on_datagram(data, ("192.0.2.1", 4000))
        session.tick(i * 0.02)
    # One frame per tick at least; a packet longer than 20 ms plays as several (each checked by the sink).
    assert len(packets) <= sink.frames <= 6 * len(packets)
