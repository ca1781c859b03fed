"""The ring: a short two-tone WAV in assets/, played in a loop on the audio sink while a call rings.

zcall.tui.ring_asset made the file. Playing is best effort: a unit without a working output still rings on
screen, and the reason is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

from zcall.errors import ZcallError

RING_PATH = Path(__file__).resolve().parents[2] / "assets" / "ring.wav"
RATE = 8000  # a ring needs no more; the player resamples to 48 kHz
FRAME_S = 0.020


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
        # Imported on the first ring, not at start: the audio stack (numpy, soxr) is not on the first screen.
        from zcall.media.audio import WavSource, open_sink

        try:
            source = WavSource(self._path, loop=True)
            sink = open_sink(self._spec)
        except (ZcallError, OSError) as exc:
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

