"""How long until a running unit sees a new one: peer's start of registration -> PeerUp, over 20 runs.

Anchors (DESIGN.md, this machine): a running browser sees a new peer ≈1.2 s after registration starts;
registering (probing + announcing) takes ≈1.7 s. Prints figures and ratios; asserts only that it worked.
"""

from __future__ import annotations

import statistics
import time

from tests.e2e.test_discovery_e2e import Agent
from tests.support import netns

RUNS = 20
ANCHOR_SEEN_S = 1.2
ANCHOR_REGISTER_S = 1.7


def _p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def test_time_to_peer_up(lan2: netns.Lan) -> None:
    host_a, host_b = lan2.hosts
    watcher = Agent(host_a, "Watcher", "aa" * 12, 5060)
    seen: list[float] = []
    registered: list[float] = []
    down: list[float] = []
    try:
        watcher.wait_for(15, event="registered")
        for run in range(RUNS):
            name = f"Bench {run}"
            peer = Agent(host_b, name, f"{run + 1:024x}", 5062)
            try:
                start = peer.wait_for(15, event="registering")["t"]
                up = watcher.wait_for(10, event="up", name=name)["t"]
                done = peer.wait_for(15, event="registered")["t"]
                stop_sent = time.time()
                peer.stop()
                gone = watcher.wait_for(10, event="down", name=name)["t"]
            finally:
                peer.kill()
            seen.append(up - start)
            registered.append(done - start)
            down.append(gone - stop_sent)
    finally:
        watcher.stop()
    med_seen, med_reg = statistics.median(seen), statistics.median(registered)
    print(f"\ndiscovery over {RUNS} runs (one veth pair, real mDNS):")
    print(f"  registration start -> PeerUp at watcher: median {med_seen:.3f} s, p90 {_p90(seen):.3f} s, "
          f"max {max(seen):.3f} s  (x{med_seen / ANCHOR_SEEN_S:.2f} of the {ANCHOR_SEEN_S} s anchor)")
    print(f"  registration start -> registered:        median {med_reg:.3f} s, p90 {_p90(registered):.3f} s  "
          f"(x{med_reg / ANCHOR_REGISTER_S:.2f} of the {ANCHOR_REGISTER_S} s anchor)")
    print(f"  SIGTERM to peer -> PeerDown at watcher:  median {statistics.median(down):.3f} s, "
          f"p90 {_p90(down):.3f} s")
    assert len(seen) == RUNS
