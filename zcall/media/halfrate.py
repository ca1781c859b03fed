"""48 kHz <-> 24 kHz for the capture processing (echo.py): speex's canceller and preprocessor cost about half
as much at 24 kHz, and speech loses little above 11 kHz. One linear-phase low-pass (a Kaiser-windowed sinc of
47 taps: flat to 9.5 kHz, -6 dB at 11 kHz, 45 dB down at 12.5 kHz and 50 from 12.8) serves both ways; each way
delays by 23 samples at 48 kHz (0.48 ms).

Halving is stateless (the caller passes the samples before the window as history: the echo reference jumps
when the path is re-aligned); doubling keeps its own history, as its input is one continuous stream."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]

TAPS = 47
HISTORY = TAPS - 1  # 48 kHz samples halve() needs before its window
DELAY_SAMPLES = TAPS - 1  # at 48 kHz, halved and doubled: (TAPS - 1) / 2 each way


def _lowpass() -> Floats:
    n = np.arange(TAPS) - (TAPS - 1) / 2
    cutoff = 11000 / 48000  # the middle of the transition band, as a fraction of the sampling rate
    taps = 2 * cutoff * np.sinc(2 * cutoff * n) * np.kaiser(TAPS, 4.55)  # beta 4.55: 50 dB
    out: Floats = taps / taps.sum()
    return out


_LOWPASS = _lowpass()
# Polyphase: halving filters the even and the odd input samples with the even and the odd taps; doubling
# (the input with zeros between its samples, through the low-pass with twice its gain) makes its even
# outputs with the even taps and its odd outputs with the odd ones.
_EVEN, _ODD = _LOWPASS[0::2], _LOWPASS[1::2]  # 24 and 23 taps


def halve(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    """The last len(samples) - HISTORY samples (an even number) at 24 kHz: the first HISTORY samples are
    the history the filter needs."""
    x = samples.astype(np.float64)
    n = (len(x) - HISTORY) // 2
    out = np.convolve(x[0::2], _EVEN, "valid")[:n] + np.convolve(x[1::2], _ODD, "valid")[:n]
    return _to_int16(out)


class Doubler:
    """One stream at 24 kHz, doubled to 48 kHz block by block."""

    def __init__(self) -> None:
        self._history = np.zeros(len(_EVEN) - 1)

    def double(self, samples: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
        x = np.concatenate([self._history, samples.astype(np.float64)])
        self._history = x[len(samples):]
        out = np.empty(2 * len(samples))
        out[0::2] = np.convolve(x, 2 * _EVEN, "valid")
        out[1::2] = np.convolve(x, 2 * _ODD, "valid")[1:]
        return _to_int16(out)


def _to_int16(x: Floats) -> npt.NDArray[np.int16]:
    np.rint(x, out=x)  # x is ours to overwrite
    x.clip(-32768, 32767, out=x)
    return x.astype(np.int16)
