"""Jitter buffer on a fake clock: ordering faults, loss/FEC, wrap, SSRC and timeline changes, clock skew."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zcall.media.jitter import JitterBuffer, Playout, PlayoutKind, _SlidingRange
from zcall.media.rtp import RtpPacket

FRAME = 20.0


def pkt(seq: int, ssrc: int = 1, ts: int | None = None) -> RtpPacket:
    timestamp = (seq * 960 if ts is None else ts) & 0xFFFFFFFF
    return RtpPacket(111, seq & 0xFFFF, timestamp, ssrc, b"f%d" % seq)


@dataclass
class Run:
    outputs: list[Playout] = field(default_factory=list)
    depths: list[int] = field(default_factory=list)  # depth just before each pop


def drive(jb: JitterBuffer, arrivals: list[tuple[float, RtpPacket]], ticks: int, phase: float = 10.0) -> Run:
    """Deliver (arrival_ms, packet) in time order and pop once per 20 ms tick at tick * 20 + phase."""
    pending = sorted(arrivals, key=lambda item: item[0])
    run = Run()
    index = 0
    for tick in range(ticks):
        now = tick * FRAME + phase
        while index < len(pending) and pending[index][0] <= now:
            jb.push(pending[index][1], pending[index][0])
            index += 1
        run.depths.append(jb.depth_ms)
        run.outputs.append(jb.pop(now))
    return run


def played(run: Run) -> list[bytes]:
    return [o.payload for o in run.outputs if o.kind is PlayoutKind.PLAY and o.payload is not None]


def test_silence_before_any_packet() -> None:
    jb = JitterBuffer()
    assert jb.pop(0.0).kind is PlayoutKind.SILENCE
    assert jb.depth_ms == 0


def test_in_order_stream_plays_everything_in_order() -> None:
    jb = JitterBuffer()
    run = drive(jb, [(i * FRAME + 3, pkt(i)) for i in range(200)], 220)
    assert played(run) == [b"f%d" % i for i in range(200)]
    assert (jb.lost, jb.late, jb.duplicates, jb.reordered) == (0, 0, 0, 0)
    assert jb.played == 200
    # Zero jitter settles on the minimum target.
    assert jb.target_ms == 20


def test_reordering_within_the_buffer_is_repaired() -> None:
    jb = JitterBuffer()
    arrivals = []
    for i in range(300):
        # Every even packet (after the first) arrives after the odd one that follows it.
        t = i * FRAME + 3 + (25 if i % 2 == 0 and i else 0)
        arrivals.append((t, pkt(i)))
    run = drive(jb, arrivals, 330)
    got = played(run)
    # In order; at most one frame dropped when the buffer trims itself back to its target.
    assert got == sorted(got, key=lambda p: int(p[1:])) and len(got) + jb.dropped == 300
    assert jb.dropped <= 1
    assert jb.reordered == 149 and jb.lost == 0 and jb.late == 0
    assert jb.target_ms == 60


def test_late_packets_teach_the_target() -> None:
    jb = JitterBuffer()
    # Every 10th packet is 70 ms late: at first past its slot, then covered once the target has learned it.
    arrivals = [(i * FRAME + 3 + (70 if i % 10 == 5 else 0), pkt(i)) for i in range(1000)]
    run = drive(jb, arrivals, 1010)
    assert jb.target_ms >= 80
    assert jb.late <= 2
    assert played(run)[-500:] == [b"f%d" % i for i in range(500, 1000)][-len(played(run)[-500:]) :]
    assert all(o.kind is PlayoutKind.PLAY for o in run.outputs[200:1000])


def test_duplicates_are_counted_and_played_once() -> None:
    jb = JitterBuffer()
    arrivals = [(i * FRAME + 3, pkt(i)) for i in range(100)]
    arrivals += [(i * FRAME + 5, pkt(i)) for i in range(0, 100, 10)]  # copy still buffered or just played
    arrivals += [(i * FRAME + 200, pkt(i)) for i in range(50, 60)]  # copies long after playout
    run = drive(jb, arrivals, 120)
    assert played(run) == [b"f%d" % i for i in range(100)]
    assert jb.duplicates == 20 and jb.late == 0


def test_lost_packet_is_recovered_with_fec_from_the_next() -> None:
    jb = JitterBuffer(min_ms=40)
    arrivals = [(i * FRAME + 3, pkt(i)) for i in range(100) if i != 50]
    run = drive(jb, arrivals, 110)
    fec = [o for o in run.outputs if o.kind is PlayoutKind.FEC]
    assert fec == [Playout(PlayoutKind.FEC, b"f51", 50)]
    assert jb.lost == 1 and jb.fec_recovered == 1
    assert b"f51" in played(run)


def test_two_lost_in_a_row_conceal_then_fec() -> None:
    jb = JitterBuffer(min_ms=60)
    arrivals = [(i * FRAME + 3, pkt(i)) for i in range(100) if i not in (50, 51)]
    run = drive(jb, arrivals, 110)
    kinds = [(o.kind, o.sequence) for o in run.outputs if o.kind in (PlayoutKind.FEC, PlayoutKind.CONCEAL)]
    assert (PlayoutKind.CONCEAL, 50) in kinds and (PlayoutKind.FEC, 51) in kinds
    assert jb.lost == 2 and jb.fec_recovered == 1


def test_late_packet_after_its_slot_is_dropped_and_counted() -> None:
    jb = JitterBuffer()
    arrivals = [(i * FRAME + 3, pkt(i)) for i in range(100) if i != 40]
    arrivals.append((40 * FRAME + 300, pkt(40)))  # 300 ms late
    run = drive(jb, arrivals, 110)
    assert b"f40" not in played(run)
    assert jb.late == 1 and jb.lost == 1


def test_sequence_wrap() -> None:
    jb = JitterBuffer()
    arrivals = [(i * FRAME + 3, pkt(65500 + i)) for i in range(100)]
    run = drive(jb, arrivals, 110)
    assert played(run) == [b"f%d" % (65500 + i) for i in range(100)]
    assert [o.sequence for o in run.outputs if o.kind is PlayoutKind.PLAY][35:37] == [65535, 0]
    assert jb.lost == 0 and jb.resyncs == 0


def test_timestamp_jump_with_contiguous_sequence_is_not_loss() -> None:
    jb = JitterBuffer()
    # DTX-like pause: the sender's timestamps jump 5 s while sequence numbers stay contiguous.
    arrivals = [(i * FRAME + 3, pkt(i)) for i in range(50)]
    arrivals += [((i + 250) * FRAME + 3, pkt(i, ts=(i + 250) * 960)) for i in range(50, 100)]
    # A discontinuous jump (timestamps leap with no matching pause) restarts the delay estimate instead of
    # inflating the target.
    arrivals += [((i + 250) * FRAME + 3, pkt(i, ts=i * 960 + 48000 * 3600)) for i in range(100, 150)]
    run = drive(jb, arrivals, 420)
    assert played(run) == [b"f%d" % i for i in range(150)]
    assert jb.lost == 0
    assert jb.target_ms <= 40


def test_ssrc_change_restarts_and_drops_stragglers() -> None:
    jb = JitterBuffer()
    arrivals = [(i * FRAME + 3, pkt(i, ssrc=1)) for i in range(50)]
    arrivals += [(i * FRAME + 3, pkt(9000 + i, ssrc=2)) for i in range(50, 100)]
    arrivals.append((60 * FRAME + 5, pkt(49, ssrc=1)))  # an old-stream straggler
    run = drive(jb, arrivals, 120)
    got = played(run)
    assert got[:49] == [b"f%d" % i for i in range(49)]
    assert got[-40:] == [b"f%d" % (9000 + i) for i in range(60, 100)]
    assert jb.resyncs == 1 and jb.late == 1


def test_outage_skips_ahead_instead_of_concealing_forever() -> None:
    jb = JitterBuffer()
    arrivals = [(i * FRAME + 3, pkt(i)) for i in range(50)]
    arrivals += [(i * FRAME + 3, pkt(i)) for i in range(150, 250)]  # 2 s of nothing
    run = drive(jb, arrivals, 260)
    assert played(run)[-50:] == [b"f%d" % i for i in range(200, 250)]
    assert jb.lost >= 95
    concealed_run = max_run(run, PlayoutKind.CONCEAL)
    assert concealed_run <= 10  # then it goes quiet until audio comes back


def max_run(run: Run, kind: PlayoutKind) -> int:
    best = current = 0
    for output in run.outputs:
        current = current + 1 if output.kind is kind else 0
        best = max(best, current)
    return best


def test_sender_restart_with_far_sequence_needs_confirmation() -> None:
    jb = JitterBuffer()
    arrivals = [(i * FRAME + 3, pkt(i)) for i in range(50)]
    arrivals.append((50 * FRAME + 3, pkt(30000)))  # a lone wild packet: dropped
    arrivals += [(i * FRAME + 3, pkt(i)) for i in range(51, 60)]
    arrivals += [(i * FRAME + 3, pkt(40000 + i)) for i in range(60, 120)]  # a real restart: adopted
    run = drive(jb, arrivals, 130)
    got = played(run)
    assert b"f30000" not in got
    assert got[-40:] == [b"f%d" % (40000 + i) for i in range(80, 120)]
    assert jb.resyncs == 1


def test_burst_grows_the_target_and_stops_glitching() -> None:
    jb = JitterBuffer()
    arrivals = []
    for i in range(3000):
        delay = 5.0
        if i % 250 < 5:  # every 5 s, a 100 ms stall releases five packets at once
            delay += 100 - (i % 250) * FRAME
        arrivals.append((i * FRAME + delay, pkt(i)))
    run = drive(jb, arrivals, 3010)
    assert 100 <= jb.target_ms <= 140
    later = run.outputs[1000:]
    assert all(o.kind is PlayoutKind.PLAY for o in later[:-10])
    assert jb.played >= 2990


def test_clamps_target_to_max() -> None:
    jb = JitterBuffer(max_ms=100)
    rng = random.Random(5)
    arrivals = [(i * FRAME + rng.random() * 400, pkt(i)) for i in range(500)]
    drive(jb, arrivals, 520)
    assert jb.target_ms == 100


@pytest.mark.parametrize("ppm", [100.0, -100.0])
def test_clock_skew_over_ten_minutes_keeps_depth_bounded(ppm: float) -> None:
    rng = random.Random(42)
    jb = JitterBuffer()
    period = FRAME / (1 + ppm * 1e-6)  # a faster sender clock sends more often in our time
    frames = 10 * 60 * 50
    arrivals = [(i * period + 2 + rng.random() * 30.0, pkt(i)) for i in range(frames)]
    run = drive(jb, arrivals, frames, phase=15.0)
    depths = run.depths[3000 : frames - 100]
    target = jb.target_ms
    assert 40 <= target <= 60
    # The sender drifts by one frame every 200 s; the buffer must absorb it without drifting itself.
    first_minute = sum(depths[:3000]) / 3000
    last_minute = sum(depths[-3000:]) / 3000
    assert abs(last_minute - first_minute) <= FRAME
    assert max(depths) <= target + 2 * FRAME
    assert jb.lost + jb.late <= 10
    if ppm > 0:
        assert 2 <= jb.dropped <= 6  # ~3 frames of surplus over 10 minutes
    else:
        assert jb.concealed <= 20  # ~3 stretches, plus whatever jitter peaks cost


def test_rejects_bad_configuration() -> None:
    with pytest.raises(ValueError):
        JitterBuffer(min_ms=300, max_ms=200)
    with pytest.raises(ValueError):
        JitterBuffer(frame_ms=0)


def drive_with_levels(jb: JitterBuffer, arrivals: list[tuple[float, RtpPacket]], ticks: int,
                      quiet: Callable[[int], bool] | None) -> tuple[Run, list[int]]:
    """drive(), with a caller that reports each played frame's level when asked (quiet(seq); None: never)."""
    pending = sorted(arrivals, key=lambda item: item[0])
    run, asked, index = Run(), [], 0
    for tick in range(ticks):
        now = tick * FRAME + 15.0
        while index < len(pending) and pending[index][0] <= now:
            jb.push(pending[index][1], pending[index][0])
            index += 1
        run.depths.append(jb.depth_ms)
        out = jb.pop(now)
        run.outputs.append(out)
        if jb.wants_level:
            asked.append(tick)
            if quiet is not None:
                jb.note_level(out.sequence is not None and quiet(out.sequence))
    return run, asked


def fast_sender(frames: int, ppm: float) -> list[tuple[float, RtpPacket]]:
    rng = random.Random(7)
    period = FRAME / (1 + ppm * 1e-6)
    return [(i * period + 2 + rng.random() * 10.0, pkt(i)) for i in range(frames)]


def in_pause(seq: int) -> bool:
    return seq % 100 >= 80  # 1.6 s of talk, then 0.4 s of pause


def test_surplus_is_dropped_only_in_pauses() -> None:
    jb = JitterBuffer()
    frames = 3000  # 60 s; at +2000 ppm the sender gets a frame ahead every 10 s
    run, asked = drive_with_levels(jb, fast_sender(frames, 2000.0), frames, in_pause)
    played_seqs = [o.sequence for o in run.outputs if o.kind is PlayoutKind.PLAY]
    missing = sorted(set(range(played_seqs[0], played_seqs[-1])) - set(played_seqs))
    assert jb.lost == 0 and len(missing) == jb.dropped
    assert 4 <= jb.dropped <= 7 and jb.forced_drops == 0
    for seq in missing:
        # The three frames played before the dropped one were all in the pause.
        assert all(in_pause(seq - k) for k in (1, 2, 3)), seq
    assert max(run.depths[500:]) <= jb.target_ms + 2 * FRAME
    # The caller is asked for levels only while a drop waits: a small part of the call.
    assert 0 < len(asked) < frames // 4


def test_never_quiet_source_still_sheds_depth() -> None:
    # A continuous tone: every frame reported loud. The surplus must still go (after the wait), or a fast
    # sender clock would build up delay without bound.
    jb = JitterBuffer()
    frames = 3000
    run, _ = drive_with_levels(jb, fast_sender(frames, 2000.0), frames, lambda seq: False)
    assert 3 <= jb.dropped == jb.forced_drops
    assert max(run.depths[500:]) <= jb.target_ms + 2 * FRAME
    assert abs(sum(run.depths[-500:]) / 500 - sum(run.depths[500:1000]) / 500) <= FRAME


def test_no_level_reports_behave_like_a_never_quiet_source() -> None:
    loud, silent = JitterBuffer(), JitterBuffer()
    arrivals = fast_sender(3000, 2000.0)
    run_loud, _ = drive_with_levels(loud, arrivals, 3000, lambda seq: False)
    run_none, _ = drive_with_levels(silent, arrivals, 3000, None)
    assert run_loud.outputs == run_none.outputs and silent.forced_drops == silent.dropped >= 3


def test_steady_stream_never_asks_for_levels() -> None:
    jb = JitterBuffer()
    _, asked = drive_with_levels(jb, [(i * FRAME + 3, pkt(i)) for i in range(1000)], 1010, in_pause)
    assert asked == [] and jb.dropped == 0


@settings(max_examples=200, deadline=None)
@given(size=st.integers(1, 20), values=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=80))
def test_sliding_range_matches_the_window(size: int, values: list[float]) -> None:
    window = _SlidingRange(size)
    for i, value in enumerate(values):
        window.append(value)
        recent = values[max(0, i + 1 - size) : i + 1]
        assert (window.high, window.low) == (max(recent), min(recent))
        assert (window.last, window.count) == (value, i + 1)


def _first_play_tick(run: Run, payload: bytes) -> int:
    return next(t for t, o in enumerate(run.outputs) if o.kind is PlayoutKind.PLAY and o.payload == payload)


def _marked(seq: int, ts: int) -> RtpPacket:
    return RtpPacket(111, seq, ts, 1, b"f%d" % seq, marker=True)


@pytest.mark.parametrize("new_talkspurt", [False, True])
def test_empty_buffer_mid_talkspurt_resumes_at_once_new_talkspurt_prebuffers(new_talkspurt: bool) -> None:
    """Jittery arrivals (target 60 ms), then 400 ms without packets. Mid-talkspurt (no marker, timestamps
    continue) the stream plays again the tick its first packet is back: a second pre-buffering gap would cut
    into the word. After a pause (marker bit, timestamps leap past it) the talkspurt pre-buffers."""
    jb = JitterBuffer()
    arrivals = [(i * FRAME + 3 + (i % 3) * 20, pkt(i)) for i in range(50)]
    resume_ms = 50 * FRAME + 400
    for i in range(50, 100):
        arrival = resume_ms + (i - 50) * FRAME + 3
        if new_talkspurt:
            ts = (i + 20) * 960
            arrivals.append((arrival, _marked(i, ts) if i == 50 else pkt(i, ts=ts)))
        else:
            arrivals.append((arrival, pkt(i)))
    run = drive(jb, arrivals, 130)
    resume_tick = math.ceil((resume_ms + 3 - 10) / FRAME)
    if new_talkspurt:
        assert jb.target_ms == 60  # (mid-talkspurt, the 400 ms stall itself raises the target)
    waited = _first_play_tick(run, b"f50") - resume_tick
    assert waited == (2 if new_talkspurt else 0)
    assert played(run)[-50:] == [b"f%d" % i for i in range(50, 100)]
    # the wait for the missing packet: concealed, then silence (not 400 ms of concealment)
    assert max_run(run, PlayoutKind.CONCEAL) <= 10


def test_packet_duration_is_learnt_from_timestamps() -> None:
    jb = JitterBuffer()
    arrivals = [(i * 60.0 + 3, pkt(i, ts=i * 2880)) for i in range(40)]  # 60 ms packets
    outputs = []
    for tick in range(45):  # the caller pops once per packet duration once it knows it
        now = tick * 60.0 + 10
        for arrival, packet in arrivals:
            if now - 60 < arrival <= now:
                jb.push(packet, arrival)
        outputs.append(jb.pop(now))
    assert jb.frame_ms == 60 and jb.frame_samples == 2880
    assert [o.payload for o in outputs if o.kind is PlayoutKind.PLAY] == [b"f%d" % i for i in range(40)]
    assert jb.lost == 0 and jb.target_ms == 60
