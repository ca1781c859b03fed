"""Audio sources and sinks: 20 ms frames of s16le mono 48 kHz PCM.

Tones, silence and WAV files (read whole and resampled with soxr), and the FrameRing through which a sound
device's callback thread and the event loop exchange frames (devices.py); audiospec.py opens them by the
--audio-in / --audio-out spec strings.
"""

from __future__ import annotations

import collections
import contextlib
import math
import struct
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from zcall.errors import ZcallError
from zcall.media.codec import FRAME_BYTES, FRAME_SAMPLES, SAMPLE_RATE

SILENCE = bytes(FRAME_BYTES)
MAX_WAV_SECONDS = 600  # a longer prompt file is a mistake, not a use case
MAX_TONE_HZ = SAMPLE_RATE // 2

if TYPE_CHECKING:  # numpy and soxr are imported where samples are made: checking a spec needs neither
    import numpy as np


class AudioSpecError(ZcallError, ValueError):
    """An --audio-in / --audio-out spec or a WAV file could not be used."""


class AudioSource(Protocol):
    # True when the source delivers frames in real time itself (a device); False when the caller must pace it.
    paced: bool

    def read_frame(self) -> bytes | None:
        """The next 20 ms frame, or None when none is ready (never blocks)."""

    def close(self) -> None: ...


class AudioSink(Protocol):
    def write_frame(self, pcm: bytes) -> None:
        """Queue one 20 ms frame for playback (never blocks)."""

    def close(self) -> None: ...


class FrameRing:
    """Bounded single-producer/single-consumer frame queue; deque append/popleft are atomic in CPython.
    Each frame carries how many frames were dropped just before it (`lost_before_last` after a get): a
    consumer keeping a timeline (the echo canceller) knows where the gap is, not only that there was one."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._frames: collections.deque[tuple[bytes, int]] = collections.deque()
        self.dropped = 0
        self._gap = 0  # dropped since the last frame put (producer side)
        self.lost_before_last = 0  # consumer side

    def put(self, frame: bytes) -> bool:
        if len(self._frames) >= self.capacity:
            self.dropped += 1
            self._gap += 1
            return False
        self._frames.append((frame, self._gap))
        self._gap = 0
        return True

    def get(self) -> bytes | None:
        try:
            frame, self.lost_before_last = self._frames.popleft()
        except IndexError:
            return None
        return frame

    def __len__(self) -> int:
        return len(self._frames)


# --- generated sources ---


class ToneSource:
    """A continuous sine (phase carried across frames so there are no clicks)."""

    paced = False

    def __init__(self, hz: float, amplitude: float = 0.3) -> None:
        if not 0 < hz < MAX_TONE_HZ:
            raise AudioSpecError(f"tone frequency must be within 0..{MAX_TONE_HZ} Hz")
        self._step = 2 * math.pi * hz / SAMPLE_RATE
        self._phase = 0.0
        self._amp = amplitude * 32767
        import numpy as np

        self._n = np.arange(FRAME_SAMPLES)
        # A whole number of cycles per second repeats every 50 frames: compute those once.
        self._cycle: list[bytes] | None = None
        if float(hz).is_integer():
            self._cycle = [self._compute() for _ in range(SAMPLE_RATE // FRAME_SAMPLES)]
        self._index = 0

    def _compute(self) -> bytes:
        import numpy as np

        samples = self._amp * np.sin(self._phase + self._step * self._n)
        self._phase = (self._phase + self._step * FRAME_SAMPLES) % (2 * math.pi)
        return bytes(samples.astype("<i2").tobytes())

    def read_frame(self) -> bytes:
        if self._cycle is None:
            return self._compute()
        frame = self._cycle[self._index]
        self._index = (self._index + 1) % len(self._cycle)
        return frame

    def close(self) -> None:
        pass


class SilenceSource:
    paced = False

    def read_frame(self) -> bytes:
        return SILENCE

    def close(self) -> None:
        pass


class NullSink:
    def __init__(self) -> None:
        self.frames = 0

    def write_frame(self, pcm: bytes) -> None:
        self.frames += 1

    def close(self) -> None:
        pass


# --- WAV files ---


@contextlib.contextmanager
def wav_reader(path: str | Path) -> Iterator[tuple[wave.Wave_read, int, int, int, int]]:
    """An open WAV with its format checked: (reader, sample width, channels, rate, frame count)."""
    try:
        with wave.open(str(path), "rb") as wav:
            width, channels, rate, count = (wav.getsampwidth(), wav.getnchannels(), wav.getframerate(),
                                            wav.getnframes())
            if width not in (1, 2, 4) or not 1 <= channels <= 8 or not 4000 <= rate <= 192000:
                raise AudioSpecError(f"{path}: unsupported WAV ({width * 8} bit, {channels} ch, {rate} Hz)")
            if count > MAX_WAV_SECONDS * rate:
                raise AudioSpecError(f"{path}: longer than {MAX_WAV_SECONDS} s")
            yield wav, width, channels, rate, count
    except (wave.Error, EOFError, RuntimeError, struct.error) as exc:  # wave raises all of these on bad input
        raise AudioSpecError(f"{path}: not a PCM WAV file ({exc})") from exc
    except OSError as exc:
        raise AudioSpecError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def read_wav_48k_mono(path: str | Path) -> np.ndarray[Any, np.dtype[np.int16]]:
    """Whole file as int16 mono 48 kHz: channels averaged, resampled by soxr."""
    import numpy as np
    import soxr

    with wav_reader(path) as (wav, width, channels, rate, count):
        raw = wav.readframes(count)
    usable = len(raw) // (width * channels) * width * channels
    if width == 1:  # 8-bit WAV is unsigned
        data = (np.frombuffer(raw[:usable], np.uint8).astype(np.float32) - 128.0) / 128.0
    else:
        kind = "<i2" if width == 2 else "<i4"
        data = np.frombuffer(raw[:usable], kind).astype(np.float32) / float(2 ** (8 * width - 1))
    mono = data.reshape(-1, channels).mean(axis=1)
    if rate != SAMPLE_RATE:
        mono = np.asarray(soxr.resample(mono, rate, SAMPLE_RATE, quality="HQ"), np.float32)
    scaled = np.clip(np.round(mono * 32767.0), -32768, 32767)
    out: np.ndarray[Any, np.dtype[np.int16]] = scaled.astype(np.int16)
    return out


class WavSource:
    """Plays a WAV file as 20 ms frames; loops, or after the end gives silence (loop=False)."""

    paced = False

    def __init__(self, path: str | Path, loop: bool = True) -> None:
        import numpy as np

        samples = read_wav_48k_mono(path)
        pad = (-len(samples)) % FRAME_SAMPLES
        self._pcm = np.concatenate([samples, np.zeros(pad, np.int16)]).tobytes()
        self._loop = loop
        self._pos = 0
        self.finished = not self._pcm

    def read_frame(self) -> bytes:
        if self._pos >= len(self._pcm):
            if not self._loop or not self._pcm:
                self.finished = True
                return SILENCE
            self._pos = 0
        frame = self._pcm[self._pos : self._pos + FRAME_BYTES]
        self._pos += FRAME_BYTES
        if self._pos >= len(self._pcm) and not self._loop:
            self.finished = True
        return frame

    def close(self) -> None:
        pass


class WavSink:
    """Records frames to a 16-bit mono 48 kHz WAV file."""

    def __init__(self, path: str | Path) -> None:
        # Held open across calls (closed by close()), so no context manager here. The file is opened first:
        # a failed wave.open leaves a half-built writer that complains when collected.
        try:
            self._file: BinaryIO | None = open(path, "wb")  # noqa: SIM115
        except OSError as exc:
            raise AudioSpecError(f"{path}: cannot write ({exc.strerror or exc})") from exc
        self._wav: wave.Wave_write | None = wave.open(self._file, "wb")  # noqa: SIM115
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(SAMPLE_RATE)
        self.frames = 0

    def write_frame(self, pcm: bytes) -> None:
        if self._wav is not None:
            self._wav.writeframesraw(pcm)
            self.frames += 1

    def close(self) -> None:
        if self._wav is not None:
            self._wav.close()  # patches the header's sizes; leaves our file object open
            self._wav = None
        if self._file is not None:
            self._file.close()
            self._file = None
