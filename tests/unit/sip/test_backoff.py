"""When the server leg tries again: doubling waits, randomized, under a cap that depends on the failure."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zcall.sip.backoff import REFUSED_CAP_S, UNREACHABLE_CAP_S, Backoff


def test_waits_double_then_stay_under_a_few_seconds_while_the_server_is_unreachable() -> None:
    backoff = Backoff(rng=random.Random(4))
    delays = [backoff.next_delay(UNREACHABLE_CAP_S) for _ in range(40)]
    steps = [1.0, 2.0, 4.0] + [UNREACHABLE_CAP_S] * 37
    for delay, step in zip(delays, steps, strict=True):
        assert step * 0.5 <= delay <= step
    # A server that comes back at any moment is tried again within the cap: registered a few seconds later.
    assert max(delays) <= UNREACHABLE_CAP_S
    assert len({round(d, 6) for d in delays}) == len(delays)  # randomized: units do not return in step


def test_a_refused_certificate_backs_off_to_a_minute_and_success_starts_over() -> None:
    backoff = Backoff(rng=random.Random(5))
    delays = [backoff.next_delay(REFUSED_CAP_S) for _ in range(12)]
    assert delays[-1] >= REFUSED_CAP_S * 0.5 and max(delays) <= REFUSED_CAP_S
    backoff.reset()
    assert backoff.next_delay(REFUSED_CAP_S) <= 1.0


@given(st.integers(min_value=0, max_value=10_000), st.floats(min_value=0.1, max_value=3600.0))
def test_never_above_the_cap_never_zero(failures: int, cap: float) -> None:
    backoff = Backoff(rng=random.Random(failures))
    backoff.failures = failures
    delay = backoff.next_delay(cap)
    assert 0 < delay <= cap


def test_a_first_delay_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Backoff(first=0)
