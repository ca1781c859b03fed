"""Hypothesis fuzzing of the media core: parsers raise only their parse error, and the receive path
(demux -> SRTP -> RTP parse -> jitter buffer) turns hostile input into counted rejects, never crashes."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zcall.media.demux import PacketKind, classify
from zcall.media.jitter import JitterBuffer, PlayoutKind
from zcall.media.rtp import (
    Bye,
    ReceiverReport,
    ReportBlock,
    RtpPacket,
    RtpParseError,
    SdesChunk,
    SenderReport,
    SourceDescription,
    parse_rtcp_compound,
    serialize_rtcp_compound,
)
from zcall.media.srtp import SrtpError, SrtpReceiver, SrtpSender
from zcall.media.srtpkeys import SrtpKeys, SrtpProfile

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
u32 = st.integers(0, 2**32 - 1)

rtp_packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127),
    sequence=st.integers(0, 0xFFFF),
    timestamp=u32,
    ssrc=u32,
    payload=st.binary(max_size=200),
    marker=st.booleans(),
    csrcs=st.lists(u32, max_size=15).map(tuple),
    extension=st.none()
    | st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=40).map(lambda b: b[: len(b) // 4 * 4])),
    padding=st.integers(0, 255),
)

report_blocks = st.builds(
    ReportBlock,
    ssrc=u32,
    fraction_lost=st.integers(0, 255),
    cumulative_lost=st.integers(-(2**23), 2**23 - 1),
    highest_sequence=u32,
    jitter=u32,
    lsr=u32,
    dlsr=u32,
)
blocks = st.lists(report_blocks, max_size=4).map(tuple)
rtcp_packets = st.one_of(
    st.builds(SenderReport, u32, st.integers(0, 2**64 - 1), u32, u32, u32, blocks),
    st.builds(ReceiverReport, u32, blocks),
    st.builds(
        SourceDescription,
        st.lists(
            st.builds(
                SdesChunk,
                u32,
                st.lists(st.tuples(st.integers(1, 255), st.binary(max_size=30)), max_size=3).map(tuple),
            ),
            max_size=3,
        ).map(tuple),
    ),
    st.builds(Bye, st.lists(u32, max_size=4).map(tuple), st.binary(max_size=40)),
)


def mutate(data: bytes, edits: list[tuple[int, int]], cut: int) -> bytes:
    buf = bytearray(data)
    for position, value in edits:
        if buf:
            buf[position % len(buf)] = value
    return bytes(buf[: max(0, len(buf) - cut)])


edits = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6)


@FUZZ
@given(rtp_packets)
def test_rtp_round_trip(packet: RtpPacket) -> None:
    assert RtpPacket.parse(packet.serialize()) == packet


@FUZZ
@given(st.binary(max_size=400) | rtp_packets.map(RtpPacket.serialize), edits, st.integers(0, 8))
def test_rtp_parser_only_raises_its_error(data: bytes, changes: list[tuple[int, int]], cut: int) -> None:
    data = mutate(data, changes, cut)
    try:
        packet = RtpPacket.parse(data)
    except RtpParseError as exc:
        assert exc.reason
        return
    # Whatever it accepts re-serializes to the same octets, except the (arbitrary) padding content.
    wire = packet.serialize()
    assert len(wire) == len(data) and wire[: len(wire) - packet.padding] == data[: len(data) - packet.padding]
    assert RtpPacket.parse(wire) == packet


@FUZZ
@given(st.lists(rtcp_packets, min_size=1, max_size=4))
def test_rtcp_round_trip(packets: list[SenderReport | ReceiverReport | SourceDescription | Bye]) -> None:
    assert parse_rtcp_compound(serialize_rtcp_compound(list(packets))) == packets


@FUZZ
@given(
    st.binary(max_size=400) | st.lists(rtcp_packets, min_size=1, max_size=3).map(serialize_rtcp_compound),
    edits,
    st.integers(0, 8),
)
def test_rtcp_parser_only_raises_its_error(data: bytes, changes: list[tuple[int, int]], cut: int) -> None:
    data = mutate(data, changes, cut)
    try:
        packets = parse_rtcp_compound(data)
    except RtpParseError as exc:
        assert exc.reason
        return
    # Accepted input parses back identically after re-serializing (padding may normalise).
    assert parse_rtcp_compound(serialize_rtcp_compound(packets)) == packets


@FUZZ
@given(st.binary(max_size=300))
def test_demux_never_raises(data: bytes) -> None:
    assert isinstance(classify(data), PacketKind)


KEYS = SrtpKeys(SrtpProfile.AES_CM_128_HMAC_SHA1_80, bytes(range(16)), bytes(range(100, 114)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["genuine", "mutated", "random", "replay"]),
            st.integers(0, 60),  # sequence offset: reordering and jumps
            edits,
            st.binary(max_size=120),
            st.booleans(),  # pop a tick after this datagram
        ),
        max_size=80,
    )
)
def test_receive_path_turns_garbage_into_counted_rejects(
    script: list[tuple[str, int, list[tuple[int, int]], bytes, bool]],
) -> None:
    sender, receiver = SrtpSender(KEYS), SrtpReceiver(KEYS)
    rtp_seen = 0
    jitter = JitterBuffer()
    parse_rejects = 0
    pushed: set[bytes] = set()
    played: list[bytes] = []
    # Protected in order once (libsrtp refuses to reuse an index); delivered in a scripted order.
    sent = [
        sender.protect(RtpPacket(111, (65500 + i) & 0xFFFF, i * 960, 42, b"frame-%d" % i).serialize())
        for i in range(len(script) + 60)
    ]
    now = 0.0
    for n, (kind, offset, changes, junk, tick) in enumerate(script):
        genuine = sent[max(0, n + offset - 10)]
        data = {
            "genuine": genuine,
            "mutated": mutate(genuine, changes, 0),
            "random": junk,
            "replay": sent[offset % (n + 1)],
        }[kind]
        now += 7.0
        if classify(data) is not PacketKind.RTP:
            continue
        rtp_seen += 1
        try:
            packet = RtpPacket.parse(receiver.unprotect(data))
        except SrtpError as exc:
            assert exc.reason in {"auth", "replay", "malformed", "too_large", "error", "cipher"}
            continue
        except RtpParseError:
            parse_rejects += 1
            continue
        pushed.add(packet.payload)
        jitter.push(packet, now)
        if tick:
            out = jitter.pop(now)
            if out.kind is PlayoutKind.PLAY:
                assert out.payload is not None
                played.append(out.payload)
    for _ in range(40):
        now += 20.0
        out = jitter.pop(now)
        if out.kind is PlayoutKind.PLAY and out.payload is not None:
            played.append(out.payload)
    # Only authenticated packets reach playout, each at most once.
    assert set(played) <= pushed and len(played) == len(set(played))
    assert receiver.accepted + sum(receiver.rejects.values()) == rtp_seen
    assert 0 <= jitter.depth_ms <= 1000
    assert parse_rejects == 0  # libsrtp only authenticates what we serialized


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 0xFFFF),
            st.sampled_from([1, 2, 3]),
            u32,
            st.floats(0, 500),
            st.integers(0, 3),
        ),
        max_size=120,
    )
)
def test_jitter_buffer_survives_any_arrival_pattern(script: list[tuple[int, int, int, float, int]]) -> None:
    jitter = JitterBuffer()
    now = 0.0
    played: list[bytes] = []
    for n, (seq, ssrc, ts, gap, pops) in enumerate(script):
        now += gap
        jitter.push(RtpPacket(111, seq, ts, ssrc, b"%d" % n), now)
        for _ in range(pops):
            out = jitter.pop(now)
            if out.kind is PlayoutKind.PLAY:
                assert out.payload is not None
                played.append(out.payload)
            elif out.kind is PlayoutKind.FEC:
                assert out.payload is not None and out.sequence is not None
            assert 20 <= jitter.target_ms <= 200
    assert len(played) == len(set(played))
    for counter in ("late", "lost", "duplicates", "reordered", "played", "concealed", "fec_recovered"):
        assert getattr(jitter, counter) >= 0
