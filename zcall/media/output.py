"""What reaches the speaker: the far end scaled by the user's volume, with the phone's own sounds (ringback,
the secure chime, the alarm) mixed in on the same output.

One CueMixer per call sits above the call's GainSink, so a cue is played at the volume the user set and is
part of the echo canceller's reference like everything else the speaker plays. Before the call's playout
starts (dialling, ringing, keys being agreed) nothing else writes to the output and a cue is written alone.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from zcall.media.audio import AudioSink
from zcall.media.codec import FRAME_BYTES

_MAX_QUEUED = 5  # frames of cue waiting for the playout (beyond, the player holds them)


class GainSink:
    """Scales what is written by the user's volume before it reaches the real sink."""

    def __init__(self, sink: AudioSink, percent: int) -> None:
        self._sink = sink
        self.percent = percent  # one int, swapped atomically: the playout path only reads it

    def write_frame(self, pcm: bytes) -> None:
        percent = self.percent
        if percent != 100:
            samples = np.frombuffer(pcm, np.int16).astype(np.int32) * percent // 100
            pcm = np.clip(samples, -32768, 32767).astype(np.int16).tobytes()
        self._sink.write_frame(pcm)

    @property
    def dropped(self) -> int | None:
        return getattr(self._sink, "dropped", None)

    def close(self) -> None:
        self._sink.close()


class CueMixer:
    """The call's output: the playout writes through it, and cue frames are mixed into what it writes."""

    def __init__(self, sink: AudioSink) -> None:
        self._sink = sink
        self._cue: deque[bytes] = deque()
        self.playout_frames = 0  # frames the call's playout wrote: once it has written one, cues are mixed in

    def write_frame(self, pcm: bytes) -> None:
        self.playout_frames += 1
        if not self._cue:
            self._sink.write_frame(pcm)
            return
        cue, before = self._cue.popleft(), self.dropped
        self._sink.write_frame(mix(pcm, cue))
        if before is not None and self.dropped != before:
            self._cue.appendleft(cue)  # the device refused it (still starting): the cue waits, not lost

    def mix_in(self, cue: bytes) -> bool:
        """A cue frame for the playout's next writes; False when enough wait already (offer it again)."""
        if len(self._cue) >= _MAX_QUEUED:
            return False
        self._cue.append(cue)
        return True

    def write_alone(self, cue: bytes) -> None:
        """A cue frame while the playout is silent (it has not started)."""
        self._sink.write_frame(cue)

    @property
    def dropped(self) -> int | None:
        """Frames the device below refused (its ring full: it has not started playing yet)."""
        return getattr(self._sink, "dropped", None)

    def close(self) -> None:
        self._cue.clear()
        self._sink.close()


def mix(a: bytes, b: bytes) -> bytes:
    """Two s16le frames added, clipped; a short one counts as silence where it ends."""
    if len(a) != FRAME_BYTES or len(b) != FRAME_BYTES:
        a, b = a.ljust(FRAME_BYTES, b"\0")[:FRAME_BYTES], b.ljust(FRAME_BYTES, b"\0")[:FRAME_BYTES]
    total = np.frombuffer(a, np.int16).astype(np.int32) + np.frombuffer(b, np.int16)
    return bytes(np.clip(total, -32768, 32767).astype(np.int16).tobytes())
