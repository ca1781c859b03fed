"""One asyncio driver for every sans-I/O core (SIP user agent, ZRTP, DTLS-SRTP, the call core).

After anything is fed into a core, `pump()` sends what it wants sent, hands its events on, and re-arms one
timer with `loop.call_at` at the core's `get_timer()` (aioquic's asyncio/protocol.py `_transmit()`). The
core's clock is the loop's clock, so a test loop with virtual time drives everything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Generic, Protocol, TypeVar

D = TypeVar("D")
E = TypeVar("E")
D_co = TypeVar("D_co", covariant=True)
E_co = TypeVar("E_co", covariant=True)


class Core(Protocol[D_co, E_co]):
    def datagrams_to_send(self, now: float) -> Iterable[D_co]: ...
    def next_event(self) -> E_co | None: ...
    def get_timer(self) -> float | None: ...
    def handle_timer(self, now: float) -> None: ...


class CoreDriver(Generic[D, E]):
    def __init__(
        self,
        core: Core[D, E],
        transmit: Callable[[D], None],
        on_event: Callable[[E], None],
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.core = core
        self._transmit = transmit
        self._on_event = on_event
        self._loop = loop or asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self.closed = False

    def now(self) -> float:
        return self._loop.time()

    def pump(self) -> None:
        """Send what the core wants sent, act on its events, re-arm its timer."""
        if self.closed:
            return
        core = self.core
        while not self.closed:
            for datagram in core.datagrams_to_send(self.now()):  # handling an event may have queued more
                self._transmit(datagram)
            event = core.next_event()
            if event is None:
                break
            self._on_event(event)
        timer_at = None if self.closed else core.get_timer()
        if self._timer is not None and self._timer_at != timer_at:
            self._timer.cancel()
            self._timer = None
        if self._timer is None and timer_at is not None:
            self._timer_at = timer_at
            self._timer = self._loop.call_at(timer_at, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if not self.closed:
            self.core.handle_timer(self.now())
            self.pump()

    def close(self) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        # A closed driver calls nothing. Dropping the callbacks (often the owner's bound methods) breaks the
        # owner -> driver -> owner cycle, so refcounting frees the owner (an ended call, its codecs and SRTP
        # contexts) at once instead of at some later full collection.
        self._transmit = _ignore
        self._on_event = _ignore


def _ignore(_: object) -> None:
    pass
