"""48 kHz <-> 24 kHz for the capture processing (zcall/media/halfrate.py): what speech keeps, what the halving
folds back, the delay the echo path's alignment and the latency figures count on, and frames that join up."""

from __future__ import annotations

import numpy as np
import pytest

from zcall.media.halfrate import DELAY_SAMPLES, HISTORY, Doubler, halve

FRAME = 960


def _frames_through(signal: np.ndarray) -> np.ndarray:
    """A 48 kHz stream halved frame by frame (each with its history, as echo.py reads its timelines) and
    doubled back."""
    stream = np.concatenate([np.zeros(HISTORY, np.int16), signal.astype(np.int16)])
    doubler = Doubler()
    return np.concatenate([doubler.double(halve(stream[i : i + FRAME + HISTORY]))
                           for i in range(0, len(signal), FRAME)]).astype(np.float64)


def _tone(hz: float, seconds: float = 1.0) -> np.ndarray:
    return np.sin(2 * np.pi * hz * np.arange(int(48000 * seconds)) / 48000) * 10000


def _gain_db(out: np.ndarray, signal: np.ndarray) -> float:
    settled = slice(4800, None)
    return float(20 * np.log10(np.std(out[settled]) / np.std(signal[settled])))


@pytest.mark.parametrize("hz", [100, 1000, 3000, 6000, 8000, 9000])
def test_speech_band_passes_unchanged(hz: float) -> None:
    tone = _tone(hz)
    assert abs(_gain_db(_frames_through(tone), tone)) <= 0.2


@pytest.mark.parametrize(("hz", "floor_db"), [(12500, -45), (13000, -50), (14000, -50), (18000, -50),
                                               (23000, -50)])
def test_what_24_khz_cannot_carry_is_removed_not_folded_back(hz: float, floor_db: float) -> None:
    """Above 12.5 kHz a tone is taken 45-50 dB down before the halving, so it does not come back as a false
    tone under 12 kHz (which the canceller would find in the microphone but not through the echo path)."""
    tone = _tone(hz)
    halved = halve(np.concatenate([np.zeros(HISTORY), tone]).astype(np.int16)).astype(np.float64)
    assert _gain_db(halved, tone) <= floor_db
    assert _gain_db(_frames_through(tone), tone) <= floor_db


def test_the_delay_is_what_the_module_says() -> None:
    click = np.zeros(48000)
    click[10001] = 20000
    out = _frames_through(click)
    assert int(np.argmax(np.abs(out))) - 10001 == DELAY_SAMPLES == 46  # 0.96 ms both ways


def test_frames_join_up_as_one_stream() -> None:
    """Frame by frame with history is the same as the whole stream at once: no click at a frame's edge."""
    rng = np.random.default_rng(2)
    speech_like = rng.normal(0, 4000, 48000) * np.repeat(rng.random(50) > 0.4, 960)
    whole = np.concatenate([np.zeros(HISTORY), speech_like]).astype(np.int16)
    at_once = Doubler().double(halve(whole)).astype(np.float64)
    assert np.array_equal(_frames_through(speech_like), at_once)


def test_loud_input_saturates_instead_of_wrapping() -> None:
    square = np.where(np.arange(4800) % 96 < 48, 32767, -32768).astype(np.int16)
    out = Doubler().double(halve(np.concatenate([np.zeros(HISTORY, np.int16), square])))
    assert out.dtype == np.int16
    assert out.max() == 32767 and out.min() == -32768  # the filter's overshoot is clipped, not wrapped
