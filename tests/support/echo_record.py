"""What an EchoProcessor was told on real devices, recorded call by call so that a run on a loaded machine
(a speaker xrun, a microphone overflow) can be replayed into a fresh processor, exactly and without devices:
`RecordingProcessor` in the echo-call probe (tests/support/alsa.py --record), `replay()` in unit tests.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

from zcall.media.codec import FRAME_SAMPLES
from zcall.media.echo import EchoProcessor

PLAYED, SILENCE, GAP, LOST, PROCESS = range(5)


class RecordingProcessor(EchoProcessor):
    """An EchoProcessor that keeps every call made to it: (op, a, b, monotonic time) and the frames."""

    def __init__(self, *, cancel_echo: bool = True) -> None:
        super().__init__(cancel_echo=cancel_echo)
        self.ops: list[tuple[int, int, int, float]] = []
        self.frames: list[bytes] = []

    def _note(self, op: int, a: int = 0, b: int = 0, pcm: bytes = b"") -> None:
        self.ops.append((op, a, b, time.monotonic()))
        if pcm:
            self.frames.append(pcm)

    def played(self, pcm: bytes) -> None:
        self._note(PLAYED, pcm=pcm)
        super().played(pcm)

    def played_silence(self, samples: int) -> None:
        if samples > 0:
            self._note(SILENCE, samples)
        super().played_silence(samples)

    def played_gap(self, samples: int, back: int) -> None:
        self._note(GAP, samples, back)
        super().played_gap(samples, back)

    def captured_lost(self, frames: int) -> None:
        if frames > 0:
            self._note(LOST, frames)
        super().captured_lost(frames)

    def process(self, pcm: bytes) -> bytes:
        self._note(PROCESS, pcm=pcm)
        return super().process(pcm)

    def save(self, path: Path) -> None:
        np.savez_compressed(path, ops=np.array([op[:3] for op in self.ops], np.int64),
                            times=np.array([op[3] for op in self.ops]),
                            frames=np.frombuffer(b"".join(self.frames), "<i2"))


def replay(path: Path, processor: EchoProcessor) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Feed a recorded call into `processor`: the microphone's frames and what came out, as floats."""
    data = np.load(path)
    frames = data["frames"].astype("<i2")
    mic, out, pos = [], [], 0
    for op, a, b in data["ops"]:
        if op in (PLAYED, PROCESS):
            pcm = frames[pos : pos + FRAME_SAMPLES].tobytes()
            pos += FRAME_SAMPLES
            if op == PLAYED:
                processor.played(pcm)
            else:
                mic.append(pcm)
                out.append(processor.process(pcm))
        elif op == SILENCE:
            processor.played_silence(int(a))
        elif op == GAP:
            processor.played_gap(int(a), int(b))
        elif op == LOST:
            processor.captured_lost(int(a))
    return (np.frombuffer(b"".join(mic), "<i2").astype(np.float64),
            np.frombuffer(b"".join(out), "<i2").astype(np.float64))
