"""Adaptive jitter buffer, sans-I/O: push() packets with their arrival time, pop() once per frame tick.

Playout is driven by sequence numbers (one packet = one frame), so DTX gaps in the timestamp do not look like
loss. Depth adapts in whole frames:
- it grows by holding (concealing without advancing) when the next frame is missing but could still arrive
  within the worst delay seen lately, or when the buffer is empty, which also absorbs a sender clock running
  slower than our tick; a missing frame past that deadline is lost (FEC from the next packet, or concealed);
- it shrinks by dropping one frame when every packet played over the last two seconds waited at least a frame
  longer than it had to (its slack), which absorbs a sender clock running faster than our tick. A frame
  dropped mid-word is heard (it costs more PESQ than the losses FEC leaves), so the drop waits for a pause:
  while `wants_level` is set the caller reports whether each frame it played was quiet, and the frame after
  a run of quiet ones goes. A source that never pauses (a tone) still sheds its surplus after a 5 s wait.
The target comes from the spread of relative transit delays (arrival time minus media time) over a window.

Talkspurts: an empty buffer mid-speech (the next packet is late) is concealed for up to max_ms and then played
as silence; when the stream comes back without the marker bit and with timestamps that continue where playout
stopped, it is the same talkspurt and plays at once (no second pre-buffering gap in the middle of a word). A
packet with the marker bit (RFC 3551 §4.1: first after a silence, e.g. DTX) or a timestamp leap after an empty
buffer starts a new talkspurt, which pre-buffers to the target: depth is set where a pause hides it.

Packet durations: a peer may send 10, 40 or 60 ms packets (RFC 7587 ptime). The duration is learnt from the
timestamp step between consecutive packets, and `frame_ms` (the unit of depth, target and deadlines) follows
it; the caller pops once per packet duration (`frame_samples`).
"""

from __future__ import annotations

import enum
import math
from collections import deque
from typing import NamedTuple

from zcall.media.rtp import RtpPacket

_DELAY_WINDOW = 500  # packets (10 s of 20 ms frames) whose relative delays set the target
_TARGET_EVERY = 10  # recompute the target every this many packets
_RELEASE_EVERY = 50  # packets between one-frame decreases of the target (rise is immediate)
_SHRINK_WINDOW = 100  # played packets (2 s) whose slack must all exceed a frame before we drop one
_SHRINK_MARGIN_MS = 2.0  # slack beyond one frame needed to drop, so tick phase noise does not trigger it
_QUIET_RUN = 3  # quiet frames in a row (60 ms: a pause, not a weak consonant) before the next may be dropped
_SHRINK_PATIENCE = 250  # ticks (5 s) a wanted drop waits for a pause before it happens anyway
_TIMELINE_JUMP_MS = 1000.0  # a relative-delay step this big means the sender's timestamps jumped
_MAX_MISORDER = 100  # packets this far behind are "late"; farther is a candidate for a restart
_MAX_DROPOUT = 3000  # packets this far ahead are a gap; farther is a candidate for a restart
_MAX_PACKET_MS = 120.0
_RECEIVED_MEMORY = 512  # sequence numbers remembered to tell duplicates from late packets


class PlayoutKind(enum.Enum):
    PLAY = "play"
    FEC = "fec"
    CONCEAL = "conceal"
    SILENCE = "silence"


class Playout(NamedTuple):  # a tuple: one is made per tick, and a frozen dataclass costs three setattrs
    kind: PlayoutKind
    # PLAY: this frame's payload. FEC: the NEXT packet's payload, to decode with fec=1. Otherwise None.
    payload: bytes | None = None
    sequence: int | None = None  # 16-bit sequence number of the frame this tick stands for


_SILENCE = Playout(PlayoutKind.SILENCE)


class _SlidingRange:
    """Highest and lowest of the last `size` values, O(1) amortised per value (monotonic queues): the target
    and every missing frame's deadline need them, and scanning 500 delays for each cost more than the rest."""

    def __init__(self, size: int) -> None:
        self._size = size
        self.count = 0  # values seen (not capped at size)
        self.last = 0.0
        self._highs: deque[tuple[int, float]] = deque()  # (index, value), values falling
        self._lows: deque[tuple[int, float]] = deque()  # (index, value), values rising

    def append(self, value: float) -> None:
        index = self.count
        self.count = index + 1
        self.last = value
        expired = index - self._size
        highs, lows = self._highs, self._lows
        while highs and highs[-1][1] <= value:
            highs.pop()
        highs.append((index, value))
        if highs[0][0] <= expired:
            highs.popleft()
        while lows and lows[-1][1] >= value:
            lows.pop()
        lows.append((index, value))
        if lows[0][0] <= expired:
            lows.popleft()

    @property
    def high(self) -> float:
        return self._highs[0][1]

    @property
    def low(self) -> float:
        return self._lows[0][1]


class JitterBuffer:
    def __init__(
        self, clock_rate: int = 48000, frame_ms: int = 20, min_ms: int = 20, max_ms: int = 200
    ) -> None:
        if frame_ms <= 0 or clock_rate <= 0 or not frame_ms <= min_ms <= max_ms:
            raise ValueError("need 0 < frame_ms <= min_ms <= max_ms and a positive clock rate")
        self.clock_rate = clock_rate
        self._ms_per_tick = 1000.0 / clock_rate
        self._min_ms, self._max_ms = min_ms, max_ms
        self._target_frames = 1
        self._set_frame_ms(frame_ms)
        # counters
        self.late = 0
        self.lost = 0
        self.duplicates = 0
        self.reordered = 0
        self.played = 0
        self.concealed = 0
        self.fec_recovered = 0
        self.dropped = 0  # frames discarded to shrink the buffer or on overflow
        self.forced_drops = 0  # of those, shrink drops that found no pause to hide in
        self.resyncs = 0  # restarts: SSRC change, sequence or timestamp discontinuity
        self._target_frames = self._min_frames  # rises as soon as jitter is measured
        self._ssrc: int | None = None
        self._old_ssrcs: deque[int] = deque(maxlen=4)
        self._reset_stream()

    # ------------------------------------------------------------------ state

    def _reset_stream(self) -> None:
        self._packets: dict[int, tuple[RtpPacket, float]] = {}  # extended seq -> (packet, arrival ms)
        self._next: int | None = None  # extended sequence number to play next
        self._highest: int | None = None  # highest extended sequence number received
        self._highest_ts: int | None = None  # its timestamp
        self._received: set[int] = set()
        self._received_order: deque[int] = deque()
        self._playing = False  # False while pre-buffering
        self._idle_ticks = 0
        self._media_ms: dict[int, float] = {}  # sender media time of each buffered packet
        self._slack: deque[float] = deque(maxlen=_SHRINK_WINDOW)
        self._wants_level = False  # a drop is due: tell me how loud each played frame was
        self._quiet_run = 0  # frames in a row the caller reported quiet while a drop was due
        self._shrink_waited = 0  # ticks a due drop has waited for a pause
        self._probation: int | None = None  # extended seq that would confirm a restart
        self._last_played: tuple[int, int] | None = None  # (extended seq, timestamp) of the last frame played
        self._stalled = False  # stopped playing on an empty buffer (not pre-buffering a new stream)
        self._reset_timeline()

    def _set_frame_ms(self, frame_ms: float) -> None:
        """Depth is counted in packets: rescale the limits (and the current target) to a packet duration."""
        old_target_ms = self._target_frames * getattr(self, "frame_ms", frame_ms)
        self.frame_ms = frame_ms
        self._min_frames = max(1, math.ceil(self._min_ms / frame_ms))
        self._max_frames = max(self._min_frames, int(self._max_ms // frame_ms))
        # A gap wider than this skips ahead instead of concealing frame by frame.
        self._capacity = 2 * self._max_frames + 2
        target = math.ceil(old_target_ms / frame_ms)
        self._target_frames = min(max(target, self._min_frames), self._max_frames)

    @property
    def frame_samples(self) -> int:
        """Samples (at the clock rate) in one packet: what a concealed or FEC-rebuilt frame must last."""
        return round(self.frame_ms * self.clock_rate / 1000)

    def _reset_timeline(self) -> None:
        self._delays = _SlidingRange(_DELAY_WINDOW)
        self._ts_last: int | None = None
        self._ts_ext = 0
        self._since_target = 0
        self._since_release = 0

    @property
    def target_ms(self) -> int:
        return round(self._target_frames * self.frame_ms)

    @property
    def depth_ms(self) -> int:
        return round(self._span() * self.frame_ms)

    def _span(self) -> int:
        """Frames from the next one to play up to the newest buffered, counting holes."""
        if not self._packets or self._next is None or self._highest is None:
            return 0
        span = self._highest - self._next + 1
        return span if span > 0 else 0

    # ------------------------------------------------------------------ input

    def _extend(self, seq: int) -> int:
        if self._highest is None:
            return seq
        delta = (seq - self._highest) & 0xFFFF
        if delta >= 0x8000:
            delta -= 0x10000
        return self._highest + delta

    def push(self, packet: RtpPacket, arrival_ms: float) -> None:
        if packet.ssrc != self._ssrc:
            if packet.ssrc in self._old_ssrcs:
                self.late += 1  # a straggler from a stream we already left
                return
            if self._ssrc is not None:
                self._old_ssrcs.append(self._ssrc)
                self.resyncs += 1
            self._ssrc = packet.ssrc
            self._reset_stream()
        ext = self._extend(packet.sequence)
        if self._next is not None and not self._accept_distance(ext, packet, arrival_ms):
            return
        if self._next is not None and (self._highest is None or ext > self._highest):
            self._learn_duration(packet, ext)
            self._highest = ext
        self._store(packet, ext, arrival_ms)

    def _learn_duration(self, packet: RtpPacket, ext: int) -> None:
        """The timestamp step from the packet just before, unless this one opens a talkspurt."""
        previous_ts, self._highest_ts = self._highest_ts, packet.timestamp
        if packet.marker or previous_ts is None or self._highest != ext - 1:
            return
        step = (packet.timestamp - previous_ts) & 0xFFFFFFFF
        step_ms = step * self._ms_per_tick
        # RFC 6716: an Opus packet lasts 2.5..120 ms. A longer step is a pause, not a duration.
        if 2.5 <= step_ms <= _MAX_PACKET_MS and step_ms != self.frame_ms:
            self._set_frame_ms(step_ms)

    def _accept_distance(self, ext: int, packet: RtpPacket, arrival_ms: float) -> bool:
        """Sort out packets far from the play position; returns whether to store this one."""
        assert self._next is not None
        ahead = ext - self._next
        if -_MAX_MISORDER <= ahead < _MAX_DROPOUT:
            self._probation = None
            if ahead < 0:
                if ext in self._received:
                    self.duplicates += 1
                else:
                    self.late += 1
                    self._remember(ext)
                    # Its delay is exactly what the target must learn to cover.
                    self._measure(packet.timestamp, arrival_ms)
                return False
            if ahead >= self._capacity:
                self._skip_to(ext - self._target_frames + 1)
            return True
        # Far away: a restarted sender, or garbage. Two in a row confirm a restart (RFC 3550 A.1 style).
        if self._probation is not None and ext == self._probation:
            self.resyncs += 1
            self._reset_stream()
            return True
        self._probation = ext + 1
        self.late += 1
        return False

    def _skip_to(self, new_next: int) -> None:
        """A long outage: count the hole as lost and move the play position up to just before the newest."""
        assert self._next is not None
        for seq in range(self._next, new_next):
            self._media_ms.pop(seq, None)
            if self._packets.pop(seq, None) is None:
                self.lost += 1
            else:
                self.dropped += 1
        self._next = new_next

    def _store(self, packet: RtpPacket, ext: int, arrival_ms: float) -> None:
        if self._next is None:
            self._next = ext
            self._highest = ext
        elif ext in self._packets or ext in self._received:
            self.duplicates += 1
            return
        elif self._highest is not None and ext < self._highest:
            self.reordered += 1
        self._packets[ext] = (packet, arrival_ms)
        self._remember(ext)
        self._media_ms[ext] = self._measure(packet.timestamp, arrival_ms)

    def _remember(self, ext: int) -> None:
        self._received.add(ext)
        self._received_order.append(ext)
        if len(self._received_order) > _RECEIVED_MEMORY:
            self._received.discard(self._received_order.popleft())

    def _measure(self, timestamp: int, arrival_ms: float) -> float:
        """Record the packet's relative delay; returns its media time in ms on the current timeline."""
        if self._ts_last is None:
            self._ts_ext = timestamp
        else:
            delta = (timestamp - self._ts_last) & 0xFFFFFFFF
            if delta >= 0x80000000:
                delta -= 0x100000000
            self._ts_ext += delta
        self._ts_last = timestamp
        delays = self._delays
        delay = arrival_ms - self._ts_ext * self._ms_per_tick
        if delays.count and abs(delay - delays.last) > _TIMELINE_JUMP_MS:
            self.resyncs += 1
            last = self._ts_last
            self._reset_timeline()
            self._media_ms.clear()  # media times of buffered packets belong to the old timeline
            self._ts_last, self._ts_ext = last, timestamp
            delays = self._delays
        media_ms = self._ts_ext * self._ms_per_tick
        delays.append(arrival_ms - media_ms)
        self._since_target += 1
        if self._since_target >= _TARGET_EVERY and delays.count >= _TARGET_EVERY:
            self._since_target = 0
            self._update_target()
        return media_ms

    def _update_target(self) -> None:
        # The worst delay in the window, not a percentile: bursts are rare but each one costs a glitch.
        spread = self._delays.high - self._delays.low
        frames = 1 + math.ceil(max(0.0, spread - 1.0) / self.frame_ms)  # 1 ms slack for rounding noise
        frames = min(max(frames, self._min_frames), self._max_frames)
        self._since_release += _TARGET_EVERY
        if frames >= self._target_frames:
            self._target_frames = frames
            self._since_release = 0
        elif self._since_release >= _RELEASE_EVERY:
            self._target_frames -= 1
            self._since_release = 0

    # ------------------------------------------------------------------ output

    def pop(self, now_ms: float) -> Playout:
        """One frame tick, at `now_ms` on the same clock as the arrival times given to push()."""
        if self._next is None:
            return _SILENCE
        span = self._span()
        if not self._playing:
            if span < self._target_frames and not self._continues_talkspurt():
                return _SILENCE
            self._playing = True
            self._stalled = False
        elif self._idle_ticks and self._starts_talkspurt():
            # Holding on an empty buffer, and a new talkspurt came: pre-buffer it (unheard, in a pause).
            self._playing = False
            self._idle_ticks = 0
            return _SILENCE if span < self._target_frames else self.pop(now_ms)
        if span > self._target_frames or self._wants_level:
            self._shrink_when_quiet(span, now_ms)
        seq = self._next
        entry = self._packets.pop(seq, None)
        if entry is not None:
            packet, arrival_ms = entry
            self._slack.append(now_ms - arrival_ms)
            self._media_ms.pop(seq, None)
            self._idle_ticks = 0
            self.played += 1
            self._next = seq + 1
            self._last_played = (seq, packet.timestamp)
            return Playout(PlayoutKind.PLAY, packet.payload, packet.sequence)
        return self._missing(span, now_ms)

    def _starts_talkspurt(self) -> bool:
        """The next packet opens a talkspurt: marker bit, or timestamps leaping past the frames between."""
        assert self._next is not None
        entry = self._packets.get(self._next)
        if entry is None:
            return False
        packet = entry[0]
        if packet.marker:
            return True
        if self._last_played is None:
            return False
        seq, timestamp = self._last_played
        expected = (timestamp + (self._next - seq) * self.frame_samples) & 0xFFFFFFFF
        leap = (packet.timestamp - expected) & 0xFFFFFFFF
        return leap != 0 and leap < 0x80000000

    def _continues_talkspurt(self) -> bool:
        """After a stall on an empty buffer: the stream resumed mid-talkspurt, so play it now."""
        return self._stalled and self._next in self._packets and not self._starts_talkspurt()

    @property
    def wants_level(self) -> bool:
        """Whether a drop waits for a pause: then call note_level() once per tick with what was played."""
        return self._wants_level

    def note_level(self, quiet: bool) -> None:
        """The frame just played (decoded, FEC or concealed) was quiet: below the caller's speech level."""
        self._quiet_run = self._quiet_run + 1 if quiet else 0

    def _shrink_when_quiet(self, span: int, now_ms: float) -> None:
        """Drop a surplus frame once a drop is due and the caller reports a pause (or the wait ran out)."""
        assert self._next is not None
        if not self._wants_level:
            # Latched until done: the slack test may flicker with jitter while we wait for a pause.
            self._wants_level = self._should_shrink(span, now_ms)
            self._quiet_run = self._shrink_waited = 0
            return
        if self._slack and self._slack[-1] < self.frame_ms:
            self._wants_level = False  # a packet used its last frame of slack: the surplus went by itself
            return
        self._shrink_waited += 1
        if self._quiet_run < _QUIET_RUN and self._shrink_waited <= _SHRINK_PATIENCE:
            return
        if self._should_shrink(span, now_ms, waited=True):
            self._drop_next()

    def _drop_next(self) -> None:
        assert self._next is not None
        if self._quiet_run < _QUIET_RUN:
            self.forced_drops += 1
        self._packets.pop(self._next)
        self._media_ms.pop(self._next, None)
        self._next += 1
        self.dropped += 1
        self._slack.clear()
        self._wants_level = False
        self._quiet_run = self._shrink_waited = 0

    def _should_shrink(self, span: int, now_ms: float, waited: bool = False) -> bool:
        """A frame can go: the buffer holds more than its target, and playing the one after next now would
        still leave every frame the worst recent delay to arrive (else the next lost frame is held for, and
        a drop and a hold follow each other). `waited`: the slack test passed when the drop fell due."""
        assert self._next is not None
        next_media = self._media_ms.get(self._next)
        return (
            span > self._target_frames
            and (waited or (len(self._slack) == _SHRINK_WINDOW
                            and min(self._slack) >= self.frame_ms + _SHRINK_MARGIN_MS))
            and self._next in self._packets
            and self._next + 1 in self._packets
            and next_media is not None
            and now_ms - next_media - self.frame_ms >= self._worst_delay() + _SHRINK_MARGIN_MS
        )

    def _worst_delay(self) -> float:
        """The longest relative delay seen lately, capped at max_ms above the shortest."""
        return min(self._delays.high, self._delays.low + self._max_frames * self.frame_ms)

    def _could_still_arrive(self, now_ms: float) -> bool:
        """Whether the missing next frame is still within the worst delay seen lately (capped at max_ms)."""
        assert self._next is not None
        later = min((ext for ext in self._media_ms if ext > self._next), default=None)
        if later is None or not self._delays.count:
            return False
        media = self._media_ms[later] - (later - self._next) * self.frame_ms
        return now_ms < media + self._worst_delay()

    def _missing(self, span: int, now_ms: float) -> Playout:
        assert self._next is not None
        if span == 0 or self._could_still_arrive(now_ms):
            # Nothing to play yet: stretch (hold the play position) so a late packet can still make it.
            self._idle_ticks += 1
            if self._idle_ticks > self._max_frames:
                # A long pause (DTX, hold, outage): stop concealing and pre-buffer again when audio resumes.
                self._playing = False
                self._stalled = True
                self._slack.clear()
                self._wants_level = False  # pre-buffering again sets the depth afresh
                return _SILENCE
            self.concealed += 1
            return Playout(PlayoutKind.CONCEAL)
        # The frame's deadline has passed and later frames are here: it is lost.
        seq = self._next
        self._next += 1
        self.lost += 1
        self._idle_ticks = 0
        following = self._packets.get(seq + 1)
        if following is not None:
            self.fec_recovered += 1
            return Playout(PlayoutKind.FEC, following[0].payload, seq & 0xFFFF)
        self.concealed += 1
        return Playout(PlayoutKind.CONCEAL, None, seq & 0xFFFF)
