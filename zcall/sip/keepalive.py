"""RFC 5626 §4.4.1 keep-alive for one connection-oriented flow, sans-I/O: when to send a CRLF ping, and when a
missing pong means the flow is dead (the NAT binding or the server is gone, though TCP has not noticed yet).

Driven like every zcall core: get_timer() / handle_timer(now) say what to do; alive(now) is called when a pong
(or any message: the flow evidently works) comes back.
"""

from __future__ import annotations

import enum
import random

PONG_TIMEOUT_S = 10.0  # RFC 5626 §4.4.1: no pong within 10 s of a ping: the flow has failed


class Due(enum.Enum):
    PING = "ping"
    DEAD = "dead"


class KeepAlive:
    """Pings every `interval` (each gap 80-100 % of it, RFC 5626 §4.4.1) and expects each pong in time."""

    def __init__(self, now: float, interval: float, *, pong_timeout: float = PONG_TIMEOUT_S,
                 rng: random.Random | None = None) -> None:  # fmt: skip
        if interval <= 0 or pong_timeout <= 0:
            raise ValueError("keep-alive interval and pong timeout must be positive")
        self.interval = interval
        self.pong_timeout = pong_timeout
        self._rng = rng or random.Random()
        self._next_ping: float | None = now + self._gap()
        self._pong_due: float | None = None
        self.pings = 0
        self.pongs = 0

    def _gap(self) -> float:
        return self.interval * self._rng.uniform(0.8, 1.0)

    @property
    def waiting(self) -> bool:
        """A ping is out and its pong has not come back yet."""
        return self._pong_due is not None

    def get_timer(self) -> float | None:
        return self._pong_due if self._pong_due is not None else self._next_ping

    def handle_timer(self, now: float) -> Due | None:
        if self._pong_due is not None:
            if now < self._pong_due:
                return None
            self._pong_due = self._next_ping = None  # dead: nothing more to do on this flow
            return Due.DEAD
        if self._next_ping is None or now < self._next_ping:
            return None
        self.pings += 1
        self._next_ping = None
        self._pong_due = now + self.pong_timeout
        return Due.PING

    def alive(self, now: float) -> None:
        """The flow answered: the next ping is one interval from now."""
        if self._pong_due is None and self._next_ping is None:
            return  # already declared dead
        if self._pong_due is not None:
            self.pongs += 1
        self._pong_due = None
        self._next_ping = now + self._gap()
