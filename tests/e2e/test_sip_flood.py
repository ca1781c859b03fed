"""20,000 junk SIP requests (fresh Call-IDs, invented header names, broken and unanswerable ones) from 100
source addresses at a real `zcall --headless`: it stays up, its RSS grows by at most 8 MB, and a normal call
right after is answered and goes secure. Spread over many sources, the flood gets past the per-source rate
limit and fills the transaction table with answered requests (which once had the call refused with 503)."""

from __future__ import annotations

import contextlib
import random
import socket
import time
from pathlib import Path

import pytest

from tests.support.zcall_peer import ZcallPeer

pytestmark = [pytest.mark.timeout(240)]

FLOOD = 20_000
SOURCES = 100  # 127.0.1.1-100: loopback answers for all of 127/8


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _junk(n: int, rng: random.Random, source: tuple[str, int], bob_port: int) -> bytes:
    host, port = source
    method = rng.choice(["OPTIONS", "INVITE", "REGISTER", "SUBSCRIBE", "FOO", "BYE", "INFO"])
    invented = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz-") for _ in range(rng.randint(3, 30)))
    lines = [
        f"{method} sip:bob@127.0.0.1:{bob_port} SIP/2.0",
        f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bKflood{n}x{rng.getrandbits(32):x}",
        "Max-Forwards: 70",
        f"From: <sip:m{n}@{host}>;tag=f{n}",
        "To: <sip:bob@127.0.0.1>",
        f"Call-ID: flood-{n}-{rng.getrandbits(64):x}@{host}",
        f"CSeq: {rng.randint(1, 2**31 - 1)} {method}",
        f"X-{invented}-{n}: {'v' * rng.randint(0, 200)}",
        f"{invented}{n}: {rng.getrandbits(128):x}",
    ]
    if n % 5 == 0:
        lines[6] = f"CSeq: {n}\u00b2 {method}"  # broken: answered 400 (while the source's budget lasts)
    if n % 7 == 0:
        lines.insert(1, f"X-{invented}: {n}")
    if n % 3 == 0:
        lines[1] = f"Via: {invented}/{n}/{rng.getrandbits(64):x}"  # no way to answer: dropped, and counted
    return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()


def test_a_flood_of_junk_leaves_the_phone_up_small_and_answering(tmp_path: Path) -> None:
    bob = ZcallPeer(None, tmp_path / "bob", name="bob", auto_answer=True, sip_port=0,
                    extra=["--bind", "127.0.0.1", "--no-mdns"])  # fmt: skip
    alice = ZcallPeer(None, tmp_path / "alice", name="alice", sip_port=0,
                      extra=["--bind", "127.0.0.1", "--no-mdns"])  # fmt: skip
    rng = random.Random(13)
    with bob, alice:
        ready = bob.wait_event("ready")
        bob_port = int(ready["sip_uri"].rsplit(":", 1)[1])  # an ephemeral port: runs may overlap
        alice.wait_event("ready")
        assert bob.proc is not None
        socks = []
        with contextlib.ExitStack() as stack:
            for s in range(SOURCES):  # the flood comes from elsewhere than the caller
                sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                sock.bind((f"127.0.1.{s + 1}", 0))
                socks.append((sock, sock.getsockname()))

            def send(n: int) -> None:
                sock, source = socks[n % SOURCES]
                sock.sendto(_junk(n, rng, source, bob_port), ("127.0.0.1", bob_port))

            for n in range(200):  # warm up: the first answers allocate what any traffic would
                send(n)
            time.sleep(1.0)
            before = _rss_kib(bob.proc.pid)
            start = time.monotonic()
            for n in range(200, 200 + FLOOD):
                send(n)
                if n % 200 == 0:
                    time.sleep(0.02)  # ~5,000 a second: what the socket buffer lets through
            sent_for = time.monotonic() - start
            time.sleep(2.0)
            after = _rss_kib(bob.proc.pid)
        assert bob.proc.poll() is None, "zcall died under the flood"
        grew = (after - before) / 1024
        print(f"\nflood: {FLOOD} requests from {SOURCES} sources in {sent_for:.1f} s; "
              f"RSS {before / 1024:.1f} -> {after / 1024:.1f} MiB (+{grew:.2f} MiB)")
        assert grew <= 8.0
        alice.ctl("call", ready["sip_uri"])
        secure_a, secure_b = alice.wait_event("secure"), bob.wait_event("secure")
        assert secure_a["sas"] == secure_b["sas"]
        alice.ctl("hangup")
        bob.wait_event("ended", timeout=5)
