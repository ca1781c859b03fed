"""The bench's own tools, so a slow result elsewhere is not blamed on them.

Relay: the core's CPU cost per packet (fake clock), the in-process relay's forwarding rate on loopback with
the loss it then suffers, and how late it sends at call rate. Anchor: a call is 50 packets/s each way, so
headroom = rate / 100. Audio: CPU seconds to score 1 s of speech with PESQ-WB and STOI (anchor: real time).
Prints figures; asserts only that the work was done.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from tests.support import audio_check
from tests.support.prereq import require_binary
from tests.support.relay import DirectionCore, Impairment, UdpRelay

CALL_PPS = 100  # both directions of one call
PAYLOAD = bytes(100)  # an SRTP packet carrying an 80-octet Opus frame


def test_relay_core_cpu_per_packet() -> None:
    core = DirectionCore(Impairment(loss=0.05, delay_ms=20, jitter_ms=10, reorder=0.01, duplicate=0.01),
                         seed=1, direction="a2b", epoch=0.0)  # fmt: skip
    count = 100_000
    start = time.process_time()
    for index in range(count):
        now = index * 0.0001
        core.receive(PAYLOAD, now)
        core.handle_timer(now)
        core.datagrams_to_send(now)
    core.datagrams_to_send(1e9)
    us = (time.process_time() - start) / count * 1e6
    print(f"\nrelay core: {us:.2f} µs CPU per packet (receive + schedule + send), {count} packets")
    assert core.stats.received == count


def _blast(count: int) -> tuple[float, dict[str, int], int]:
    """Flood the relay from one sender: returns (seconds, a_to_b stats, packets delivered)."""
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(0.3)
    got = 0

    def receive() -> None:
        nonlocal got
        try:
            while True:
                receiver.recv(2048)
                got += 1
        except TimeoutError:
            pass

    thread = threading.Thread(target=receive)
    relay = UdpRelay(to_b=receiver.getsockname())
    relay.start()
    thread.start()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        start = time.monotonic()
        for _ in range(count):
            sender.sendto(PAYLOAD, relay.address_a)
        stats = relay.stop(drain_timeout=5)
        elapsed = time.monotonic() - start
    thread.join()
    receiver.close()
    return elapsed, stats["a_to_b"], got


def test_relay_forwarding_rate() -> None:
    count = 50_000
    elapsed, a2b, got = _blast(count)
    rate = a2b["forwarded"] / elapsed
    kernel_loss = 1 - a2b["received"] / count
    print(f"\nrelay flood: {count} packets in {elapsed:.2f} s -> {rate:,.0f} packets/s forwarded "
          f"({rate / CALL_PPS:,.0f}x one call), {100 * kernel_loss:.2f} % lost before the relay read them, "
          f"{got} delivered")  # fmt: skip
    assert a2b["received"] > 0


def test_relay_lateness_at_call_rate() -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    relay = UdpRelay(to_b=receiver.getsockname(), a_to_b=Impairment(delay_ms=20, jitter_ms=10))
    relay.start()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for index in range(150):  # 3 s of one direction of a call
            sender.sendto(PAYLOAD, relay.address_a)
            time.sleep(max(0.0, relay.started_at + (index + 1) * 0.02 - time.monotonic()))
    a2b = relay.stop(drain_timeout=2)["a_to_b"]
    receiver.close()
    print(f"\nrelay at 50 packets/s, 20 ms + U(0,10) ms: drawn delay {a2b['delay_ms_mean']:.2f} ± "
          f"{a2b['delay_ms_stdev']:.2f} ms; sent late by {a2b['late_ms_mean']:.3f} ms on average, "
          f"{a2b['late_ms_max']:.3f} ms at worst")  # fmt: skip
    assert a2b["forwarded"] == 150


def test_speech_scoring_cost(tmp_path: Path) -> None:
    require_binary("espeak-ng", "sox")
    text = "Read the two words on your screen to the other side. If they match, press the green key."
    ref = audio_check.speech_wav(tmp_path / "ref.wav", text)
    samples, rate = audio_check.read_wav(ref)
    seconds = samples.size / rate
    audio_check.pesq_wb(ref, ref)  # imports and first-call setup out of the timing
    for name, score, top in (("PESQ-WB", audio_check.pesq_wb, 4.5), ("STOI", audio_check.stoi, 0.99)):
        start = time.process_time()
        value = score(ref, ref)
        cpu = time.process_time() - start
        print(f"\n{name}: {cpu:.3f} s CPU for {seconds:.1f} s of speech ({cpu / seconds:.3f}x real time), "
              f"score {value:.3f}")  # fmt: skip
        assert value >= top  # a file against itself
