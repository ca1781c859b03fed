"""Two ZRTP sessions joined by an in-memory link with a fake clock: seeded loss, delay jitter (reordering),
and an optional mutator, so every run is deterministic. Each session's retained secrets are handed in when
it asks for them (PeerIdentified), as the call's shell does after reading its cache."""

from __future__ import annotations

import heapq
import random
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

from zcall.zrtp.events import Event, PeerIdentified
from zcall.zrtp.exchange import SecretsView
from zcall.zrtp.session import ZrtpSession

Mutator = Callable[[bytes, random.Random], bytes]


@dataclass(frozen=True)
class Secrets:
    rs1: bytes | None = None
    rs2: bytes | None = None
    verified: bool = False


# What each session's owner would read from its cache for whichever peer it meets.
SECRETS: weakref.WeakKeyDictionary[ZrtpSession, SecretsView | None] = weakref.WeakKeyDictionary()


def make(
    zid_byte: int, role: str | None = None, secrets: SecretsView | None = None, **kw: object
) -> ZrtpSession:
    session = ZrtpSession(
        bytes([zid_byte]) * 12,
        role,  # type: ignore[arg-type]
        ssrc=0x1000 + zid_byte,
        **kw,  # type: ignore[arg-type]
    )
    SECRETS[session] = secrets
    return session


def answer(session: ZrtpSession, event: Event, now: float) -> None:
    """The owner's side of PeerIdentified: look the peer up (outside the session) and hand the secrets in."""
    if isinstance(event, PeerIdentified) and event.needs_secrets:
        session.provide_secrets(event.peer_zid, SECRETS.get(session), now)


@dataclass
class Run:
    events: dict[str, list[Event]] = field(default_factory=lambda: {"a": [], "b": []})
    sent: dict[str, list[bytes]] = field(default_factory=lambda: {"a": [], "b": []})
    end: float = 0.0


def run_pair(
    a: ZrtpSession,
    b: ZrtpSession,
    *,
    loss: float = 0.0,
    jitter: float = 0.0,
    delay: float = 0.010,
    seed: int = 0,
    mutate: Mutator | None = None,
    mutate_rate: float = 0.0,
    until: float = 120.0,
    start_b_at: float = 0.0,
) -> Run:
    """Drive both sessions until neither has packets in flight nor timers pending (or `until`)."""
    rng = random.Random(seed)
    sessions = {"a": a, "b": b}
    peer = {"a": "b", "b": "a"}
    flight: list[tuple[float, int, str, bytes]] = []
    counter = 0
    run = Run()
    now = 0.0
    started = {"a": False, "b": False}

    def flush(name: str) -> None:
        nonlocal counter
        for data in sessions[name].datagrams_to_send(now):
            run.sent[name].append(data)
            if rng.random() < loss:
                continue
            if mutate is not None and rng.random() < mutate_rate:
                data = mutate(data, rng)
            arrival = now + delay + (rng.random() * jitter if jitter else 0.0)
            counter += 1
            heapq.heappush(flight, (arrival, counter, peer[name], data))

    def collect(name: str) -> None:
        while (event := sessions[name].next_event()) is not None:
            run.events[name].append(event)
            answer(sessions[name], event, now)
            flush(name)

    while now <= until:
        for name, at in (("a", 0.0), ("b", start_b_at)):
            if not started[name] and now >= at:
                sessions[name].start(now)
                started[name] = True
        for name in sessions:
            flush(name)
            collect(name)
        candidates = [t for t in (a.get_timer(), b.get_timer()) if t is not None]
        if flight:
            candidates.append(flight[0][0])
        if not started["b"]:
            candidates.append(start_b_at)
        if not candidates:
            break
        now = max(now, min(candidates))
        while flight and flight[0][0] <= now:
            _, _, dest, data = heapq.heappop(flight)
            sessions[dest].receive(data, now)
            flush(dest)
            collect(dest)
        for session in sessions.values():
            timer = session.get_timer()
            if timer is not None and timer <= now:
                session.handle_timer(now)
    for name in sessions:
        flush(name)
        collect(name)
    run.end = now
    return run
