"""Audio checks for the bench: make test signals, read what a call recorded, and judge it by content.

Tones are judged by their dominant frequency and level; speech by PESQ (ITU-T P.862.2 wideband, via `pesq`)
and STOI (via `pystoi`) against the reference, after aligning the recording to the reference by
cross-correlation (a call adds delay, and a recording may start with silence).

Sample conventions: int16 arrays as read from 16-bit PCM WAV files; float arrays are in [-1, 1].
"""

from __future__ import annotations

import math
import os
import struct
import subprocess
import tempfile
import wave
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

PESQ_RATE = 16000
MAX_WAV_SECONDS = 600  # limit on what read_wav accepts: ten minutes
MAX_WAV_CHANNELS = 8
MAX_WAV_BYTES = 256 * 1024 * 1024
MAX_WAV_CHUNKS = 64
_WAVE_FORMAT_PCM = 1
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE
MAX_SPEECH_TEXT = 2000

Samples = npt.NDArray[np.int16]
Floats = npt.NDArray[np.float64]
PathLike = str | os.PathLike[str]


class AudioCheckError(Exception):
    """An audio check could not be made (bad input, or the scorer refused it)."""


class WavFormatError(AudioCheckError, ValueError):
    """A file that is not a 16-bit PCM WAV within our limits."""


def to_float(samples: npt.NDArray[np.generic]) -> Floats:
    """int16 → float in [-1, 1); float input is taken as already scaled."""
    if samples.dtype == np.int16:
        return samples.astype(np.float64) / 32768.0
    if np.issubdtype(samples.dtype, np.floating):
        return samples.astype(np.float64)
    raise TypeError(f"expected int16 or float samples, got {samples.dtype}")


def to_int16(samples: Floats) -> Samples:
    """float → int16 on to_float's scale (int16 → float → int16 is exact); clips at full scale."""
    return np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int16)


def write_wav(path: PathLike, samples: npt.NDArray[np.generic], rate: int) -> Path:
    """Write mono 16-bit PCM."""
    data = samples if samples.dtype == np.int16 else to_int16(to_float(samples))
    with wave.open(os.fspath(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(data.astype("<i2").tobytes())
    return Path(path)


def write_tone_wav(
    path: PathLike, hz: float, seconds: float, rate: int = 48000, amplitude: float = 0.5
) -> Path:
    """A sine of `amplitude` (fraction of full scale) at `hz`, as mono 16-bit PCM."""
    if not 0.0 <= amplitude <= 1.0:
        raise ValueError("amplitude is a fraction of full scale, in [0, 1]")
    if not 0 < hz < rate / 2:
        raise ValueError("frequency must be between 0 and the Nyquist frequency")
    t = np.arange(round(seconds * rate)) / rate
    return write_wav(path, amplitude * np.sin(2 * np.pi * hz * t), rate)


def speech_wav(
    path: PathLike, text: str, rate: int = 16000, voice: str = "en", words_per_minute: int = 150
) -> Path:
    """Synthesise `text` with espeak-ng, then convert with sox to mono 16-bit PCM at `rate`."""
    if not text.strip() or len(text) > MAX_SPEECH_TEXT:
        raise ValueError(f"speech text must be 1..{MAX_SPEECH_TEXT} characters")
    with tempfile.TemporaryDirectory(prefix="zcall-speech-") as tmp:
        raw = Path(tmp) / "espeak.wav"
        # Text on stdin: nothing in it can be taken for an option.
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-w", str(raw), "--stdin"],
            input=text, text=True, check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        convert = ["sox", str(raw), "-r", str(rate), "-c", "1", "-b", "16", "-e", "signed-integer"]
        subprocess.run([*convert, os.fspath(path)], check=True, capture_output=True, timeout=60)
    return Path(path)


def sentences_wav(path: PathLike, sentences: list[str], pause_s: float = 0.7) -> Path:
    """espeak-ng sentences, each followed by a pause, as one 16 kHz mono WAV: speech with the activity (about
    60 %) P.830 asks of PESQ material."""
    target = Path(path)
    parts: list[Samples] = []
    for i, text in enumerate(sentences):
        samples, rate = read_wav(speech_wav(target.with_suffix(f".{i}.wav"), text))
        parts += [samples, np.zeros(int(pause_s * rate), np.int16)]
    return write_wav(target, np.concatenate(parts), 16000)


def read_wav(source: PathLike | BinaryIO) -> tuple[Samples, int]:
    """Read a 16-bit PCM WAV (several channels are mixed down to mono). Returns (int16 samples, rate)."""
    if isinstance(source, str | os.PathLike):
        if os.path.getsize(source) > MAX_WAV_BYTES:
            raise WavFormatError(f"file larger than {MAX_WAV_BYTES} bytes")
        data = Path(source).read_bytes()
    else:
        data = source.read(MAX_WAV_BYTES + 1)
    if len(data) > MAX_WAV_BYTES:
        raise WavFormatError(f"file larger than {MAX_WAV_BYTES} bytes")
    return parse_wav(data)


def parse_wav(data: bytes) -> tuple[Samples, int]:
    """Parse RIFF/WAVE bytes holding 16-bit PCM (plain or WAVE_FORMAT_EXTENSIBLE)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavFormatError("not a RIFF/WAVE file")
    pos, chunks = 12, 0
    fmt: tuple[int, int] | None = None  # (channels, rate)
    while pos + 8 <= len(data):
        chunks += 1
        if chunks > MAX_WAV_CHUNKS:
            raise WavFormatError("too many chunks")
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        pos += 8
        if chunk_id == b"fmt ":
            fmt = _parse_fmt(data[pos : pos + size] if pos + size <= len(data) else b"")
        elif chunk_id == b"data":
            if fmt is None:
                raise WavFormatError("data chunk before fmt chunk")
            # A recorder killed mid-call leaves the size at 0, too big, or 0xFFFFFFFF: take what is there.
            body = data[pos : pos + size] if 0 < size <= len(data) - pos else data[pos:]
            return _samples(body, *fmt)
        pos += size + (size & 1)  # chunks are padded to even length
    raise WavFormatError("no data chunk")


def _parse_fmt(body: bytes) -> tuple[int, int]:
    if len(body) < 16:
        raise WavFormatError("fmt chunk truncated")
    tag, channels, rate, byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", body)
    if tag == _WAVE_FORMAT_EXTENSIBLE:
        if len(body) < 40 or struct.unpack_from("<H", body, 24)[0] != _WAVE_FORMAT_PCM:
            raise WavFormatError("extensible WAV that is not PCM")
    elif tag != _WAVE_FORMAT_PCM:
        raise WavFormatError(f"not PCM (format tag {tag:#x})")
    if bits != 16:
        raise WavFormatError(f"expected 16-bit samples, got {bits}-bit")
    if not 1 <= channels <= MAX_WAV_CHANNELS:
        raise WavFormatError(f"unsupported channel count {channels}")
    if not 8000 <= rate <= 192000:
        raise WavFormatError(f"unsupported sample rate {rate}")
    if block_align != 2 * channels or byte_rate != rate * block_align:
        raise WavFormatError("inconsistent block align or byte rate")
    return channels, rate


def _samples(body: bytes, channels: int, rate: int) -> tuple[Samples, int]:
    usable = len(body) - len(body) % (2 * channels)  # a truncated file ends mid-frame
    if usable // (2 * channels) > MAX_WAV_SECONDS * rate:
        raise WavFormatError(f"longer than {MAX_WAV_SECONDS} s")
    samples = np.frombuffer(body[:usable], dtype="<i2").astype(np.int16)
    if channels > 1:
        samples = np.round(samples.reshape(-1, channels).mean(axis=1)).astype(np.int16)
    return samples, rate


def dominant_frequency(samples: npt.NDArray[np.generic], rate: int) -> float:
    """The strongest frequency, in Hz: Hann window, zero-padded FFT, parabolic peak interpolation."""
    x = to_float(samples)
    if x.size < 16:
        raise AudioCheckError("too few samples for a frequency estimate")
    if x.size > 2**24:
        raise AudioCheckError("too many samples for one FFT: pass a slice")
    x = (x - x.mean()) * np.hanning(x.size)
    n_fft = 1 << (4 * x.size - 1).bit_length()  # at least 4x zero padding: fine bins before interpolating
    spectrum = np.abs(np.fft.rfft(x, n_fft))
    peak = int(np.argmax(spectrum[1:-1])) + 1
    if spectrum[peak] == 0.0:
        raise AudioCheckError("silence has no dominant frequency")
    a, b, c = np.log(spectrum[peak - 1 : peak + 2] + 1e-300)
    denom = a - 2 * b + c
    offset = 0.5 * (a - c) / denom if denom != 0 else 0.0
    return float((peak + offset) * rate / n_fft)


def rms_dbfs(samples: npt.NDArray[np.generic]) -> float:
    """RMS level in dB relative to full scale (a full-scale sine is -3.01 dBFS); silence is -inf."""
    x = to_float(samples)
    if x.size == 0:
        raise AudioCheckError("no samples")
    rms = math.sqrt(float(np.mean(x * x)))
    return 20 * math.log10(rms) if rms > 0 else -math.inf


def silent_fraction(
    samples: npt.NDArray[np.generic], rate: int, frame_ms: float = 20.0, threshold_dbfs: float = -50.0
) -> float:
    """Share of whole frames (default 20 ms, one packet) quieter than `threshold_dbfs`: gaps in a tone."""
    x = to_float(samples)
    size = round(rate * frame_ms / 1000)
    count = x.size // size if size > 0 else 0
    if count == 0:
        raise AudioCheckError("shorter than one frame")
    frames = x[: count * size].reshape(count, size)
    power = np.mean(frames * frames, axis=1)
    return float(np.mean(power < 10 ** (threshold_dbfs / 10)))


def tone_heard(path: PathLike, min_seconds: float = 0.5) -> float:
    """The dominant frequency of what a recording holds between its first and last loud sample.

    Call recordings open (and may close) with silence until secure audio flows; that part is skipped.
    """
    samples, rate = read_wav(path)
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > 1000)
    if loud.size < rate * min_seconds:
        raise AudioCheckError(f"{path}: less than {min_seconds} s of sound")
    return dominant_frequency(samples[loud[0] : loud[-1] + 1], rate)


def resample(samples: npt.NDArray[np.generic], rate: int, new_rate: int) -> Floats:
    x = to_float(samples)
    if rate == new_rate:
        return x
    import soxr

    return np.asarray(soxr.resample(x, rate, new_rate), dtype=np.float64)


def estimate_delay(reference: Floats, degraded: Floats, rate: int, max_lag_s: float = 10.0) -> int:
    """Lag L (samples) where degraded[n + L] best matches reference[n]: how late the degraded signal runs."""
    from scipy.signal import correlate

    if reference.size == 0 or degraded.size == 0:
        raise AudioCheckError("cannot align an empty signal")
    corr = correlate(degraded, reference, mode="full", method="fft")
    lags = np.arange(-(reference.size - 1), degraded.size)
    window = np.abs(lags) <= max_lag_s * rate
    if not window.any():
        raise AudioCheckError("no lag within the allowed range")
    best = int(np.argmax(np.where(window, corr, -np.inf)))
    return int(lags[best])


def align(reference: Floats, degraded: Floats, rate: int, max_lag_s: float = 10.0) -> Floats:
    """The degraded signal shifted onto the reference and cut or zero-padded to the reference's length."""
    lag = estimate_delay(reference, degraded, rate, max_lag_s)
    shifted = degraded[lag:] if lag >= 0 else np.concatenate([np.zeros(-lag), degraded])
    out = np.zeros(reference.size)
    count = min(reference.size, shifted.size)
    out[:count] = shifted[:count]
    return out


def _load_pair(ref_path: PathLike, deg_path: PathLike, rate: int, max_lag_s: float) -> tuple[Floats, Floats]:
    ref, ref_rate = read_wav(ref_path)
    deg, deg_rate = read_wav(deg_path)
    # The scorers fail obscurely (NaN, "no utterances") on silence: say what is wrong instead.
    for name, samples in (("reference", ref), ("degraded recording", deg)):
        if not samples.any():
            raise AudioCheckError(f"the {name} is silent")
    reference = resample(ref, ref_rate, rate)
    degraded = resample(deg, deg_rate, rate)
    return reference, align(reference, degraded, rate, max_lag_s)


def pesq_wb(ref_path: PathLike, deg_path: PathLike, max_lag_s: float = 10.0) -> float:
    """Wideband PESQ (MOS-LQO, about 1.0 to 4.64) of a recording against its reference, both at 16 kHz."""
    from pesq import PesqError, pesq

    reference, degraded = _load_pair(ref_path, deg_path, PESQ_RATE, max_lag_s)
    try:
        return float(pesq(PESQ_RATE, reference, degraded, "wb"))
    except (PesqError, ValueError) as exc:
        raise AudioCheckError(f"PESQ refused the pair: {type(exc).__name__}: {exc}") from exc


def stoi(ref_path: PathLike, deg_path: PathLike, extended: bool = False, max_lag_s: float = 10.0) -> float:
    """Short-Time Objective Intelligibility (0..1) of a recording against its reference, after alignment."""
    from pystoi import stoi as pystoi_stoi

    reference, degraded = _load_pair(ref_path, deg_path, PESQ_RATE, max_lag_s)
    return float(pystoi_stoi(reference, degraded, PESQ_RATE, extended=extended))
