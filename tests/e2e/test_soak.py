"""Sequential calls between two real `zcall --headless` units, sampling each one's open fds, RSS, asyncio task
count and the calls it still has in memory as JSON lines: after the warm-up all stay flat (RSS within 5 MB, or
5 KiB per call over a long run; fds and tasks within 2), and no ended call is left in memory. That last check
catches in a few calls what RSS shows only over hundreds: an ended call kept by a reference cycle holds
~35 KiB (codecs, SRTP contexts) until a full collection, which is how the 1000-call soak once grew 35 MB.

ZCALL_SOAK_CALLS sets the number of calls (4 here; `make soak` places 1000); ZCALL_SOAK_REPORT names a file
for the samples.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.zcall_peer import ZcallPeer

CALLS = int(os.environ.get("ZCALL_SOAK_CALLS", "4"))
REPORT = os.environ.get("ZCALL_SOAK_REPORT")
WARMUP = max(2, CALLS // 10)


def _sample(peer: ZcallPeer, call: int) -> dict[str, Any]:
    assert peer.proc is not None
    pid = peer.proc.pid
    rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("VmRSS:"))  # fmt: skip
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    status = peer.ctl("status")
    return {"peer": peer.name, "call": call, "t": round(time.monotonic(), 1), "fds": fds, "rss_kib": rss,
            "tasks": status["tasks"], "calls_kept": len(status["calls"]),
            "calls_alive": status["calls_alive"]}  # fmt: skip


@pytest.mark.timeout(120 + CALLS * 20)
def test_sequential_calls_leave_fds_memory_and_tasks_flat(tmp_path: Path) -> None:
    bob = ZcallPeer(None, tmp_path / "bob", name="bob", auto_answer=True, sip_port=0,
                    extra=["--bind", "127.0.0.1", "--no-mdns"])  # fmt: skip
    alice = ZcallPeer(None, tmp_path / "alice", name="alice", sip_port=0,
                      extra=["--bind", "127.0.0.1", "--no-mdns"])  # fmt: skip
    samples: list[dict[str, Any]] = []
    every = max(1, CALLS // 20)
    with bob, alice:
        uri = bob.wait_event("ready")["sip_uri"]
        alice.wait_event("ready")
        for n in range(1, CALLS + 1):
            alice.ctl("call", uri)
            alice.wait_event("secure")
            bob.wait_event("secure")
            alice.ctl("hangup")
            alice.wait_event("ended")
            bob.wait_event("ended")
            if n in (WARMUP, CALLS) or n % every == 0:
                time.sleep(1.0)  # let the ended calls' lingering transactions expire their timers
                for peer in (alice, bob):
                    samples.append(_sample(peer, n))
                    print(json.dumps(samples[-1]))
    if REPORT:
        Path(REPORT).write_text("".join(json.dumps(s) + "\n" for s in samples))
    for name in ("alice", "bob"):
        mine = [s for s in samples if s["peer"] == name and s["call"] >= WARMUP]
        base, last = mine[0], mine[-1]
        assert [s["calls_alive"] for s in mine] == [0] * len(mine), (name, mine)
        assert last["rss_kib"] - base["rss_kib"] <= 5 * 1024, (name, base, last)
        if last["call"] - base["call"] >= 100:  # long enough for a per-call figure to rise above the noise
            per_call = (last["rss_kib"] - base["rss_kib"]) / (last["call"] - base["call"])
            assert per_call <= 5 * 1024 / 1000, (name, per_call, base, last)
        assert abs(last["fds"] - base["fds"]) <= 2, (name, base, last)
        assert abs(last["tasks"] - base["tasks"]) <= 2, (name, base, last)
