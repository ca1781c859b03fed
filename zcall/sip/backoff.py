"""When to try to reach the SIP server again after a failed attempt, sans-I/O.

Each wait doubles from `first` up to a cap, drawn from 50-100 % of its step (RFC 5626 §4.5 randomizes so that
the units one server restart cut off do not all come back in the same instant). The cap depends on why the
attempt failed:
- the server could not be reached (refused, reset, no route, timeout, DNS): it is usually starting or the
  network is coming up, and an attempt costs a SYN or a query; a few seconds, so a server that comes back is
  registered with a few seconds later, however long it was away;
- the server answered but its certificate was refused: that will not change by itself; a minute.
"""

from __future__ import annotations

import random

FIRST_S = 1.0
UNREACHABLE_CAP_S = 5.0
REFUSED_CAP_S = 60.0


class Backoff:
    """Delays between attempts; reset() once an attempt succeeds."""

    def __init__(self, *, first: float = FIRST_S, rng: random.Random | None = None) -> None:
        if first <= 0:
            raise ValueError("the first delay must be positive")
        self.first = first
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self, cap: float) -> float:
        """How long to wait before the next attempt, after one more failure; never more than `cap`."""
        step = min(cap, self.first * 2.0 ** min(self.failures, 32))
        self.failures += 1
        return step * self._rng.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.failures = 0
