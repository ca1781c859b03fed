"""How long a sound device's stream really stopped: PortAudio flags an xrun but not its length.

Each PortAudio callback says when the first sample of its buffer meets the converter (output: DAC time; input:
ADC time) on the stream's clock. Less the samples the stream has moved before that buffer (at the nominal
rate), that time holds still while the stream flows, whatever the callback's own lateness. When the device
runs dry and plays silence nobody wrote (an output underflow), or loses samples nobody read (an input
overflow), it steps forward by the gap's length. The echo canceller needs that length: its reference and
capture timelines must move by exactly as much, or the echo path seems to jump and the filter starts over.

`GapClock` is sans-I/O: the device's callback feeds it (time, position) and gets back the samples of a gap.
"""

from __future__ import annotations

# Callbacks before the stream's timing counts: a stream's first buffers are prefilled or delivered in a burst.
SETTLE_CALLBACKS = 25
# A step this large is a gap; the time a device reports jitters by about 0.5 ms (PulseAudio's latency
# estimate, measured through the ALSA pulse plugin), and no real device restarts in less than 2 ms.
THRESHOLD_S = 0.002
# Right after an xrun a device reports odd times (its buffer is empty, then refilled): the step counts once
# this many callbacks in a row agree on it to within the threshold.
CONFIRM = 3
# Below the threshold the reference follows slowly: the sound card's clock drifts against the system's
# (tens of ppm), which is no gap.
DRIFT_FOLLOW = 0.05


class GapClock:
    """Gaps in one stream, from its callbacks' device times (seconds) and stream positions (samples)."""

    def __init__(self, rate: int) -> None:
        self._rate = rate
        self._seen = 0
        self._settling: list[float] = []
        self._base: float | None = None
        self._pending: list[float] = []
        self._pending_at = 0
        self.gap_at = 0  # the stream position the last gap came before
        self.gaps = 0  # steps forward found
        self.gap_samples = 0
        self.rewinds = 0  # steps backward (samples played or captured twice?): the reference moves on

    def update(self, device_time: float, position: int) -> int:
        """The samples of a gap found at this callback (0: none, or no timing); it came before stream
        position `gap_at`, which may be a few callbacks back (a step counts once it holds)."""
        if device_time <= 0:  # the host API gives no timing
            return 0
        offset = device_time - position / self._rate
        self._seen += 1
        if self._base is None:
            self._settling = [*self._settling[-4:], offset]
            if self._seen >= SETTLE_CALLBACKS:
                self._base = _median(self._settling)
            return 0
        step = offset - self._base
        if abs(step) <= THRESHOLD_S:
            self._pending.clear()
            self._base += DRIFT_FOLLOW * step
            return 0
        if not self._pending:
            self._pending_at = position
        self._pending.append(step)
        recent = self._pending[-CONFIRM:]
        if len(recent) < CONFIRM or max(recent) - min(recent) > THRESHOLD_S:
            return 0
        step = _median(recent)
        self._base += step
        self._pending.clear()
        if step < 0:
            self.rewinds += 1
            return 0
        samples = round(step * self._rate)
        self.gap_at = self._pending_at
        self.gaps += 1
        self.gap_samples += samples
        return samples


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
