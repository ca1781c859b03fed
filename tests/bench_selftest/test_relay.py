"""The impairment relay does what its settings say, measured on real UDP sockets (and once in namespaces)."""

from __future__ import annotations

import itertools
import json
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import netns
from tests.support.relay import (
    SO_TIMESTAMPNS,
    DirectionCore,
    EndpointError,
    Impairment,
    RelayFactory,
    UdpRelay,
    format_endpoint,
    kernel_stamp,
    main,
    parse_endpoint,
)

REPO = Path(__file__).resolve().parents[2]
_HEADER = struct.Struct("!Id")  # packet index, send time (monotonic: sender and receiver share the clock)
_PAYLOAD = 80


@dataclass
class Trace:
    sent: int
    arrivals: list[tuple[int, float]]  # (index, one-way delay in seconds) in arrival order
    relay: dict[str, Any]

    @property
    def indices(self) -> list[int]:
        return [index for index, _ in self.arrivals]

    def delivered(self) -> set[int]:
        return set(self.indices)


class _Receiver(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.sock = _socket()
        self.arrivals: list[tuple[int, float]] = []
        self.done = threading.Event()

    def run(self) -> None:
        self.sock.settimeout(0.02)
        # The kernel's receive time, so a busy machine delaying this thread does not show up as delay.
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        wall_offset = time.time() - time.monotonic()
        while True:
            try:
                data, ancillary, _, _ = self.sock.recvmsg(2048, socket.CMSG_SPACE(16))
            except TimeoutError:
                if self.done.is_set():  # stop only once the socket is empty
                    return
                continue
            stamped = kernel_stamp(ancillary)
            received = stamped - wall_offset if stamped is not None else time.monotonic()
            index, sent_at = _HEADER.unpack_from(data)
            self.arrivals.append((index, received - sent_at))

    def finish(self) -> list[tuple[int, float]]:
        self.done.set()
        self.join(timeout=5)
        self.sock.close()
        return self.arrivals


def _socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sock.bind(("127.0.0.1", 0))
    return sock


def _send(sock: socket.socket, target: tuple[str, int], count: int, spacing: float) -> None:
    """Send `count` numbered packets, `spacing` seconds apart on average (paced in small groups)."""
    start = time.monotonic()
    for index in range(count):
        sock.sendto(_HEADER.pack(index, time.monotonic()).ljust(_PAYLOAD, b"\0"), target)
        if index % 8 == 7:
            lag = start + (index + 1) * spacing - time.monotonic()
            if lag > 0:
                time.sleep(lag)


def run_through(impairment: Impairment, count: int, seed: int = 1, spacing: float = 0.0001) -> Trace:
    """A sends `count` packets through a relay to B; returns what B saw and the relay's own statistics."""
    sender = _socket()
    receiver = _Receiver()
    receiver.start()
    relay = UdpRelay(
        to_a=sender.getsockname(), to_b=receiver.sock.getsockname(), seed=seed, a_to_b=impairment
    )
    relay.start()
    try:
        _send(sender, relay.address_a, count, spacing)
    finally:
        stats = relay.stop(drain_timeout=5.0)
        arrivals = receiver.finish()
        sender.close()
    return Trace(count, arrivals, stats)


def _late(indices: list[int]) -> int:
    """Packets that arrive after one sent later than them."""
    highest, late = -1, 0
    for index in indices:
        if index < highest:
            late += 1
        highest = max(highest, index)
    return late


def _check_accounting(trace: Trace) -> None:
    """Nothing is lost between the sockets and the relay: its counts are what the ends saw."""
    a2b = trace.relay["a_to_b"]
    assert a2b["received"] == trace.sent
    assert a2b["forwarded"] + a2b["duplicated"] == len(trace.arrivals)
    assert a2b["forwarded"] + a2b["dropped"]["total"] + a2b["queued"] == trace.sent
    assert a2b["queued"] == 0


# --- on real sockets, loopback ---------------------------------------------------------------------------


def test_random_loss_matches_setting() -> None:
    trace = run_through(Impairment(loss=0.1), 5000)
    _check_accounting(trace)
    measured = 1 - len(trace.delivered()) / trace.sent
    assert 0.08 <= measured <= 0.12
    assert trace.relay["a_to_b"]["dropped"]["random"] == trace.sent - len(trace.delivered())
    assert trace.relay["b_to_a"]["received"] == 0


def test_burst_loss_follows_gilbert_elliott() -> None:
    imp = Impairment(burst_p=0.02, burst_r=0.25, burst_loss=1.0)
    trace = run_through(imp, 6000, seed=5)
    _check_accounting(trace)
    delivered = trace.delivered()
    runs: list[int] = []
    current = 0
    for index in range(trace.sent):
        if index in delivered:
            if current:
                runs.append(current)
            current = 0
        else:
            current += 1
    measured = 1 - len(delivered) / trace.sent
    assert abs(measured - imp.expected_loss()) <= 0.025  # expected 7.4 %
    assert 3.0 <= statistics.mean(runs) <= 5.0  # mean burst 1 / r = 4 packets
    assert trace.relay["a_to_b"]["dropped"]["burst"] == trace.sent - len(delivered)
    assert trace.relay["a_to_b"]["dropped"]["random"] == 0


def _predicted_delays(impairment: Impairment, seed: int, count: int) -> list[float]:
    """Each packet's added delay (s) as the relay must draw it: the same core on a fake clock."""
    core = DirectionCore(impairment, seed=seed, direction="a2b", epoch=0.0)
    for index in range(count):
        core.receive(index.to_bytes(4, "big"), float(index))
    sent = sorted(_drain_timed(core, 1e9), key=lambda item: item[1])
    return [at - int.from_bytes(data, "big") for at, data in sent]


def test_delay_and_jitter_match_settings() -> None:
    imp = Impairment(delay_ms=20, jitter_ms=12)
    trace = run_through(imp, 2000, seed=1, spacing=0.0002)
    _check_accounting(trace)
    a2b = trace.relay["a_to_b"]
    # The delay the relay adds is 20 + U(0, 12) ms: mean 26, stdev 12 / sqrt(12) = 3.46.
    assert a2b["delay_ms_mean"] == pytest.approx(26.0, abs=0.4)
    assert a2b["delay_ms_stdev"] == pytest.approx(3.46, abs=0.25)
    # Packet by packet, the receiver sees at least the delay drawn for it (never early). Beyond that only the
    # relay's lateness in sending (a busy machine; it reports it) and microseconds of loopback.
    predicted = _predicted_delays(imp, 1, trace.sent)
    excess_ms = [(delay - predicted[index]) * 1000 for index, delay in trace.arrivals]
    assert min(excess_ms) >= 0.0
    assert 0.0 <= statistics.mean(excess_ms) - a2b["late_ms_mean"] <= 2.0
    delays_ms = [delay * 1000 for _, delay in trace.arrivals]
    assert statistics.stdev(delays_ms) >= 2.9
    # Jitter larger than the packet spacing reorders, and the relay counts what the receiver sees.
    assert _late(trace.indices) > 0.2 * trace.sent
    assert a2b["reordered"] == _late(trace.indices)


def test_duplication_matches_setting() -> None:
    trace = run_through(Impairment(duplicate=0.05), 4000)
    _check_accounting(trace)
    copies = len(trace.arrivals) - len(trace.delivered())
    assert len(trace.delivered()) == trace.sent
    assert 0.04 <= copies / trace.sent <= 0.06
    assert trace.relay["a_to_b"]["duplicated"] == copies


def test_explicit_reorder_swaps_with_next_packet() -> None:
    trace = run_through(Impairment(reorder=0.05), 4000)
    _check_accounting(trace)
    late = _late(trace.indices)
    assert 0.04 <= late / trace.sent <= 0.06
    assert trace.relay["a_to_b"]["reordered"] == late
    # Two holds in a row release the first in order: a few holds (about reorder² of packets) reorder nothing.
    assert 0 <= trace.relay["a_to_b"]["held"] - late <= 0.01 * trace.sent
    # A held packet comes out right behind the one after it, so no packet is more than a step out of place.
    assert all(abs(pos - index) <= 1 for pos, index in enumerate(trace.indices))


def test_outage_drops_everything_in_the_window() -> None:
    sender = _socket()
    receiver = _Receiver()
    receiver.start()
    relay = UdpRelay(to_b=receiver.sock.getsockname(), a_to_b=Impairment(outages=((0.3, 0.6),)))
    relay.start()
    sent_at: list[float] = []
    try:
        for index in range(800):  # 0.8 s at one packet per millisecond
            sent_at.append(time.monotonic() - relay.started_at)
            sender.sendto(_HEADER.pack(index, time.monotonic()).ljust(_PAYLOAD, b"\0"), relay.address_a)
            time.sleep(max(0.0, relay.started_at + (index + 1) * 0.001 - time.monotonic()))
        time.sleep(0.1)
    finally:
        stats = relay.stop()
        arrivals = receiver.finish()
        sender.close()
    delivered = {index for index, _ in arrivals}
    # A packet reaches the relay a little after it is sent (more on a busy machine): keep clear of the edges.
    inside = [i for i, t in enumerate(sent_at) if 0.3 <= t <= 0.57]
    outside = [i for i, t in enumerate(sent_at) if t <= 0.27 or t >= 0.63]
    assert len(inside) > 150 and len(outside) > 300
    assert not delivered & set(inside)
    assert set(outside) <= delivered
    assert stats["a_to_b"]["dropped"]["outage"] == 800 - len(delivered)


def test_fixture_starts_and_stops_relays(udp_relay: RelayFactory) -> None:
    b = _socket()
    b.settimeout(2)
    relay = udp_relay(to_b=b.getsockname(), seed=2, a_to_b=Impairment(delay_ms=1))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a:
        a.sendto(b"via fixture", relay.address_a)
    assert b.recv(100) == b"via fixture"
    b.close()


def test_ipv6_loopback() -> None:
    a, b = (socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) for _ in range(2))
    with a, b:
        a.bind(("::1", 0))
        b.bind(("::1", 0))
        b.settimeout(2)
        relay = UdpRelay(("::1", 0), ("::1", 0), to_b=b.getsockname()[:2], a_to_b=Impairment(delay_ms=1))
        with relay:
            a.sendto(b"over v6", relay.address_a)
            data, source = b.recvfrom(100)
    assert data == b"over v6" and source[:2] == relay.address_b


def test_outage_from_first_packet_covers_both_directions() -> None:
    a, b = _socket(), _socket()
    b.settimeout(0.3)
    a.settimeout(0.3)
    imp = Impairment(outages=((0.0, 0.15),))
    relay = UdpRelay(to_a=a.getsockname(), to_b=b.getsockname(), a_to_b=imp, outage_epoch="first-packet")
    with relay:
        time.sleep(0.2)  # past the window if it counted from the start
        a.sendto(b"first", relay.address_a)
        time.sleep(0.02)
        b.sendto(b"reply in window", relay.address_b)
        time.sleep(0.2)
        a.sendto(b"after", relay.address_a)
        assert b.recv(100) == b"after"
        with pytest.raises(TimeoutError):
            a.recv(100)
        stats = relay.stop(drain_timeout=1)
    a.close()
    b.close()
    assert stats["a_to_b"]["dropped"]["outage"] == 1 and stats["b_to_a"]["dropped"]["outage"] == 1


def test_same_seed_same_pattern_other_seed_other_pattern() -> None:
    imp = Impairment(loss=0.2, burst_p=0.01, burst_r=0.3)
    first = run_through(imp, 1500, seed=7)
    again = run_through(imp, 1500, seed=7)
    other = run_through(imp, 1500, seed=8)
    assert first.delivered() == again.delivered()
    assert first.delivered() != other.delivered()


def test_learns_peers_and_relays_both_ways() -> None:
    """No destination given: the relay learns A and B from their packets; B echoes, A gets the echoes."""
    a, b = _socket(), _socket()
    a.settimeout(2)
    b.settimeout(2)
    with UdpRelay(seed=3, a_to_b=Impairment(delay_ms=5), b_to_a=Impairment()) as relay:
        b.sendto(b"hello from b", relay.address_b)  # B first, so the relay knows where B is
        time.sleep(0.05)
        for index in range(50):
            a.sendto(b"ping %d" % index, relay.address_a)
            data, source = b.recvfrom(100)
            assert data == b"ping %d" % index
            assert source == relay.address_b
            b.sendto(b"pong %d" % index, source)
            data, source = a.recvfrom(100)
            assert data == b"pong %d" % index
            assert source == relay.address_a
        stats = relay.stats()
    a.close()
    b.close()
    assert stats["a_to_b"]["forwarded"] == 50
    assert stats["b_to_a"]["received"] == 51
    assert stats["b_to_a"]["dropped"]["no_route"] == 1  # the first packet, before A was known
    assert stats["a_to_b"]["delay_ms_mean"] >= 5.0
    assert stats["b_to_a"]["delay_ms_mean"] < 5.0


# --- as a subprocess in network namespaces: A, relay host, B ------------------------------------------------

_RECEIVER = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
s.bind((sys.argv[1], int(sys.argv[2])))
print("bound", flush=True)
s.settimeout(1.5)
seen = []
try:
    while True:
        seen.append(int.from_bytes(s.recv(2048)[:4], "big"))
except TimeoutError:
    pass
print(" ".join(map(str, seen)), flush=True)
"""

_SENDER = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
target = (sys.argv[3], int(sys.argv[4]))
for i in range(int(sys.argv[5])):
    s.sendto(i.to_bytes(4, "big") + bytes(60), target)
    if i % 8 == 7:
        time.sleep(0.001)
"""


def test_subprocess_relay_between_namespaces(lan3: netns.Lan) -> None:
    a, r, b = lan3.hosts
    relay = r.popen(
        [sys.executable, "-m", "tests.support.relay",
         "--listen-a", f"{r.ip}:40000", "--listen-b", f"{r.ip}:40001",
         "--to-a", f"{a.ip}:5000", "--to-b", f"{b.ip}:5001",
         "--seed", "11", "--loss", "0.1", "--delay-ms", "2", "--direction", "a2b"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    receiver = b.popen([sys.executable, "-c", _RECEIVER, b.ip, "5001"], stdout=subprocess.PIPE, text=True)
    try:
        assert relay.stdout is not None and receiver.stdout is not None
        ready = json.loads(relay.stdout.readline())
        assert ready == {"event": "ready", "pid": ready["pid"], "listen_a": f"{r.ip}:40000",
                         "listen_b": f"{r.ip}:40001"}  # fmt: skip
        assert receiver.stdout.readline().strip() == "bound"
        sent = a.run([sys.executable, "-c", _SENDER, a.ip, "5000", r.ip, "40000", "3000"])
        assert sent.returncode == 0, sent.stderr
        seen = [int(x) for x in receiver.communicate(timeout=20)[0].split()]
        relay.send_signal(signal.SIGTERM)
        out, err = relay.communicate(timeout=10)
    finally:
        for proc in (relay, receiver):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert relay.returncode == 0, err
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["event"] == "stats" and stats["seed"] == 11
    a2b = stats["a_to_b"]
    assert a2b["received"] == 3000
    assert a2b["forwarded"] == len(seen) == len(set(seen))
    assert a2b["dropped"]["random"] == 3000 - len(seen)
    assert 0.08 <= 1 - len(seen) / 3000 <= 0.12
    assert a2b["delay_ms_mean"] >= 2.0


# --- the sans-I/O core on a fake clock, and the parsers ---------------------------------------------------


def _drain_timed(core: DirectionCore, until: float) -> list[tuple[float, bytes]]:
    """Run the core's timers up to `until`, as the relay thread would: (send time, datagram)."""
    out: list[tuple[float, bytes]] = []
    while (timer := core.get_timer()) is not None and timer <= until:
        core.handle_timer(timer)
        out += [(timer, data) for data in core.datagrams_to_send(timer)]
    return out


def _drain(core: DirectionCore, until: float) -> list[bytes]:
    return [data for _, data in _drain_timed(core, until)]


def test_held_packet_leaves_after_hold_time_when_nothing_follows() -> None:
    core = DirectionCore(Impairment(reorder=1.0, reorder_hold_ms=40), seed=1, direction="a2b", epoch=0.0)
    core.receive(b"only", 1.0)
    assert core.datagrams_to_send(1.02) == []
    assert core.get_timer() == pytest.approx(1.04)
    assert _drain(core, 2.0) == [b"only"]
    assert core.stats.delay.mean == pytest.approx(0.04)


def test_outages_can_count_from_the_first_packet() -> None:
    core = DirectionCore(Impairment(outages=((1.0, 2.0),)), seed=1, direction="a2b", epoch=None)
    for t in (100.0, 100.5, 101.0, 101.9, 102.0, 105.0):
        core.receive(b"%.1f" % t, t)
    assert _drain(core, 200.0) == [b"100.0", b"100.5", b"102.0", b"105.0"]
    assert core.stats.dropped["outage"] == 2


def test_command_line_runs_and_reports(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--listen-a", "127.0.0.1:0", "--listen-b", "127.0.0.1:0", "--seed", "4", "--loss", "0.5",
                 "--outage", "1:2", "--outage-epoch", "first-packet", "--duration", "0.1"])  # fmt: skip
    assert code == 0
    ready, stats = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert ready["event"] == "ready" and parse_endpoint(ready["listen_a"])[1] > 0
    assert stats["event"] == "stats" and stats["seed"] == 4
    assert stats["a_to_b"]["received"] == 0 and stats["b_to_a"]["queued"] == 0


@pytest.mark.parametrize(
    "argv",
    [["--listen-a", "127.0.0.1:0"], ["--listen-a", "x:1", "--listen-b", "127.0.0.1:0"],
     ["--listen-a", "127.0.0.1:0", "--listen-b", "127.0.0.1:0", "--outage", "2:1"],
     ["--listen-a", "127.0.0.1:0", "--listen-b", "127.0.0.1:0", "--outage-epoch", "later"]],
)  # fmt: skip
def test_command_line_rejects_bad_arguments(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2


def test_command_line_rejects_bad_probability(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--listen-a", "127.0.0.1:0", "--listen-b", "127.0.0.1:0", "--loss", "1.5"]) == 2
    assert "loss" in capsys.readouterr().err


def test_core_long_run_gilbert_elliott_loss_on_fake_clock() -> None:
    imp = Impairment(loss=0.01, burst_p=0.05, burst_r=0.2, burst_loss=0.8)
    core = DirectionCore(imp, seed=9, direction="a2b", epoch=0.0)
    for index in range(40_000):
        core.receive(b"x", index * 0.02)
    lost = core.stats.dropped["random"] + core.stats.dropped["burst"]
    assert abs(lost / 40_000 - imp.expected_loss()) < 0.01  # expected 16.8 %


@pytest.mark.parametrize(
    "kwargs",
    [{"loss": 1.5}, {"loss": -0.1}, {"burst_r": float("nan")}, {"delay_ms": -1}, {"jitter_ms": float("inf")},
     {"outages": ((2.0, 1.0),)}, {"outages": ((-1.0, 1.0),)}, {"max_queue": 0}],
)  # fmt: skip
def test_impairment_rejects_bad_settings(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Impairment(**kwargs)


_settings = st.builds(
    Impairment,
    loss=st.floats(0, 1),
    burst_p=st.floats(0, 1),
    burst_r=st.floats(0, 1),
    burst_loss=st.floats(0, 1),
    delay_ms=st.floats(0, 50),
    jitter_ms=st.floats(0, 50),
    reorder=st.floats(0, 1),
    reorder_hold_ms=st.floats(0, 100),
    duplicate=st.floats(0, 1),
    outages=st.lists(st.tuples(st.floats(0, 1), st.floats(0.001, 1)).map(lambda w: (w[0], w[0] + w[1])),
                     max_size=2).map(tuple),
    max_queue=st.integers(1, 50),
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(imp=_settings, seed=st.integers(0, 2**32), gaps=st.lists(st.floats(0, 0.05), max_size=200))
def test_core_conserves_packets_and_never_sends_early(imp: Impairment, seed: int, gaps: list[float]) -> None:
    core = DirectionCore(imp, seed=seed, direction="b2a", epoch=0.0)
    now = 0.0
    arrived: dict[bytes, float] = {}
    sent: list[tuple[float, bytes]] = []
    for number, gap in enumerate(gaps):
        sent += _drain_timed(core, now)
        data = number.to_bytes(2, "big")
        arrived[data] = now
        core.receive(data, now)
        now += gap
    sent += _drain_timed(core, now + 10.0)
    stats = core.stats
    assert core.queued == 0
    assert stats.received == len(gaps)
    assert stats.forwarded + sum(stats.dropped.values()) == stats.received
    assert stats.forwarded + stats.duplicated == len(sent)
    assert len({data for _, data in sent}) == stats.forwarded
    for at, data in sent:
        assert at >= arrived[data] + imp.delay_ms / 1000.0 - 1e-9
        # Only a hold can make a packet wait past its delay and jitter, and never past the hold limit.
        assert at <= arrived[data] + (imp.delay_ms + imp.jitter_ms + imp.reorder_hold_ms) / 1000.0 + 1e-9
    if imp.jitter_ms == 0 and imp.reorder == 0:
        assert stats.reordered == 0
        order = [data for _, data in sent]
        assert order == sorted(order)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32), times=st.lists(st.floats(0, 0.1), min_size=300, max_size=300))
def test_drop_pattern_depends_on_seed_and_index_not_timing(seed: int, times: list[float]) -> None:
    """Same seed, same packets, different arrival times: the same packets are lost."""
    imp = Impairment(loss=0.2, burst_p=0.05, burst_r=0.3, jitter_ms=20, reorder=0.1, duplicate=0.1)

    def delivered(arrivals: list[float]) -> set[bytes]:
        core = DirectionCore(imp, seed=seed, direction="a2b", epoch=0.0)
        out: list[bytes] = []
        for number, at in enumerate(arrivals):
            out += _drain(core, at)
            core.receive(number.to_bytes(2, "big"), at)
        return set(out + _drain(core, 1e9))

    steady = [0.02 * n for n in range(300)]
    bursty = list(itertools.accumulate(times))
    assert delivered(steady) == delivered(bursty)


@pytest.mark.parametrize(
    ("text", "expected"), [("127.0.0.1:5060", ("127.0.0.1", 5060)), ("[::1]:0", ("::1", 0))]
)
def test_parse_endpoint(text: str, expected: tuple[str, int]) -> None:
    assert parse_endpoint(text) == expected
    assert format_endpoint(expected) == text


@pytest.mark.parametrize(
    "text", ["", ":5", "1.2.3.4", "1.2.3.4:", "1.2.3.4:65536", "1.2.3:5", "host:5", "[::1:5", "::1:5",
             "1.2.3.4:+5", "1.2.3.4:٣", "[fe80::1%eth0]:5", "1.2.3.4:" + "0" * 70]
)  # fmt: skip
def test_parse_endpoint_rejects(text: str) -> None:
    with pytest.raises(EndpointError):
        parse_endpoint(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_parse_endpoint_fuzz(text: str) -> None:
    try:
        host, port = parse_endpoint(text)
    except EndpointError:
        return
    assert 0 <= port <= 65535
    assert parse_endpoint(format_endpoint((host, port))) == (host, port)
