"""Where the echo path is, found in the signals themselves: GCC-PHAT (cross-correlation with the spectrum
whitened) at 8 kHz for the bulk delay, then at 48 kHz to the sample, since a converged canceller fed a
reference a sample off loses 16 dB. Pure functions of two windows of samples; echo.py decides when to look."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.int16]

_DECIMATE = 6  # 48 kHz -> 8 kHz for the delay search
_MIN_PEAK_RATIO = 10.0  # correlation peak over the median: a real echo path, not noise
_FINE_REACH = 2 * _DECIMATE  # the full-rate search around the 8 kHz peak
_FINE_BAND_FLOOR = 1e-6  # bins whose far-end power is 60 dB under its strongest carry nothing to align on


def estimate_delay(reference: Samples, captured: Samples, max_lag: int) -> tuple[int, float] | None:
    """Lag (samples, 0..max_lag) by which `captured` (the last window) echoes `reference` (the same window
    plus max_lag samples before it), with the peak-to-median ratio; None without a clear peak. GCC-PHAT at
    8 kHz: whitening makes the peak sharp for speech and tones alike."""
    ref = _decimate(reference)
    cap = _decimate(captured)
    lags = max_lag // _DECIMATE
    # As long as the reference: the lags searched (0..lags) wrap no part of the capture into one another, as
    # len(ref) = len(cap) + lags (12000 = 2^5 * 3 * 5^3, a size pocketfft is fast on).
    n = max(len(ref), len(cap) + lags)
    spectrum = np.fft.rfft(cap, n) * np.conj(np.fft.rfft(ref, n))
    spectrum /= np.abs(spectrum) + 1e-9
    corr = np.fft.irfft(spectrum, n)
    # corr[m] = sum_k cap[k + m] * ref[k]; an echo d late has cap[k] = ref[k + lags - d], so it peaks at
    # m = d - lags (negative, taken modulo n).
    scores = np.abs(corr[(np.arange(lags + 1) - lags) % n])
    best = int(np.argmax(scores))
    ratio = float(scores[best]) / (float(np.median(scores)) + 1e-12)
    if ratio < _MIN_PEAK_RATIO:
        return None
    return best * _DECIMATE, ratio


def refine_delay(reference: Samples, captured: Samples, max_lag: int, coarse: int) -> int:
    """The lag at full rate (48 kHz) near a coarse one from estimate_delay: GCC-PHAT on the same windows,
    searched within _FINE_REACH samples of it. A filter that has converged is thrown off by a reference a
    sample or two off, so a path that moved is re-aligned to the sample."""
    ref = reference.astype(np.float64)
    cap = captured.astype(np.float64)
    n = max(len(ref), len(cap) + max_lag)  # as in estimate_delay: no lag searched wraps (72000 = 2^6 3^2 5^3)
    far = np.fft.rfft(ref - ref.mean(), n)
    spectrum = np.fft.rfft(cap - cap.mean(), n) * np.conj(far)
    # Whitened only where the far end has sound: in bins it left empty (above 8 kHz for wideband speech)
    # the microphone's noise alone would make the peak wander by a sample, and a sample costs 16 dB.
    power = np.abs(far) ** 2
    spectrum *= (power > _FINE_BAND_FLOOR * power.max()) / (np.abs(spectrum) + 1e-9)
    corr = np.fft.irfft(spectrum, n)
    lags = np.arange(max(coarse - _FINE_REACH, 0), min(coarse + _FINE_REACH, max_lag) + 1)
    scores = np.abs(corr[(lags - max_lag) % n])
    return int(lags[int(np.argmax(scores))])


_ONES = np.ones(_DECIMATE, np.float32)


def _decimate(samples: Samples) -> npt.NDArray[np.float64]:
    usable = len(samples) // _DECIMATE * _DECIMATE
    # The mean of each 6 samples, a crude low-pass that is enough; as a float32 product (exact for int16
    # sums) it costs a tenth of numpy's mean over an axis.
    sums = samples[:usable].astype(np.float32).reshape(-1, _DECIMATE) @ _ONES
    x = sums.astype(np.float64) / _DECIMATE
    out: npt.NDArray[np.float64] = x - x.mean()
    return out
