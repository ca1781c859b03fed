"""Seeded UDP impairment relay for the test bench (this kernel has no netem).

Symmetric design: A's peer sends to the relay's port PA; the relay forwards it from port PB to B's peer. B's
replies to PB go out from PA to A. A destination left unset is learned from the last sender on that side, so a
peer that answers from its media port works without knowing it in advance.

Each direction has its own sans-I/O core (`DirectionCore`: receive / datagrams_to_send / get_timer /
handle_timer, driven by a clock from outside) and its own RNG seeded from (seed, direction). Every packet
takes the same number of random draws whatever happens to it, so a direction's drop pattern depends only on
the seed and the packet's index in that direction, never on timing (outages aside: they are about time).

Impairments, in the order applied: outage windows (seconds since start) → Gilbert–Elliott loss (state "bad"
drops with `burst_loss`, state "good" with `loss`) → queue limit → delay + jitter (extra delay uniform in
[0, jitter_ms], so packets may reorder) → explicit reorder (hold a packet until just after the next one) →
duplication (the copy gets its own jitter draw).

Subprocess use (e.g. inside a network namespace), from the repository root:
    python -m tests.support.relay --listen-a IP:PORT --listen-b IP:PORT [--to-a IP:PORT] [--to-b IP:PORT]
        --seed N [--loss P] [--burst-p P --burst-r R --burst-loss L] [--delay-ms MS] [--jitter-ms MS]
        [--reorder P] [--duplicate P] [--outage T0:T1 ...] [--outage-epoch start|first-packet]
        [--direction both|a2b|b2a] [--duration S]
It prints {"event": "ready", ...} once its sockets are bound, and one {"event": "stats", ...} JSON line
when it ends (SIGTERM, SIGINT or --duration).

Statistics, per direction ("a_to_b", "b_to_a"): received, forwarded (originals), duplicated (extra copies),
dropped {random, burst, outage, overflow, no_route, total}, reordered (sent after a later arrival), held
(picked for explicit reordering), delay_ms_mean/stdev (the delay drawn, hold time included), late_ms_mean/max
(how far behind schedule the relay actually sent: a busy machine), queued (still waiting at the end).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import heapq
import ipaddress
import json
import math
import os
import random
import selectors
import signal
import socket
import struct
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

DROP_REASONS = ("random", "burst", "outage", "overflow", "no_route")
MAX_DATAGRAM = 65535
_DRAWS_PER_PACKET = 6
_RCVBUF = 4 * 1024 * 1024
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux value; the stdlib does not name it
_STAMP_SPACE = socket.CMSG_SPACE(16)

Endpoint = tuple[str, int]


class EndpointError(ValueError):
    """An IP:PORT argument that does not parse."""


def parse_endpoint(text: str) -> Endpoint:
    """Parse "IPv4:PORT" or "[IPv6]:PORT" (numeric addresses only, so no name lookups in a test)."""
    if len(text) > 64:
        raise EndpointError("endpoint too long")
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise EndpointError(f"expected IP:PORT, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if "%" in host:
            raise EndpointError("scoped IPv6 addresses are not supported")
        try:
            ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise EndpointError(f"bad IPv6 address in {text!r}") from exc
    else:
        try:
            ipaddress.IPv4Address(host)
        except ValueError as exc:
            raise EndpointError(f"bad IPv4 address in {text!r}") from exc
    if not (port_text.isascii() and port_text.isdigit()) or len(port_text) > 5:
        raise EndpointError(f"bad port in {text!r}")
    port = int(port_text)
    if port > 65535:
        raise EndpointError(f"port out of range in {text!r}")
    return host, port


def format_endpoint(endpoint: Endpoint) -> str:
    host, port = endpoint
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value}")


@dataclass(frozen=True)
class Impairment:
    """What one direction suffers. Times in milliseconds except outages (seconds since the relay started)."""

    loss: float = 0.0  # independent loss (in the Gilbert–Elliott "good" state)
    burst_p: float = 0.0  # P(good -> bad), drawn per packet
    burst_r: float = 1.0  # P(bad -> good); mean burst length is 1 / burst_r
    burst_loss: float = 1.0  # loss probability while "bad"
    delay_ms: float = 0.0
    jitter_ms: float = 0.0  # extra delay uniform in [0, jitter_ms]: stdev jitter_ms / sqrt(12)
    reorder: float = 0.0  # P(hold a packet back until just after the next one)
    reorder_hold_ms: float = 100.0  # a held packet goes anyway after this long
    duplicate: float = 0.0
    outages: tuple[tuple[float, float], ...] = ()
    max_queue: int = 100_000

    def __post_init__(self) -> None:
        for name in ("loss", "burst_p", "burst_r", "burst_loss", "reorder", "duplicate"):
            _check_probability(name, getattr(self, name))
        for name in ("delay_ms", "jitter_ms", "reorder_hold_ms"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 <= value <= 60_000.0):
                raise ValueError(f"{name} must be in [0, 60000] ms, got {value}")
        for t0, t1 in self.outages:
            if not (math.isfinite(t0) and math.isfinite(t1) and 0.0 <= t0 < t1):
                raise ValueError(f"outage window must satisfy 0 <= t0 < t1, got {t0}:{t1}")
        if self.max_queue < 1:
            raise ValueError("max_queue must be at least 1")

    def expected_loss(self) -> float:
        """Long-run loss fraction from the loss settings alone (no outages, no overflow)."""
        if self.burst_p == 0.0:
            return self.loss
        bad = self.burst_p / (self.burst_p + self.burst_r) if self.burst_r > 0 else 1.0
        return (1.0 - bad) * self.loss + bad * self.burst_loss


@dataclass
class _Welford:
    """Running mean and variance without keeping the samples."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, value: float) -> None:
        self.count += 1
        delta = value - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (value - self.mean)

    def stdev(self) -> float:
        return math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else 0.0


@dataclass
class DirectionStats:
    received: int = 0
    forwarded: int = 0  # originals sent on (duplicates not included)
    duplicated: int = 0  # extra copies sent
    reordered: int = 0  # originals sent after a packet that arrived later (jitter or explicit)
    held: int = 0  # packets picked for explicit reordering
    send_errors: int = 0
    bytes_received: int = 0
    bytes_forwarded: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))
    delay: _Welford = field(default_factory=_Welford)  # added delay as drawn (hold time included)
    late: _Welford = field(default_factory=_Welford)  # sent after its due time: how well the relay kept up
    late_max: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "forwarded": self.forwarded,
            "dropped": {**self.dropped, "total": sum(self.dropped.values())},
            "duplicated": self.duplicated,
            "reordered": self.reordered,
            "held": self.held,
            "send_errors": self.send_errors,
            "bytes_received": self.bytes_received,
            "bytes_forwarded": self.bytes_forwarded,
            "delay_ms_mean": round(self.delay.mean * 1000.0, 4),
            "delay_ms_stdev": round(self.delay.stdev() * 1000.0, 4),
            "late_ms_mean": round(self.late.mean * 1000.0, 4),
            "late_ms_max": round(self.late_max * 1000.0, 4),
        }


@dataclass
class _Packet:
    index: int
    data: bytes
    arrival: float
    release: float
    copy: bool = False


class DirectionCore:
    """One direction's impairments. No I/O, no clock: `now` is passed in (seconds, monotonic)."""

    def __init__(self, impairment: Impairment, seed: int, direction: str, epoch: float | None) -> None:
        """`epoch` is time zero for outage windows; None: this direction's first packet."""
        self.impairment = impairment
        self.stats = DirectionStats()
        # A string seed is hashed with SHA-512 by `random`: stable across runs and PYTHONHASHSEED.
        self._rng = random.Random(f"zcall-relay:{seed}:{direction}")
        self.epoch = epoch
        self._bad = False
        self._index = 0
        self._order = 0
        self._queue: list[tuple[float, int, _Packet]] = []
        self._held: _Packet | None = None
        self._held_deadline = 0.0
        self._highest_sent = -1

    @property
    def queued(self) -> int:
        return len(self._queue) + (1 if self._held is not None else 0)

    def reject(self, data: bytes, reason: str) -> None:
        """Count a packet the I/O side could not route (it still counts as received)."""
        self.stats.received += 1
        self.stats.bytes_received += len(data)
        self.stats.dropped[reason] += 1
        self._index += 1
        for _ in range(_DRAWS_PER_PACKET):  # keep later packets on the same draws as if this one was routed
            self._rng.random()

    def receive(self, data: bytes, now: float) -> None:
        imp = self.impairment
        stats = self.stats
        stats.received += 1
        stats.bytes_received += len(data)
        index = self._index
        self._index += 1
        u_state, u_loss, u_jitter, u_reorder, u_dup, u_dup_jitter = (
            self._rng.random() for _ in range(_DRAWS_PER_PACKET)
        )
        # The channel state moves on every packet, outage or not, to keep the pattern index-determined.
        if self._bad:
            self._bad = u_state >= imp.burst_r
        else:
            self._bad = u_state < imp.burst_p
        if self.epoch is None:
            self.epoch = now
        since_start = now - self.epoch
        if any(t0 <= since_start < t1 for t0, t1 in imp.outages):
            stats.dropped["outage"] += 1
            return
        if self._bad:
            if u_loss < imp.burst_loss:
                stats.dropped["burst"] += 1
                return
        elif u_loss < imp.loss:
            stats.dropped["random"] += 1
            return
        if self.queued >= imp.max_queue:
            stats.dropped["overflow"] += 1
            return
        packet = _Packet(index, data, now, now + (imp.delay_ms + u_jitter * imp.jitter_ms) / 1000.0)
        if u_reorder < imp.reorder:
            if self._held is not None:
                self._push(self._held, self._held.release)
            self._held = packet
            self._held_deadline = now + imp.reorder_hold_ms / 1000.0
            stats.held += 1
        else:
            self._push(packet, packet.release)
            if self._held is not None:
                # Pushed after `packet` with a later order number: it leaves right behind it.
                self._push(self._held, max(packet.release, self._held.release))
                self._held = None
        if u_dup < imp.duplicate:
            copy_release = now + (imp.delay_ms + u_dup_jitter * imp.jitter_ms) / 1000.0
            self._push(dataclasses.replace(packet, release=copy_release, copy=True), copy_release)

    def _push(self, packet: _Packet, release: float) -> None:
        self._order += 1
        heapq.heappush(self._queue, (release, self._order, packet))

    def get_timer(self) -> float | None:
        times = []
        if self._queue:
            times.append(self._queue[0][0])
        if self._held is not None:
            times.append(self._held_deadline)
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        if self._held is not None and now >= self._held_deadline:
            self._push(self._held, max(self._held_deadline, self._held.release))
            self._held = None

    def datagrams_to_send(self, now: float) -> list[bytes]:
        out: list[bytes] = []
        stats = self.stats
        while self._queue and self._queue[0][0] <= now:
            due, _, packet = heapq.heappop(self._queue)
            out.append(packet.data)
            stats.bytes_forwarded += len(packet.data)
            if packet.copy:
                stats.duplicated += 1
                continue
            stats.forwarded += 1
            stats.delay.add(due - packet.arrival)
            stats.late.add(now - due)
            stats.late_max = max(stats.late_max, now - due)
            if packet.index < self._highest_sent:
                stats.reordered += 1
            self._highest_sent = max(self._highest_sent, packet.index)
        return out


def _bind(endpoint: Endpoint) -> socket.socket:
    family = socket.AF_INET6 if ":" in endpoint[0] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    # A big receive buffer so the kernel does not drop what the relay is meant to measure.
    try:
        sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), _RCVBUF)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
    with contextlib.suppress(OSError):  # Linux: receive timestamps as ancillary data
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.bind(endpoint)
    sock.setblocking(False)
    return sock


def kernel_stamp(ancillary: list[tuple[int, int, bytes]]) -> float | None:
    """The kernel's receive time (wall clock, seconds) from SCM_TIMESTAMPNS, if present."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            if len(data) == 16:
                seconds, nanoseconds = struct.unpack("=qq", data)
            elif len(data) == 8:  # 32-bit time_t (older 32-bit Raspberry Pi OS)
                seconds, nanoseconds = struct.unpack("=ii", data)
            else:
                return None
            return float(seconds + nanoseconds * 1e-9)
    return None


class UdpRelay:
    """The relay on real sockets, served by its own thread: `start()`; `stop()` returns the statistics."""

    def __init__(
        self,
        listen_a: Endpoint = ("127.0.0.1", 0),
        listen_b: Endpoint = ("127.0.0.1", 0),
        to_a: Endpoint | None = None,
        to_b: Endpoint | None = None,
        seed: int = 0,
        a_to_b: Impairment | None = None,
        b_to_a: Impairment | None = None,
        clock: Callable[[], float] = time.monotonic,
        outage_epoch: str = "start",
    ) -> None:
        """`outage_epoch`: outage windows count from "start" (of the relay) or "first-packet" (either way)."""
        if outage_epoch not in ("start", "first-packet"):
            raise ValueError("outage_epoch is 'start' or 'first-packet'")
        self.seed = seed
        self._epoch_at_start = outage_epoch == "start"
        self._listen = (listen_a, listen_b)
        self._to: list[Endpoint | None] = [to_a, to_b]
        self._learn = [to_a is None, to_b is None]
        forward = a_to_b or Impairment()
        self._impairments = (forward, b_to_a if b_to_a is not None else forward)
        self._clock = clock
        self._kernel_stamps = clock is time.monotonic  # kernel times only make sense on the real clock
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._socks: list[socket.socket] = []
        self._addresses: list[Endpoint] = []
        self._cores: list[DirectionCore] = []
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self.started_at = 0.0

    @property
    def address_a(self) -> Endpoint:
        """Where A's peer sends (port PA)."""
        return self._bound(0)

    @property
    def address_b(self) -> Endpoint:
        """Where B's peer sends (port PB)."""
        return self._bound(1)

    def _bound(self, side: int) -> Endpoint:
        if not self._addresses:
            raise RuntimeError("relay not started")
        return self._addresses[side]

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("relay already started")
        self._socks = [_bind(self._listen[0]), _bind(self._listen[1])]
        # Kept after stop(), for reports that name the ports.
        self._addresses = [(str(n[0]), int(n[1])) for n in (sock.getsockname() for sock in self._socks)]
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self.started_at = self._clock()
        epoch = self.started_at if self._epoch_at_start else None
        self._cores = [
            DirectionCore(self._impairments[0], self.seed, "a2b", epoch),
            DirectionCore(self._impairments[1], self.seed, "b2a", epoch),
        ]
        self._thread = threading.Thread(target=self._run, name="udp-relay", daemon=True)
        self._thread.start()

    def stop(self, drain_timeout: float = 0.0) -> dict[str, Any]:
        """Stop serving and close the sockets, first waiting up to `drain_timeout` s for the queues to empty.

        Whatever is still queued then stays counted as "queued".
        """
        deadline = time.monotonic() + drain_timeout
        quiet = 0
        while self._thread is not None and quiet < 2 and time.monotonic() < deadline:
            # Idle twice in a row, 10 ms apart: nothing queued, nothing waiting in the sockets.
            before = self._received()
            time.sleep(0.01)
            idle = not self.queued() and not self._unread() and self._received() == before
            quiet = quiet + 1 if idle else 0
        if self._thread is not None:
            self._stopping.set()
            assert self._wake_w is not None
            self._wake_w.send(b"x")
            self._thread.join(timeout=5)
            self._thread = None
            for sock in (*self._socks, self._wake_r, self._wake_w):
                if sock is not None:
                    sock.close()
        return self.stats()

    def _received(self) -> int:
        with self._lock:
            return sum(core.stats.received for core in self._cores)

    def _unread(self) -> int:
        """Bytes of the next datagram waiting in either socket (FIONREAD)."""
        waiting = 0
        for sock in self._socks:
            raw = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
            waiting += struct.unpack("i", raw)[0]
        return waiting

    def queued(self) -> int:
        with self._lock:
            return sum(core.queued for core in self._cores)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            queued = [core.queued for core in self._cores]
            directions = [core.stats.as_dict() for core in self._cores]
        result: dict[str, Any] = {"seed": self.seed}
        for name, stats, waiting in zip(("a_to_b", "b_to_a"), directions, queued, strict=False):
            result[name] = {**stats, "queued": waiting}
        return result

    def __enter__(self) -> UdpRelay:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        assert self._wake_r is not None
        for side, sock in enumerate(self._socks):
            selector.register(sock, selectors.EVENT_READ, side)
        selector.register(self._wake_r, selectors.EVENT_READ, -1)
        try:
            while not self._stopping.is_set():
                with self._lock:
                    timers = [t for t in (core.get_timer() for core in self._cores) if t is not None]
                timeout = max(0.0, min(timers) - self._clock()) if timers else 1.0
                for key, _ in selector.select(min(timeout, 1.0)):
                    if key.data >= 0:
                        self._drain(key.data)
                self._send_due()
        finally:
            selector.close()

    def _drain(self, side: int) -> None:
        sock = self._socks[side]
        core = self._cores[side]  # side A's socket feeds a2b, side B's feeds b2a
        wall_offset = time.time() - time.monotonic()
        for _ in range(512):  # bounded, so a flood cannot starve the sending half
            try:
                data, ancillary, _flags, source = sock.recvmsg(MAX_DATAGRAM, _STAMP_SPACE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # ICMP errors from an earlier send surface here; they are not packets
            now = self._clock()
            if self._kernel_stamps:
                # Count delay from when the kernel took the packet in, not from when this thread got to it:
                # a busy machine then delays the relay's reads without stretching the delay it adds.
                stamped = kernel_stamp(ancillary)
                if stamped is not None and now - 1.0 < stamped - wall_offset <= now:
                    now = stamped - wall_offset
            if self._learn[side]:
                self._to[side] = (str(source[0]), int(source[1]))
            with self._lock:
                if self._cores[0].epoch is None:  # "first-packet": both directions count from this one
                    for each in self._cores:
                        each.epoch = now
                if self._to[1 - side] is None:
                    core.reject(data, "no_route")
                else:
                    core.receive(data, now)

    def _send_due(self) -> None:
        now = self._clock()
        for side, core in enumerate(self._cores):
            with self._lock:
                core.handle_timer(now)
                out = core.datagrams_to_send(now)
            target = self._to[1 - side]
            sock = self._socks[1 - side]
            for data in out:
                try:
                    sock.sendto(data, target)  # type: ignore[arg-type]  # routed packets have a target
                except OSError:
                    with self._lock:
                        core.stats.send_errors += 1


RelayFactory = Callable[..., UdpRelay]


@contextlib.contextmanager
def relay_factory() -> Iterator[RelayFactory]:
    """Yield a function that starts a UdpRelay (same arguments); every relay it started is stopped on exit."""
    started: list[UdpRelay] = []

    def start(**kwargs: Any) -> UdpRelay:
        relay = UdpRelay(**kwargs)
        relay.start()
        started.append(relay)
        return relay

    try:
        yield start
    finally:
        for relay in started:
            relay.stop()


def _outage(text: str) -> tuple[float, float]:
    t0, sep, t1 = text.partition(":")
    try:
        window = (float(t0), float(t1))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"outage must be T0:T1 in seconds, got {text!r}") from exc
    if not sep or not (0 <= window[0] < window[1]) or not all(map(math.isfinite, window)):
        raise argparse.ArgumentTypeError(f"outage must be T0:T1 with 0 <= T0 < T1, got {text!r}")
    return window


def _endpoint_arg(text: str) -> Endpoint:
    try:
        return parse_endpoint(text)
    except EndpointError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tests.support.relay", description=__doc__.split("\n")[0])
    p.add_argument("--listen-a", type=_endpoint_arg, required=True, help="port PA: A's peer sends here")
    p.add_argument("--listen-b", type=_endpoint_arg, required=True, help="port PB: B's peer sends here")
    p.add_argument("--to-a", type=_endpoint_arg, help="A's peer (default: learned from its packets)")
    p.add_argument("--to-b", type=_endpoint_arg, help="B's peer (default: learned from its packets)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--loss", type=float, default=0.0, help="independent loss (in the good state if bursty)")
    p.add_argument("--burst-p", type=float, default=0.0, help="Gilbert–Elliott P(good->bad)")
    p.add_argument("--burst-r", type=float, default=1.0, help="Gilbert–Elliott P(bad->good)")
    p.add_argument("--burst-loss", type=float, default=1.0, help="loss probability in the bad state")
    p.add_argument("--delay-ms", type=float, default=0.0)
    p.add_argument("--jitter-ms", type=float, default=0.0, help="extra delay uniform in [0, J]")
    p.add_argument("--reorder", type=float, default=0.0, help="P(hold a packet until after the next)")
    p.add_argument("--reorder-hold-ms", type=float, default=100.0)
    p.add_argument("--duplicate", type=float, default=0.0, help="P(send a second copy)")
    p.add_argument("--outage", type=_outage, action="append", default=[], help="T0:T1 seconds from epoch")
    p.add_argument("--outage-epoch", choices=("start", "first-packet"), default="start",
                   help="time zero for outages: relay start, or the first packet either way")  # fmt: skip
    p.add_argument("--direction", choices=("both", "a2b", "b2a"), default="both", help="which way to impair")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        impairment = Impairment(
            loss=args.loss,
            burst_p=args.burst_p,
            burst_r=args.burst_r,
            burst_loss=args.burst_loss,
            delay_ms=args.delay_ms,
            jitter_ms=args.jitter_ms,
            reorder=args.reorder,
            reorder_hold_ms=args.reorder_hold_ms,
            duplicate=args.duplicate,
            outages=tuple(args.outage),
        )
    except ValueError as exc:
        print(f"relay: {exc}", file=sys.stderr)
        return 2
    clean = Impairment()
    relay = UdpRelay(
        args.listen_a,
        args.listen_b,
        args.to_a,
        args.to_b,
        seed=args.seed,
        a_to_b=impairment if args.direction in ("both", "a2b") else clean,
        b_to_a=impairment if args.direction in ("both", "b2a") else clean,
        outage_epoch=args.outage_epoch,
    )
    done = threading.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {signum: signal.signal(signum, lambda *_: done.set()) for signum in signals}
    try:
        relay.start()
        ready = {
            "event": "ready",
            "pid": os.getpid(),
            "listen_a": format_endpoint(relay.address_a),
            "listen_b": format_endpoint(relay.address_b),
        }
        print(json.dumps(ready), flush=True)
        done.wait(args.duration)
        print(json.dumps({"event": "stats", **relay.stop()}), flush=True)
    finally:
        for signum, handler in previous.items():  # main() may run inside another program (a test)
            signal.signal(signum, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
