"""The ring: a short two-tone WAV in assets/, played in a loop on the audio sink while a call rings.

`python -m zcall.tui.ring` writes assets/ring.wav (done once; the file is committed). Playing is best effort:
a unit without a working output still rings on screen, and the reason is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np

from zcall.media.audio import AudioSpecError, WavSource, open_sink

RING_PATH = Path(__file__).resolve().parents[2] / "assets" / "ring.wav"
RATE = 8000  # a ring needs no more; the player resamples to 48 kHz
FRAME_S = 0.020


def synth_ring() -> bytes:
    """Two bursts of 440+480 Hz, 0.4 s each with 0.2 s between, then 1.0 s quiet: 16-bit mono PCM at 8 kHz."""
    t = np.arange(int(0.4 * RATE)) / RATE
    burst = 0.25 * (np.sin(2 * np.pi * 440 * t) + np.sin(2 * np.pi * 480 * t))
    ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)  # 10 ms fades, no clicks
    burst *= ramp
    gap, rest = np.zeros(int(0.2 * RATE)), np.zeros(int(1.0 * RATE))
    pcm = np.concatenate([burst, gap, burst, rest])
    return bytes(np.round(pcm * 32767).astype("<i2").tobytes())


def write_ring(path: Path = RING_PATH) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(synth_ring())


class Ringer:
    """Plays the ring until stop(); `log` hears why it could not."""

    def __init__(self, sink_spec: str, log: Callable[[str], None], path: Path = RING_PATH) -> None:
        self._spec = sink_spec
        self._log = log
        self._path = path
        self._task: asyncio.Task[None] | None = None
        self.frames_played = 0

    @property
    def ringing(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if not self.ringing:
            self._task = asyncio.get_running_loop().create_task(self._play())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def stop_and_wait(self) -> None:
        """Stop and let the output device close, so an answered call can open it next."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _play(self) -> None:
        try:
            source = WavSource(self._path, loop=True)
            sink = open_sink(self._spec)
        except (AudioSpecError, OSError) as exc:
            self._log(f"ring: cannot play on {self._spec!r}: {exc}")
            return
        loop = asyncio.get_running_loop()
        due = loop.time()
        try:
            while True:
                sink.write_frame(source.read_frame())
                self.frames_played += 1
                due += FRAME_S
                await asyncio.sleep(max(0.0, due - loop.time()))
        finally:
            with contextlib.suppress(Exception):
                sink.close()


if __name__ == "__main__":
    write_ring()
    print(RING_PATH)
