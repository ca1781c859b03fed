"""The bench's audio checks measure what they claim: frequency, level, PESQ, STOI, alignment."""

from __future__ import annotations

import io
import math
import struct
import tempfile
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.audio_check import (
    AudioCheckError,
    WavFormatError,
    align,
    dominant_frequency,
    estimate_delay,
    pesq_wb,
    read_wav,
    rms_dbfs,
    silent_fraction,
    speech_wav,
    stoi,
    to_float,
    to_int16,
    write_tone_wav,
    write_wav,
)
from tests.support.prereq import require_binary

TEXT = "The quick brown fox jumps over the lazy dog. Read your two words aloud, then compare them."


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_binary("espeak-ng", "sox")
    return speech_wav(tmp_path_factory.mktemp("speech") / "ref.wav", TEXT, rate=16000)


def _variant(tmp_path: Path, ref: Path, name: str, change: object) -> Path:
    samples, rate = read_wav(ref)
    changed = change(to_float(samples), rate)  # type: ignore[operator]
    return write_wav(tmp_path / f"{name}.wav", changed, rate)


@pytest.mark.parametrize(("hz", "rate"), [(440.0, 48000), (1000.0, 16000), (3150.5, 48000), (97.0, 8000)])
def test_tone_frequency_within_two_hertz(tmp_path: Path, hz: float, rate: int) -> None:
    samples, got_rate = read_wav(write_tone_wav(tmp_path / "tone.wav", hz, 1.0, rate=rate, amplitude=0.3))
    assert got_rate == rate and samples.size == rate
    assert abs(dominant_frequency(samples, rate) - hz) <= 2.0


def test_dominant_frequency_ignores_noise_and_dc(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    t = np.arange(48000) / 48000
    x = 0.1 + 0.2 * np.sin(2 * np.pi * 440 * t) + rng.normal(0, 0.05, t.size)
    assert abs(dominant_frequency(x, 48000) - 440) <= 2.0


@pytest.mark.parametrize("amplitude", [1.0, 0.5, 0.1, 0.01])
def test_rms_of_known_sine(tmp_path: Path, amplitude: float) -> None:
    samples, _ = read_wav(write_tone_wav(tmp_path / "tone.wav", 1000, 1.0, amplitude=amplitude))
    expected = 20 * math.log10(amplitude / math.sqrt(2))  # 0.5 → -9.03 dBFS
    assert rms_dbfs(samples) == pytest.approx(expected, abs=0.05)


@settings(max_examples=25, deadline=None)
@given(hz=st.floats(40.0, 7900.0), amplitude=st.floats(0.01, 1.0), phase=st.floats(0.0, 6.28))
def test_dominant_frequency_property(hz: float, amplitude: float, phase: float) -> None:
    t = np.arange(16000) / 16000
    samples = to_int16(amplitude * np.sin(2 * np.pi * hz * t + phase))
    assert abs(dominant_frequency(samples, 16000) - hz) <= 2.0


def test_int16_float_round_trip_is_exact() -> None:
    x = np.array([-32768, -1, 0, 1, 12345, 32767], dtype=np.int16)
    assert to_int16(to_float(x)).tolist() == x.tolist()
    assert to_int16(np.array([1.5, -1.5])).tolist() == [32767, -32768]


def test_silent_fraction_finds_gaps(tmp_path: Path) -> None:
    samples, rate = read_wav(write_tone_wav(tmp_path / "tone.wav", 440, 1.0, amplitude=0.2))
    assert silent_fraction(samples, rate) == 0.0
    gappy = samples.copy()
    gappy[9600:19200] = 0  # 200 ms of a one-second tone: 10 of 50 frames
    assert silent_fraction(gappy, rate) == pytest.approx(0.2)
    assert silent_fraction(np.zeros(960, dtype=np.int16), rate) == 1.0
    with pytest.raises(AudioCheckError):
        silent_fraction(samples[:100], rate)


def test_rms_of_silence_is_minus_infinity() -> None:
    assert rms_dbfs(np.zeros(100, dtype=np.int16)) == -math.inf
    with pytest.raises(AudioCheckError):
        dominant_frequency(np.zeros(1000, dtype=np.int16), 16000)


def test_speech_wav_is_speech_at_the_rate_asked(speech: Path, tmp_path: Path) -> None:
    samples, rate = read_wav(speech)
    assert rate == 16000
    assert 2.0 < samples.size / rate < 15.0
    assert rms_dbfs(samples) > -35.0
    # Voiced speech: the strongest component sits in the voice band, not at the edges.
    assert 70.0 < dominant_frequency(samples, rate) < 1500.0
    wide, wide_rate = read_wav(speech_wav(tmp_path / "wide.wav", "Hello there", rate=48000))
    assert wide_rate == 48000 and rms_dbfs(wide) > -35.0
    with wave.open(str(tmp_path / "wide.wav")) as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)


def test_speech_text_is_not_taken_for_options(tmp_path: Path) -> None:
    require_binary("espeak-ng", "sox")
    samples, _ = read_wav(speech_wav(tmp_path / "dash.wav", "--help me", rate=16000))
    assert rms_dbfs(samples) > -35.0
    with pytest.raises(ValueError):
        speech_wav(tmp_path / "empty.wav", "  ")


def test_pesq_of_self_is_top_score(speech: Path) -> None:
    assert pesq_wb(speech, speech) == pytest.approx(4.64, abs=0.1)


def test_pesq_survives_call_delay_and_level_change(speech: Path, tmp_path: Path) -> None:
    # 370 ms of leading silence, half level, recorded at 48 kHz: a perfect call still scores near the top.
    def delayed(x: np.ndarray, rate: int) -> np.ndarray:
        return np.concatenate([np.zeros(int(0.37 * rate)), 0.5 * x, np.zeros(rate // 2)])

    late = _variant(tmp_path, speech, "late", delayed)
    samples, rate = read_wav(late)
    # The same content at 48 kHz (sample repetition: crude, so a lower bar).
    write_wav(tmp_path / "late48.wav", np.repeat(to_float(samples), 3), rate * 3)
    assert pesq_wb(speech, late) > 4.4
    assert pesq_wb(speech, tmp_path / "late48.wav") > 3.8


def test_pesq_and_stoi_fall_with_noise_and_dropouts(speech: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(2)

    def noisy(x: np.ndarray, rate: int) -> np.ndarray:  # white noise 15 dB below the speech
        return x + rng.normal(0, math.sqrt(np.mean(x * x)) * 10 ** (-15 / 20), x.size)

    def dropouts(x: np.ndarray, rate: int) -> np.ndarray:  # 40 ms zeroed in every 100 ms: lost packets
        y = x.copy()
        for start in range(0, y.size, rate // 10):
            y[start : start + rate // 25] = 0
        return y

    clean = pesq_wb(speech, speech)
    for change, ceiling in ((noisy, 2.5), (dropouts, 2.0)):
        degraded = _variant(tmp_path, speech, change.__name__, change)
        assert pesq_wb(speech, degraded) < min(ceiling, clean - 1.5)
    assert stoi(speech, _variant(tmp_path, speech, "gaps", dropouts)) < 0.8


def test_scores_refuse_silence_clearly(speech: Path, tmp_path: Path) -> None:
    silent = _variant(tmp_path, speech, "silent", lambda x, rate: np.zeros_like(x))
    for score in (pesq_wb, stoi):
        with pytest.raises(AudioCheckError, match="degraded recording is silent"):
            score(speech, silent)
        with pytest.raises(AudioCheckError, match="reference is silent"):
            score(silent, speech)
    # Not silent, just a faint click: scored at the bottom of the scale.
    click = np.zeros(16000 * 3)
    click[8000] = 0.001
    assert pesq_wb(speech, write_wav(tmp_path / "click.wav", click, 16000)) < 1.3


def test_stoi_of_self_is_one_and_survives_delay(speech: Path, tmp_path: Path) -> None:
    assert stoi(speech, speech) == pytest.approx(1.0, abs=1e-3)
    late = _variant(tmp_path, speech, "late", lambda x, rate: np.concatenate([np.zeros(rate // 4), x]))
    assert stoi(speech, late) > 0.99


def test_estimate_delay_and_align(speech: Path) -> None:
    samples, rate = read_wav(speech)
    ref = to_float(samples)
    late = np.concatenate([np.zeros(1234), ref])
    early = ref[567:]
    assert estimate_delay(ref, late, rate) == 1234
    assert estimate_delay(ref, early, rate) == -567
    assert np.allclose(align(ref, late, rate), ref)
    aligned = align(ref, early, rate)
    assert np.allclose(aligned[567:], ref[567:]) and not aligned[:567].any()


def test_read_wav_mixes_stereo_down(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    frames = np.array([[1000, 3000], [-200, 200], [32767, 32767]], dtype="<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(48000)
        out.writeframes(frames.tobytes())
    samples, rate = read_wav(path)
    assert rate == 48000
    assert samples.tolist() == [2000, 0, 32767]


def _wav_bytes(width: int = 2, rate: int = 16000, channels: int = 1, frames: bytes = b"\0\0" * 10) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(rate)
        out.writeframes(frames)
    return buf.getvalue()


@pytest.mark.parametrize(
    "data",
    [b"", b"RIFF", b"not a wav at all" * 4, _wav_bytes(width=1, frames=b"\0" * 10),
     _wav_bytes(width=3, frames=b"\0" * 30), _wav_bytes(rate=4000),
     _wav_bytes(channels=9, frames=b"\0" * 36)],
)  # fmt: skip
def test_read_wav_rejects(data: bytes) -> None:
    with pytest.raises(WavFormatError):
        read_wav(io.BytesIO(data))


def test_read_wav_takes_what_a_killed_recorder_left() -> None:
    data = bytearray(_wav_bytes(frames=b"\x02\x00" * 10))
    data[40:44] = (0xFFFFFFFF).to_bytes(4, "little")  # size never written back
    assert read_wav(io.BytesIO(bytes(data)))[0].tolist() == [2] * 10
    data[40:44] = bytes(4)
    assert read_wav(io.BytesIO(bytes(data)))[0].tolist() == [2] * 10


def test_read_wav_enforces_duration_limit() -> None:
    data = _wav_bytes(rate=8000, frames=b"")  # header only, then more than ten minutes of samples
    with pytest.raises(WavFormatError, match="longer than"):
        read_wav(io.BytesIO(data + bytes(2 * 8000 * 600 + 2)))


def _riff(*chunks: tuple[bytes, bytes]) -> bytes:
    body = b"".join(cid + struct.pack("<I", len(c)) + c + b"\0" * (len(c) & 1) for cid, c in chunks)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body


_FMT = struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16)


def test_read_wav_skips_odd_sized_chunks_and_reads_extensible() -> None:
    pcm = struct.pack("<3h", 5, -5, 7)
    with_list = _riff((b"fmt ", _FMT), (b"LIST", b"abc"), (b"data", pcm))
    assert read_wav(io.BytesIO(with_list))[0].tolist() == [5, -5, 7]
    subformat = struct.pack("<H", 1) + bytes(14)
    ext = struct.pack("<HHIIHHHHI", 0xFFFE, 1, 16000, 32000, 2, 16, 22, 16, 4) + subformat
    assert read_wav(io.BytesIO(_riff((b"fmt ", ext), (b"data", pcm))))[0].tolist() == [5, -5, 7]
    float_ext = ext[:24] + struct.pack("<H", 3) + ext[26:]
    with pytest.raises(WavFormatError, match="not PCM"):
        read_wav(io.BytesIO(_riff((b"fmt ", float_ext), (b"data", pcm))))
    with pytest.raises(WavFormatError, match="before fmt"):
        read_wav(io.BytesIO(_riff((b"data", pcm), (b"fmt ", _FMT))))
    with pytest.raises(WavFormatError, match="too many chunks"):
        read_wav(io.BytesIO(_riff((b"fmt ", _FMT), *[(b"junk", b"")] * 80, (b"data", pcm))))


def test_read_wav_accepts_truncated_data() -> None:
    data = _wav_bytes(frames=b"\x01\x00" * 10)[:-3]  # ends mid-sample
    samples, _ = read_wav(io.BytesIO(data))
    assert samples.tolist() == [1] * 8


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.integers(0, 60))
def test_read_wav_fuzz(noise: bytes, keep: int) -> None:
    """Mangled headers and random bytes: a clean result or WavFormatError, nothing else."""
    header = _wav_bytes()[:keep]
    for data in (noise, header + noise):
        try:
            samples, rate = read_wav(io.BytesIO(data))
        except WavFormatError:
            continue
        assert samples.dtype == np.int16 and 8000 <= rate <= 192000


def test_read_wav_from_path_roundtrip() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        x = np.array([0, 1, -1, 32767, -32768], dtype=np.int16)
        samples, rate = read_wav(write_wav(Path(tmp) / "x.wav", x, 8000))
        assert rate == 8000 and samples.tolist() == x.tolist()
