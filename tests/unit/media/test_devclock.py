"""GapClock: the length of a device's xrun from its callbacks' timing, sans-I/O (times as PulseAudio's ALSA
plugin reports them: 0.5 ms of jitter, odd values right after an xrun, a clock that drifts)."""

from __future__ import annotations

import numpy as np

from zcall.media.devclock import SETTLE_CALLBACKS, GapClock

RATE = 48000
BLOCK = 960


def _run(clock: GapClock, callbacks: int, *, start: float = 1000.0, gap_at: int | None = None,
         gap_s: float = 0.0, odd: tuple[float, ...] = (), drift_ppm: float = 0.0, seed: int = 1) -> list[int]:
    """The samples each callback reports; the stream loses `gap_s` before callback `gap_at`, whose first
    callbacks then report `odd` extra offsets (the buffer refilling)."""
    rng = np.random.default_rng(seed)
    found, lost = [], 0.0
    for i in range(callbacks):
        position = i * BLOCK
        if gap_at is not None and i == gap_at:
            lost = gap_s
        extra = odd[i - gap_at] if gap_at is not None and 0 <= i - gap_at < len(odd) else 0.0
        device_time = start + position / RATE * (1 + drift_ppm * 1e-6) + lost + extra + rng.normal(0, 0.0005)
        found.append(clock.update(device_time, position))
    return found


def test_an_xrun_is_found_with_its_length() -> None:
    clock = GapClock(RATE)
    found = _run(clock, 200, gap_at=100, gap_s=0.3, odd=(-0.06, 0.04))
    assert sum(found) == clock.gap_samples and clock.gaps == 1
    assert abs(clock.gap_samples - 0.3 * RATE) <= 0.001 * RATE  # within a millisecond
    assert all(n == 0 for n in found[:100])  # not before it happened
    assert clock.gap_at == 100 * BLOCK  # where it happened, though found a few callbacks later


def test_jitter_and_drift_are_no_gap() -> None:
    clock = GapClock(RATE)
    _run(clock, 3000, drift_ppm=80)  # a minute at a sound card 80 ppm off the system clock
    assert clock.gaps == 0 and clock.rewinds == 0


def test_the_first_callbacks_and_missing_times_are_ignored() -> None:
    clock = GapClock(RATE)
    assert _run(clock, SETTLE_CALLBACKS, gap_at=5, gap_s=1.5) == [0] * SETTLE_CALLBACKS  # start-up burst
    assert clock.update(0.0, 10 * BLOCK * SETTLE_CALLBACKS) == 0  # a host API without timing
    assert clock.gaps == 0


def test_a_step_back_is_counted_not_reported() -> None:
    clock = GapClock(RATE)
    found = _run(clock, 100, gap_at=50, gap_s=-0.05)
    assert sum(found) == 0 and clock.rewinds == 1
