"""The ring's sound, synthesized: `python -m zcall.tui.ring_asset` writes assets/ring.wav (done once; the file
is committed). Kept apart from the player so the TUI does not load numpy to ring."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from zcall.tui.ring import RATE, RING_PATH


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


if __name__ == "__main__":
    write_ring()
    print(RING_PATH)
