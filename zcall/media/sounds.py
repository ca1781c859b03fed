"""Call-progress and status sounds, synthesized: `python -m zcall.media.sounds` writes them to assets/ (done
once; the files are committed, and a test checks they still match). zcall.cues plays them at call events.

- ring: two bursts of 440+480 Hz, 0.4 s each with 0.2 s between, then 1 s quiet: a call is coming in.
- ringback: 425 Hz, 1 s on, 4 s off (ITU-T E.180's common ringing tone): the far end is ringing.
- busy: 425 Hz, 0.5 s on, 0.5 s off (E.180): the far end cannot take the call.
- secure: a rising three-note chime (E5, G#5, B5, each decaying): the call's keys are agreed.
- alarm: 880 and 660 Hz alternating every 0.25 s for 2 s: a key mismatch, loud and unlike anything else.

16-bit mono at 16 kHz (the player resamples to 48 kHz); 10 ms fades so nothing clicks.
"""

from __future__ import annotations

import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

RATE = 16000
ASSETS = Path(__file__).resolve().parents[2] / "assets"
Signal = npt.NDArray[np.float64]


def _tone(hz: float | tuple[float, ...], seconds: float, level: float = 0.3) -> Signal:
    t = np.arange(int(seconds * RATE)) / RATE
    freqs = (hz,) if isinstance(hz, float | int) else hz
    x = sum(np.sin(2 * np.pi * f * t) for f in freqs) / len(freqs) * level
    fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)
    return np.asarray(x * fade, np.float64)


def _quiet(seconds: float) -> Signal:
    return np.zeros(int(seconds * RATE))


def ring() -> Signal:
    burst = _tone((440.0, 480.0), 0.4, 0.5)
    return np.concatenate([burst, _quiet(0.2), burst, _quiet(1.0)])


def ringback() -> Signal:
    return np.concatenate([_tone(425.0, 1.0), _quiet(4.0)])


def busy() -> Signal:
    return np.concatenate([_tone(425.0, 0.5), _quiet(0.5)])


def secure() -> Signal:
    notes = []
    for hz in (659.25, 830.61, 987.77):  # E5, G#5, B5: a major triad, rising
        t = np.arange(int(0.18 * RATE)) / RATE
        notes.append(_tone(hz, 0.18, 0.35) * np.exp(-t * 12))
    return np.concatenate([*notes, _quiet(0.3)])


def alarm() -> Signal:
    return np.concatenate([_tone(hz, 0.25, 0.5) for _ in range(4) for hz in (880.0, 660.0)])


SOUNDS: dict[str, Callable[[], Signal]] = {
    "ring": ring, "ringback": ringback, "busy": busy, "secure": secure, "alarm": alarm,
}


def path(name: str) -> Path:
    if name not in SOUNDS:
        raise KeyError(f"no sound named {name!r} (have: {', '.join(SOUNDS)})")
    return ASSETS / f"{name}.wav"


def pcm(name: str) -> bytes:
    return bytes(np.round(SOUNDS[name]() * 32767).astype("<i2").tobytes())


def write_all(folder: Path = ASSETS) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in SOUNDS:
        target = folder / f"{name}.wav"
        with wave.open(str(target), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(RATE)
            wav.writeframes(pcm(name))
        written.append(target)
    return written


if __name__ == "__main__":
    for written in write_all():
        print(written)
