"""Echo cancellation, noise suppression and AGC on the capture path (libspeexdsp), with the played audio as
the echo reference and the delay between playback and capture estimated from the signals themselves.

The session's 20 ms tick writes each played frame and reads each captured frame on the event loop, so both
streams are kept here as sample counts on their own timelines: a captured sample at capture position c holds
the echo of the played sample at c + offset - delay. The offset is how far the played count runs ahead of the
captured count once both flow (the median over a second: a microphone may start delivering a second late);
the delay (device buffers + air) is found by cross-correlation (echodelay.py: GCC-PHAT at 8 kHz over the last
second, re-checked every half second while the far end talks, two estimates in a row must agree). The
canceller gets the reference shifted by the estimate less a small margin, so its filter only has to model the
room.

The canceller and the preprocessor run at 24 kHz (halfrate.py), where they cost half what they did at 48 kHz;
the timelines and the path's alignment stay at 48 kHz, to the sample.

`EchoProcessor` is sans-I/O; `speakerphone.wrap()` puts it between a MediaSession and its devices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from zcall.media.codec import FRAME_BYTES, FRAME_SAMPLES, SAMPLE_RATE
from zcall.media.echodelay import Samples, estimate_delay, refine_delay
from zcall.media.halfrate import HISTORY, Doubler, halve
from zcall.media.samplering import SampleRing, energy
from zcall.media.speexdsp import FrameCanceller, Preprocessor

MAX_DELAY_MS = 500  # device buffers + air; beyond this the devices are misconfigured, not a room
# What the canceller models after the bulk delay (the room's early reflections; the late tail is left to the
# residual echo suppressor). A longer filter adapts slower and misadjusts more while both ends talk. Simulated
# rooms (a desk, a bare delay, a 300 ms diffuse tail; bulk delays 40 and 120 ms; two near-end talkers), with
# the first AGC setting: double-talk PESQ-WB median 2.71 at 120 ms, 2.79 at 100 ms, 3.10 at 80 ms, 3.07 at
# 60 ms. With the AGC fixed (speexdsp.AGC_LEVEL) and held while the far end talks: 3.16 at 80 ms, 3.44 at
# 60 ms in tests/unit/media/test_echo.py's room; four double-talk calls recorded on PulseAudio devices,
# replayed and coded by Opus: 2.89-3.29 (median 3.09) at 80 ms, 3.08-3.25 (median 3.17) at 60 ms.
FILTER_MS = 60
# What speex runs at: a frame halved to 24 kHz (halfrate.py). Speech loses little above 11 kHz, and the
# canceller, its twin and the preprocessor cost half (0.4 -> 0.19 ms a frame; this module in all,
# 0.42 -> 0.30).
RATE = SAMPLE_RATE // 2
FRAME = FRAME_SAMPLES // 2
# The preprocessor's block: its overlap-add delays its output by one block (measured), so a third of a frame
# (6.7 ms) keeps the added latency, with the halving and doubling (1 ms), under 10 ms. The canceller itself
# runs on whole 20 ms frames, where speex's filter holds while both ends talk (speexdsp.FrameCanceller).
BLOCK = FRAME // 3
# speex's preprocessor keeps 0.6 of its residual echo estimate from one block to the next: on blocks this
# short it forgets faster than on 10 ms ones and suppressed less of what the filter left (three far-end calls
# on PulseAudio devices, replayed: ERLE 27-49 dB against 34-43 at 48 kHz on 10 ms blocks). The twin canceller
# it reads is fed twice as loud, so its estimate is 6 dB louder: 34-52 dB, and replayed double talk 3.41-3.49
# against 3.45-3.52 (speexdsp.FrameCanceller).
_TWIN_GAIN = 2
_MARGIN_SAMPLES = 480  # 10 ms: the estimate's error and the tick's jitter stay inside the filter
_OFFSET_FRAMES = 25  # half a second of both streams flowing fixes their offset
_WINDOW_SAMPLES = SAMPLE_RATE  # one second of capture correlated against the reference
_ESTIMATE_EVERY = SAMPLE_RATE // 2
_FIRST_EVERY = SAMPLE_RATE // 4
_HISTORY = _WINDOW_SAMPLES + SAMPLE_RATE * MAX_DELAY_MS // 1000 + 4 * FRAME_SAMPLES
_MIN_FAR_RMS = 300.0  # the reference must carry sound (about -40 dBFS) for its echo to be found
_MIN_FAR_ENERGY = _MIN_FAR_RMS**2 * FRAME  # the same over a frame at 24 kHz
_AGREE_SAMPLES = 96  # 2 ms
_EARLY_SLACK = 120  # an estimate this close (2.5 ms) to the start of the filter's reach moves the reference
# After a gap (a speaker xrun measured from the device's clock, microphone frames lost) the echo path is
# found again from the signals before the canceller runs on: a converged filter fed a reference 1-2 ms off
# (what the clock's measure of a gap is off by under load, on PulseAudio) made the echo louder (ERLE -4 dB)
# for 1-1.5 s while it adapted, and then had to adapt back. Held instead, it is as good after as before.
_HOLD_WINDOW = SAMPLE_RATE * 3 // 10  # capture after the gap correlated against the reference
_HOLD_REACH = SAMPLE_RATE * 30 // 1000  # one estimate this close to the old path is the same path moved
_HOLD_MAX = 2 * SAMPLE_RATE  # then the canceller runs on, found or not
_WATCH_FRAMES = 5  # far-end frames whose return loss (mean, dB)...
_WATCH_FALL_DB = 10.0  # ...fell this far below the filter's usual one
_WATCH_CONVERGED_DB = 15.0
_WATCH_FOLLOW = 0.05
_WATCH_WINDOW = SAMPLE_RATE // 4
_WATCH_EVERY = SAMPLE_RATE // 10
_WATCH_MIN_MOVE = 2  # samples
# A microphone this much louder against the far end than where it held the echo alone holds a near talker too:
# the filter's return loss falls then with the path where it was. Taken for a move, a near talker made the
# watch shift the reference by 0.2 ms and back and prime the filter on its speech (a recorded double-talk call
# on PulseAudio devices, replayed: 3.06 with the watch fooled, 3.60 without).
_NEAR_TALK_DB = 10.0
_PRIME_SAMPLES = SAMPLE_RATE * (FILTER_MS + 40) // 1000  # run through the filter again as it resumes
_HELD_GAIN = 0.01  # -40 dB: what passes while the canceller is held and the far end may be heard

@dataclass
class EchoStats:
    frames: int = 0
    delay_ms: float | None = None
    estimates: int = 0
    realigned: int = 0
    aligned_frames: int = 0  # frames processed since the first alignment
    holds: int = 0  # gaps after which the canceller waited for the echo path
    held_frames: int = 0
    watched: int = 0  # times the filter's return loss fell and the path was looked for
    moved_ms: float = 0.0  # how far the echo path moved across gaps, in all (re-aligned without a reset)
    # The microphone and what is sent over frames of the far end's echo alone (no near talker), from 2 s after
    # the alignment: their ratio is the ERLE.
    mic_energy: float = 0.0
    out_energy: float = 0.0


class EchoProcessor:
    """Capture-path processing for one call: feed played() every frame written to the speaker and process()
    every frame read from the microphone."""

    def __init__(self, *, cancel_echo: bool = True, denoise: bool = True, agc: bool = True) -> None:
        self._cancel_echo = cancel_echo
        filter_samples = RATE * FILTER_MS // 1000
        self._aec = (FrameCanceller(FRAME, BLOCK, filter_samples, RATE, twin_gain=_TWIN_GAIN) if cancel_echo
                     else None)
        self._pre = Preprocessor(BLOCK, RATE, denoise=denoise, agc=agc,
                                 echo=None if self._aec is None else self._aec.twin)
        self._doubler = Doubler()
        self._played = SampleRing(_HISTORY)
        self._captured = SampleRing(_HISTORY)
        self._offset: int | None = None  # played count minus captured count, once both flow
        self._offsets: list[int] = []
        self._delay: int | None = None
        self._candidate: int | None = None  # the previous estimate, waiting for a second one to agree
        self._next_estimate = _WINDOW_SAMPLES
        self._far_until = 0  # capture position until which the far end's echo may be in the microphone
        self._agc_held = False
        self._held_from: int | None = None  # capture position from which the canceller waits (a gap)
        self._held_until = 0
        self._next_refind = 0
        self._refound: int | None = None  # a far re-found path, waiting for a second one to agree
        self._erle = 0.0  # the filter's return loss while the far end talks, followed slowly (dB)
        self._erl: float | None = None  # the microphone against the far end where it holds echo alone (dB)
        self._recent_erle: list[float] = []
        self._next_watch = 0
        self._watch_found: int | None = None
        self.stats = EchoStats()

    def played(self, pcm: bytes) -> None:
        if len(pcm) != FRAME_BYTES or self._aec is None:
            return
        self._played.write(np.frombuffer(pcm, "<i2"))

    def played_silence(self, samples: int) -> None:
        """The speaker played this much silence for want of frames (an underrun), before the next played()."""
        if self._aec is not None and samples > 0:
            self._played.write_silence(samples)

    def played_gap(self, samples: int, back: int) -> None:
        """The speaker device itself played this much silence (an xrun), before what was played `back`
        samples ago: it is found a few callbacks late, after frames that sounded after it."""
        if self._aec is not None and samples > 0:
            at = self._played.count - max(back, 0)
            self._played.insert_silence(at, samples)
            if self._offset is not None and self._delay is not None:
                # Its echo reaches the microphone `delay` after it played (a filter's length early: the
                # clock may place it that far off).
                early = _MARGIN_SAMPLES + SAMPLE_RATE * FILTER_MS // 1000
                echo_at = at - self._offset + self._delay
                self._hold(echo_at - early, echo_at + samples)

    def captured_lost(self, frames: int) -> None:
        """The microphone lost this many frames (its ring was full) just before the next process(): the
        capture timeline moves on by them, or every later frame would be compared with the wrong part of the
        reference (the echo path would seem to shorten by 20 ms a frame)."""
        if frames > 0:
            self._captured.write_silence(frames * FRAME_SAMPLES)
            # A stall: the device may have lost more than the ring says.
            self._hold(self._captured.count, self._captured.count)

    def process(self, pcm: bytes) -> bytes:
        if len(pcm) != FRAME_BYTES:
            return pcm
        start = self._captured.count
        self._captured.write(np.frombuffer(pcm, "<i2"))
        mic = self._halved(self._captured, start)
        mic_energy = energy(mic)  # for the watch and the ERLE stats
        self.stats.frames += 1
        out, turned_down, echo_alone = mic.tobytes(), False, False
        if self._aec is not None and self._offset is None and self._played.count:
            self._offsets.append(self._played.count - self._captured.count)
            if len(self._offsets) == _OFFSET_FRAMES:
                self._offset = int(np.median(self._offsets))
                self._next_estimate = self._captured.count
        if self._aec is not None and self._offset is not None:
            if self._captured.count >= self._next_estimate:
                # Often until the first alignment (two agreeing estimates start the canceller), then 0.5 s
                # while the filter does not hold the echo: a jump the watch does not follow is realigned
                # 1-1.5 s on (a look each second: 2.3 s).
                every = _ESTIMATE_EVERY if self._delay else _FIRST_EVERY
                self._next_estimate = self._captured.count + every
                if self._delay is not None and self._filter_holds():
                    self._candidate = None  # two looks in a row must agree
                else:
                    self._estimate()
            if self._held_from is not None and start >= self._held_from:
                self._refind()  # may end the hold: this frame then goes through the filter
            held = self._held_from is not None and start >= self._held_from
            shift = (self._delay or 0) - _MARGIN_SAMPLES
            reference = self._halved(self._played, start + self._offset - max(shift, 0))
            if self._delay is not None:
                self.stats.aligned_frames += 1
            far_energy = energy(reference)
            self._hold_agc(far_energy, held)
            if held:
                self.stats.held_frames += 1
                # Turned down where the far end may be heard, past the preprocessor too: its noise and
                # level estimates stay the room's.
                turned_down = self._far_heard(start)
            else:
                out = self._aec.cancel(out, reference.tobytes())
                if self._delay is not None:
                    echo_alone = self._watch(mic_energy, np.frombuffer(out, "<i2"), far_energy)
        if turned_down:
            processed = (mic * _HELD_GAIN).astype(np.int16)
        else:
            processed = np.frombuffer(self._pre.run(out), "<i2")
        if echo_alone and self.stats.aligned_frames > 100:  # 2 s after the canceller was aligned: its ERLE
            self.stats.mic_energy += mic_energy
            self.stats.out_energy += energy(processed)
        return self._doubler.double(processed).tobytes()

    @staticmethod
    def _halved(ring: SampleRing, start: int) -> Samples:
        """The frame at 48 kHz position `start` of a timeline, at 24 kHz."""
        return halve(ring.read(start - HISTORY, FRAME_SAMPLES + HISTORY))

    def _hold(self, capture_at: int, after: int) -> None:
        """From capture position `capture_at` on, the canceller waits until the echo path is found again
        (the filter is neither run nor adapted on a reference that may be off), in what was captured from
        `after` on (past the gap)."""
        if self._aec is None or self._delay is None or self._offset is None:
            return  # not aligned yet: the periodic estimate finds the path
        start = max(capture_at, self._captured.count)
        if self._held_from is None:
            self._held_from = start
            self._refound = None
            self.stats.holds += 1
        self._held_from = min(self._held_from, start)
        self._held_until = max(start, after) + _HOLD_MAX
        self._next_refind = max(start, after) + _HOLD_WINDOW

    def _far_heard(self, start: int) -> bool:
        """Whether the far end's echo may be in the frame captured at `start` (whatever the path now)."""
        assert self._offset is not None
        span = SAMPLE_RATE * MAX_DELAY_MS // 1000 + FRAME_SAMPLES
        recent = self._played.read(start + FRAME_SAMPLES + self._offset - span, span).astype(np.float64)
        return bool(np.sqrt(np.mean(recent**2)) >= _MIN_FAR_RMS)

    def _refind(self) -> None:
        """Looks for the echo path in the capture since the hold began; once found (near the old one, or
        twice in the same place), the reference follows it and the filter runs on, not reset."""
        assert self._offset is not None and self._delay is not None and self._held_from is not None
        end = self._captured.count
        if end >= self._held_until:
            self._held_from = None  # not found (the far end was quiet): the filter runs on as it is
            self._candidate = None
            self._next_estimate = end + _WINDOW_SAMPLES
            return
        if end < self._next_refind:
            return
        self._next_refind = end + _HOLD_WINDOW // 3
        found = self._find(_HOLD_WINDOW)
        if found is None:
            return
        if abs(found - self._delay) > _HOLD_REACH and (self._refound is None
                                                       or abs(found - self._refound) > _AGREE_SAMPLES):
            self._refound = found  # far from the old path: a second estimate, on new capture, must agree
            self._next_refind = end + _HOLD_WINDOW
            return
        self.stats.moved_ms += abs(found - self._delay) * 1000 / SAMPLE_RATE
        self._set_delay(found)
        self._held_from = None
        self._prime(end - FRAME_SAMPLES)
        # The periodic estimate starts afresh: a window reaching back across the gap mixes two paths.
        self._candidate = None
        self._next_estimate = end + _WINDOW_SAMPLES

    def _watch(self, mic_energy: float, out: Samples, far_energy: float) -> bool:
        """The echo path also moves by a fraction of a millisecond with no xrun reported (PulseAudio: 0.2 ms),
        which undoes a converged filter as a gap does. While the far end talks the filter's return loss is
        followed; when it falls far below what it was with no near talker heard, the path is looked for in the
        last quarter second, and when two looks in a row find it moved the reference follows it. Returns
        whether the frame held the far end's echo alone (the far end talks, no near talker heard)."""
        assert self._delay is not None
        if far_energy < _MIN_FAR_ENERGY:
            return False
        erle = 10 * math.log10((mic_energy + 1.0) / (energy(out) + 1.0))
        erl = 10 * math.log10((mic_energy + 1.0) / (far_energy + 1.0))
        if erle >= _WATCH_CONVERGED_DB:  # the filter takes the echo: what is left is the echo's, no talker
            self._erl = erl if self._erl is None else self._erl + _WATCH_FOLLOW * (erl - self._erl)
        elif self._erl is not None and erl > self._erl + _NEAR_TALK_DB:
            return False  # a near talker, not a moved path
        recent = self._recent_erle = [*self._recent_erle[-(_WATCH_FRAMES - 1):], erle]
        if len(recent) < _WATCH_FRAMES or sum(recent) / _WATCH_FRAMES >= self._erle - _WATCH_FALL_DB:
            self._erle += _WATCH_FOLLOW * (erle - self._erle)
            return True
        end = self._captured.count
        if end < self._next_watch or self._erle < _WATCH_CONVERGED_DB:
            return True
        self._next_watch = end + _WATCH_EVERY
        found = self._find(_WATCH_WINDOW)
        self.stats.watched += 1
        moved = found is not None and _WATCH_MIN_MOVE <= abs(found - self._delay) <= _HOLD_REACH
        seen, self._watch_found = self._watch_found, found if moved else None
        if moved and found is not None and seen is not None and abs(found - seen) <= 1:
            self.stats.moved_ms += abs(found - self._delay) * 1000 / SAMPLE_RATE
            self._set_delay(found)
            self._prime(end)
            self._recent_erle = []
            self._watch_found = None
        return True

    def _filter_holds(self) -> bool:
        """The filter has taken the far end's echo well over its last frames (the watch's return loss): the
        path is inside it, and a look for it (0.7 ms, more than all the rest of a frame) would only say so."""
        recent = self._recent_erle
        return len(recent) == _WATCH_FRAMES and sum(recent) / _WATCH_FRAMES >= _WATCH_CONVERGED_DB

    def _prime(self, end: int) -> None:
        """What the filter last saw of the reference is from before the hold: the capture just before `end`
        goes through it once more, aligned anew, so that it resumes on the new alignment (else its first
        frames subtract an echo of what played before the gap: louder than the echo itself)."""
        assert self._aec is not None and self._offset is not None and self._delay is not None
        shift = max(self._delay - _MARGIN_SAMPLES, 0)
        for frame in range(end - _PRIME_SAMPLES, end, FRAME_SAMPLES):
            reference = self._halved(self._played, frame + self._offset - shift)
            self._aec.cancel(self._halved(self._captured, frame).tobytes(), reference.tobytes())

    def _find(self, window: int, to_the_sample: bool = True) -> int | None:
        """The echo's lag over the last `window` captured samples, to the sample or (cheaper: the full-rate
        search costs as much as the rest of the canceller) to the 8 kHz search's 6; None while the far end is
        quiet or without a clear peak."""
        assert self._offset is not None
        end = self._captured.count
        max_lag = SAMPLE_RATE * MAX_DELAY_MS // 1000
        captured = self._captured.read(end - window, window)
        span = window + max_lag
        reference = self._played.read(end + self._offset - span, span)
        if np.sqrt(np.mean(reference.astype(np.float64) ** 2)) < _MIN_FAR_RMS:
            return None  # the far end is quiet: nothing to learn the echo path from
        found = estimate_delay(reference, captured, max_lag)
        if found is None:
            return None
        return refine_delay(reference, captured, max_lag, found[0]) if to_the_sample else found[0]

    def _set_delay(self, delay: int) -> None:
        self._delay = delay
        self.stats.delay_ms = delay * 1000 / SAMPLE_RATE

    def _hold_agc(self, far_energy: float, held: bool) -> None:
        """The AGC may raise its gain only while the far end is quiet: what it hears then is the near end.
        While the far end talks, what comes out of the canceller is mostly its residual echo, quiet speech
        the AGC would otherwise lift by up to 12 dB (the echo return loss it would undo)."""
        now = self._captured.count
        if far_energy >= _MIN_FAR_ENERGY:
            # The echo of this frame lasts the filter's length; before the alignment, up to the longest delay.
            tail = FILTER_MS if self._delay is not None else MAX_DELAY_MS
            self._far_until = now + SAMPLE_RATE * tail // 1000
        hold = now < self._far_until or held  # held: the microphone is turned down, not the room quiet
        if hold != self._agc_held:
            self._agc_held = hold
            self._pre.hold_agc_gain(hold)

    def _estimate(self) -> None:
        if self._held_from is not None:
            return  # a gap: _refind looks for the path
        # Every half second: coarse, as it only confirms the alignment; a new one is found to the sample.
        delay = self._find(_WINDOW_SAMPLES, to_the_sample=False)
        if delay is None:
            return
        self.stats.estimates += 1
        # Speech is self-similar: a lone estimate may be a pitch echo of the true one; two must agree.
        candidate, self._candidate = self._candidate, delay
        if candidate is None or abs(candidate - delay) > _AGREE_SAMPLES:
            return
        if self._delay is None or not self._covers(delay):
            fine = self._find(_WINDOW_SAMPLES)  # the same windows, searched at full rate
            delay = delay if fine is None else fine
            if self._delay is not None and self._aec is not None:
                self._aec.reset()  # the filter modelled the old alignment
            self._set_delay(delay)
            self.stats.realigned += 1

    def _covers(self, delay: int) -> bool:
        """Whether the current alignment still puts an echo `delay` late well inside the filter: a strong
        reflection a few ms after the direct path must not reset a converged filter."""
        assert self._delay is not None
        start = self._delay - _MARGIN_SAMPLES
        return start + _EARLY_SLACK <= delay <= start + SAMPLE_RATE * FILTER_MS // 2000

    def snapshot(self) -> dict[str, Any]:
        s = self.stats
        erle = 10 * np.log10(s.mic_energy / s.out_energy) if s.out_energy > 0 and s.mic_energy > 0 else None
        return {"on": self._cancel_echo, "delay_ms": s.delay_ms, "estimates": s.estimates,
                "realigned": s.realigned, "holds": s.holds, "held_frames": s.held_frames,
                "watched": s.watched, "moved_ms": round(s.moved_ms, 2),
                "erle_db": None if erle is None else round(float(erle), 1)}

    def close(self) -> None:
        self._pre.close()
        if self._aec is not None:
            self._aec.close()
