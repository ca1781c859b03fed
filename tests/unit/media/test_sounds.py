"""The committed sounds are what zcall.media.sounds synthesizes, and each sounds as specified."""

from __future__ import annotations

import wave

import numpy as np
import pytest

from tests.support.audio_check import dominant_frequency, read_wav
from zcall.media import sounds
from zcall.media.audio import WavSource


@pytest.mark.parametrize("name", list(sounds.SOUNDS))
def test_asset_matches_the_script(name: str) -> None:
    with wave.open(str(sounds.path(name)), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, sounds.RATE)
        assert wav.readframes(wav.getnframes()) == sounds.pcm(name)
    assert WavSource(sounds.path(name)).read_frame()  # the player takes it


def _on_off(name: str) -> list[tuple[bool, float]]:
    """Runs of sound and silence: (sounding, seconds)."""
    samples, _rate = read_wav(sounds.path(name))  # 16 kHz: 160 samples are 10 ms
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160).astype(np.float64)
    loud = np.sqrt((frames**2).mean(axis=1)) > 300
    runs: list[tuple[bool, float]] = []
    for value in loud:
        if runs and runs[-1][0] == value:
            runs[-1] = (value, runs[-1][1] + 0.01)
        else:
            runs.append((bool(value), 0.01))
    return runs


def test_call_progress_tones_follow_e180() -> None:
    for name, on, off in (("ringback", 1.0, 4.0), ("busy", 0.5, 0.5)):
        runs = _on_off(name)
        assert [r[0] for r in runs] == [True, False]
        assert runs[0][1] == pytest.approx(on, abs=0.04) and runs[1][1] == pytest.approx(off, abs=0.04)
        samples, rate = read_wav(sounds.path(name))
        assert dominant_frequency(samples[: int(on * rate)], rate) == pytest.approx(425, abs=2)


def test_secure_rises_and_alarm_alternates() -> None:
    samples, rate = read_wav(sounds.path("secure"))
    notes = [dominant_frequency(samples[int(i * 0.18 * rate) : int((i * 0.18 + 0.1) * rate)], rate)
             for i in range(3)]
    assert notes == sorted(notes) and notes[0] == pytest.approx(659.25, abs=3)
    samples, rate = read_wav(sounds.path("alarm"))
    halves = [dominant_frequency(samples[int(i * 0.25 * rate) : int((i + 1) * 0.25 * rate)], rate)
              for i in range(8)]
    assert [round(h / 10) * 10 for h in halves] == [880, 660] * 4


def test_unknown_sound_is_refused() -> None:
    with pytest.raises(KeyError, match="no sound named"):
        sounds.path("fanfare")


def test_ring_is_two_bursts_of_440_and_480() -> None:
    runs = _on_off("ring")
    assert [r[0] for r in runs] == [True, False, True, False]
    assert [round(r[1], 1) for r in runs] == [0.4, 0.2, 0.4, 1.0]
    samples, rate = read_wav(sounds.path("ring"))
    spectrum = np.abs(np.fft.rfft(samples[: int(0.4 * rate)].astype(np.float64)))
    peaks = np.fft.rfftfreq(int(0.4 * rate), 1 / rate)[np.argsort(spectrum)[-2:]]
    assert sorted(round(p) for p in peaks) == [440, 480]
