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
# Both ways run as one small matrix product per frame (numpy's convolve makes a call per output sample: twice
# as slow on a frame). The signal is cut into blocks at least the filter's history long, and each block's
# outputs are the product of that block and the one before it with a fixed matrix.
_HALVING_BLOCK = 48  # at 48 kHz, 24 outputs
_HALVING_LEAD = _HALVING_BLOCK - HISTORY  # zeros before the history make it a whole block
_DOUBLING_BLOCK = 24  # at 24 kHz, 48 outputs


def _halving_matrix() -> Floats:
    """Output r of a block (24 kHz) is sum_k h[k] x[2r - k], x counted from the block's start (48 kHz)."""
    width = _HALVING_BLOCK
    matrix = np.zeros((2 * width, width // 2))
    for r in range(width // 2):
        for k in range(TAPS):
            matrix[width + 2 * r - k, r] = _LOWPASS[k]
    return matrix


def _doubling_matrix() -> Floats:
    """The input with zeros between its samples, through the low-pass with twice its gain: output 2r + p of a
    block (48 kHz) is sum_j 2 h[2j + p] x[r - j], x counted from the block's start (24 kHz)."""
    width = _DOUBLING_BLOCK
    matrix = np.zeros((2 * width, 2 * width))
    for r in range(width):
        for k in range(TAPS):
            j, p = divmod(k, 2)
            matrix[width + r - j, 2 * r + p] = 2 * _LOWPASS[k]
    return matrix


_HALVING, _DOUBLING = _halving_matrix(), _doubling_matrix()


def halve(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    """The last len(samples) - HISTORY samples (an even number) at 24 kHz: the first HISTORY samples are
    the history the filter needs."""
    n = (len(samples) - HISTORY) // 2
    blocks = -(-(_HALVING_LEAD + len(samples)) // _HALVING_BLOCK)
    x = np.zeros(blocks * _HALVING_BLOCK)
    x[_HALVING_LEAD : _HALVING_LEAD + len(samples)] = samples
    return _to_int16((_paired(x, _HALVING_BLOCK) @ _HALVING).reshape(-1)[:n])


class Doubler:
    """One stream at 24 kHz, doubled to 48 kHz block by block."""

    def __init__(self) -> None:
        self._last = np.zeros(_DOUBLING_BLOCK)  # the input's last block: the next one's history

    def double(self, samples: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
        n, width = len(samples), _DOUBLING_BLOCK
        x = np.zeros((1 + -(-n // width)) * width)
        x[:width] = self._last
        x[width : width + n] = samples
        self._last = x[n : n + width].copy()
        return _to_int16((_paired(x, width) @ _DOUBLING).reshape(-1)[: 2 * n])


def _paired(x: Floats, width: int) -> Floats:
    """Each block of `width` samples after the first, beside the block before it."""
    blocks = x.reshape(-1, width)
    pairs = np.empty((len(blocks) - 1, 2 * width))
    pairs[:, :width] = blocks[:-1]
    pairs[:, width:] = blocks[1:]
    return pairs


def _to_int16(x: Floats) -> npt.NDArray[np.int16]:
    np.rint(x, out=x)  # x is ours to overwrite
    np.minimum(x, 32767, out=x)  # ufuncs in place: ndarray.clip costs twice as much
    np.maximum(x, -32768, out=x)
    return x.astype(np.int16)
