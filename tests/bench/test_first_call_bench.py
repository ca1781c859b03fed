"""Why the first call of a phone's life is slow: zcall -> zcall through Kamailio (words on), the first call of
a series against the later ones, split into where the time goes, and the callee's memory before and after.

An idle phone loads no call machinery (call, keying, DTLS, media, numpy, libsrtp): each side imports it when
its first call starts, the caller before its INVITE and the callee before it can ring. Later calls find it
loaded. Warming it at start would trade that time for idle memory (the RSS figures). Asserts nothing.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytest

from tests.interop.test_server_words import unit
from tests.interop.test_zcall_server import USERS
from tests.support import netns
from tests.support.kamailio import sip_server
from tests.support.prereq import require_binary

RUNS = 5
IDLE_GOAL_MB = 45.0  # issue 17's idle RSS goal
pytestmark = [pytest.mark.interop, pytest.mark.netns, pytest.mark.timeout(300)]


def _rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]) / 1024


def test_first_call_against_later_ones(lan3: netns.Lan, tmp_path: Path) -> None:
    require_binary("kamailio", "openssl", "ss")
    rows: list[tuple[float, float, float, float]] = []
    with sip_server(lan3[0], USERS, tmp_path) as srv:
        alice = unit(lan3, srv, 1, "alice", tmp_path)
        bob = unit(lan3, srv, 2, "bob", tmp_path, auto_answer=True)
        with alice, bob:
            for peer in (alice, bob):
                peer.wait_event("registered", timeout=15)
            assert bob.proc is not None
            time.sleep(1.0)
            idle_mb = _rss_mb(bob.proc.pid)
            for _ in range(RUNS):
                marks = alice.mark(), bob.mark()
                start = time.monotonic()
                alice.ctl("call", f"sips:bob@{srv.dns_name}")  # a new `zcall ctl`: the same cost every call
                dialing = alice.wait_event("call", state="dialing", since=marks[0])["_t"]
                incoming = bob.wait_event("call", state="incoming", since=marks[1])["_t"]
                secure = max(alice.wait_event("secure", since=marks[0], timeout=30)["_t"],
                             bob.wait_event("secure", since=marks[1], timeout=30)["_t"])  # fmt: skip
                rows.append((dialing - start, incoming - dialing, secure - incoming, secure - dialing))
                alice.ctl("hangup")
                alice.wait_event("ended", timeout=10)
                bob.wait_event("ended", timeout=10)
            called_mb = _rss_mb(bob.proc.pid)
    names = ("ctl -> caller dialing", "dialing -> callee incoming", "incoming -> both secure",
             "dialing -> both secure (bench)")  # fmt: skip
    print(f"\nzcall -> zcall through Kamailio, words on: first call vs median of the {RUNS - 1} later (ms)")
    for n, name in enumerate(names):
        first, later = rows[0][n] * 1000, statistics.median(r[n] for r in rows[1:]) * 1000
        print(f"  {name:32s} first {first:6.0f}   later {later:6.0f}   +{first - later:5.0f}")
    print(
        f"  callee RSS: idle {idle_mb:.1f} MB (x{idle_mb / IDLE_GOAL_MB:.2f} of the 45 MB goal), after its"
        f" first call {called_mb:.1f} MB (x{called_mb / IDLE_GOAL_MB:.2f}): loading it at start costs that"
    )
