"""A stream's last samples by absolute position (samples since it began), gaps included: the echo
canceller's timelines of what the speaker played and what the microphone captured (zcall/media/echo.py)."""

from __future__ import annotations

import numpy as np

from zcall.media.echodelay import Samples


def energy(samples: Samples) -> float:
    """The sum of the samples' squares (taken as floats: int16 squares overflow). For a frame: on tens of
    thousands of samples np.dot wakes OpenBLAS's second thread, which then spins for milliseconds."""
    floats = samples.astype(np.float64)
    return float(np.dot(floats, floats))


class SampleRing:
    """The last `size` samples of a stream whose absolute position (samples since start) is `count`."""

    def __init__(self, size: int) -> None:
        self._buf = np.zeros(size, np.int16)
        self.count = 0

    def write(self, samples: Samples) -> None:
        n, size = len(samples), len(self._buf)
        pos = self.count % size
        first = min(n, size - pos)
        self._buf[pos : pos + first] = samples[:first]
        self._buf[: n - first] = samples[first:]
        self.count += n

    def write_silence(self, n: int) -> None:
        """n samples of silence (a gap in the stream: the timeline moves on by n)."""
        size = len(self._buf)
        self.count += n - min(n, size)
        self.write(np.zeros(min(n, size), np.int16))

    def insert_silence(self, at: int, n: int) -> None:
        """n samples of silence before position `at` (a gap found late): what came after moves on by n."""
        at = max(at, self.count - max(len(self._buf) - n, 0))
        tail = self.read(at, self.count - at)
        self.count = at
        self.write_silence(n)
        self.write(tail)

    def read(self, start: int, n: int) -> Samples:
        """Samples [start, start + n); positions never written or already overwritten read as zeros."""
        out = np.zeros(n, np.int16)
        lo, hi = max(start, self.count - len(self._buf), 0), min(start + n, self.count)
        if lo < hi:  # at most two runs of the buffer: its end, then its start
            first = lo % len(self._buf)
            split = min(hi - lo, len(self._buf) - first)
            out[lo - start : lo - start + split] = self._buf[first : first + split]
            out[lo - start + split : hi - start] = self._buf[: hi - lo - split]
        return out
