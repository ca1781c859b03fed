"""Footprint (issue 17): headless idle memory and one-shot command time, against the issue's anchors.

Prints figures and ratios; asserts nothing about them. Memory is VmRSS of an idle `zcall --headless` after
`ready` (and PSS, which shares out the libraries). One-shots are timed as a user runs them (a new Python
each time, byte-compiled as installed: tests/support/bytecode.py), as wall time and as CPU time (user+sys):
on a loaded machine the CPU figure is the steadier one.
`python -c pass` is the floor no Python command can go under; importing everything the CLI used to import
for every command (engine, doctor, peers, trust, control) is the "eager" reference, measured in the same run.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.bytecode import compiled
from tests.support.zcall_peer import ZcallPeer
from zcall.paths import Paths
from zcall.zrtp.cache import ZrtpCache

RUNS = 7
IDLE_S = 3.0
# Anchors from issue 17 (same machine): RSS in MB, one-shot wall time in s.
LINPHONEC_RSS_MB = 66.0
BARESIP_RSS_MB = 17.5
BEFORE_RSS_MB = 73.0  # 72-74 MB before the lazy imports
TARGET_RSS_MB = 45.0
BEFORE_ONE_SHOT_S = 0.55  # 0.45-0.65 s before
TARGET_ONE_SHOT_S = 0.2

pytestmark = [pytest.mark.timeout(300)]


def _memory_mb(pid: int) -> tuple[float, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])
    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    pss_kb = int(next(line for line in rollup.splitlines() if line.startswith("Pss:")).split()[1])
    return rss_kb / 1024, pss_kb / 1024


def _timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall s, user+sys CPU s) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, env=env
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert result.returncode == 0, result.stderr
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _median_times(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    _timed(argv, env)  # writes the .pyc files (not timed)
    runs = [_timed(argv, env) for _ in range(RUNS)]
    return statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)


def _idle_phone_memory(home: Path, pycache: Path, *extra: str) -> tuple[float, float]:
    argv = ["--bind", "127.0.0.1", *extra]
    with ZcallPeer(None, home, name="idle", sip_port=0, extra=argv, env=compiled(pycache)) as phone:
        phone.wait_event("ready")
        time.sleep(IDLE_S)
        assert phone.proc is not None
        return _memory_mb(phone.proc.pid)


def test_footprint(tmp_path: Path) -> None:
    lines = ["", "footprint (issue 17)"]
    pycache = tmp_path / "pycache"
    _idle_phone_memory(tmp_path / "compile", pycache)  # writes the .pyc files (not measured)
    for label, extra in (("headless idle, --no-mdns", ["--no-mdns"]), ("headless idle, mDNS on", [])):
        rss, pss = _idle_phone_memory(tmp_path / label.replace(" ", "_").replace(",", ""), pycache, *extra)
        lines.append(
            f"  {label:26s} RSS {rss:5.1f} MB (PSS {pss:5.1f})  x{rss / TARGET_RSS_MB:.2f} of the 45 MB goal,"
            f" x{rss / BEFORE_RSS_MB:.2f} of before (73), x{rss / LINPHONEC_RSS_MB:.2f} linphonec (66), "
            f"x{rss / BARESIP_RSS_MB:.2f} baresip (17.5)"
        )

    home = tmp_path / "oneshot"
    paths = Paths.resolve(home)
    paths.ensure_private_dirs()
    with ZrtpCache(paths.cache_file) as cache:
        for n in range(20):
            cache.touch(bytes([n]) * 12, 1_700_000_000.0 + n, name=f"desk {n}")
    zcall = [sys.executable, "-m", "zcall", "--home", str(home)]
    env = dict(os.environ, **compiled(pycache))
    floor_wall, floor_cpu = _median_times([sys.executable, "-c", "pass"], env)
    lines.append(f"  {'python -c pass (floor)':26s} wall {floor_wall:.3f} s  cpu {floor_cpu:.3f} s")
    eager = "import zcall.engine, zcall.doctor, zcall.peers, zcall.trust, zcall.control, zcall.headless"
    eager_wall, eager_cpu = _median_times([sys.executable, "-c", eager], env)
    lines.append(f"  {'eager imports (before)':26s} wall {eager_wall:.3f} s  cpu {eager_cpu:.3f} s")
    running = ZcallPeer(None, home, name="running", sip_port=0, extra=["--bind", "127.0.0.1", "--no-mdns"])
    with running as phone:
        phone.wait_event("ready")
        for args in (["trust", "list"], ["ctl", "status"], ["peers", "--json"]):
            wall, cpu = _median_times([*zcall, *args], env)
            lines.append(
                f"  {'zcall ' + ' '.join(args):26s} wall {wall:.3f} s  cpu {cpu:.3f} s  "
                f"x{wall / TARGET_ONE_SHOT_S:.2f} of the 0.2 s goal, "
                f"x{wall / BEFORE_ONE_SHOT_S:.2f} of before (0.45-0.65 s), "
                f"cpu x{cpu / max(floor_cpu, 1e-3):.1f} the floor, x{cpu / max(eager_cpu, 1e-3):.2f} eager"
            )
    lines.extend(_first_call_lines(tmp_path, pycache))
    lines.append("  load average: " + " ".join(f"{load:.1f}" for load in os.getloadavg()))
    print("\n".join(lines))


def _first_call_lines(tmp_path: Path, pycache: Path) -> list[str]:
    """What the light idle costs: an idle phone imports the call machinery at its first call (both sides),
    so the first call after a start takes longer than the next one. Command sent -> `secure` at the caller.
    Two rounds, the first untimed: its first call writes the call machinery's .pyc files."""
    for round_dir in (tmp_path / "compile_calls", tmp_path / "calls"):
        first, second = _two_calls(round_dir, compiled(pycache))
    return [
        f"  {'first call after start':26s} command -> secure {first:.3f} s (imports the call machinery on "
        f"both sides), next call {second:.3f} s: +{first - second:.3f} s once"
    ]


def _two_calls(home: Path, env: dict[str, str]) -> tuple[float, float]:
    loopback = ["--bind", "127.0.0.1", "--no-mdns"]
    bob = ZcallPeer(None, home / "bob", name="bob", sip_port=0, auto_answer=True, extra=loopback, env=env)
    alice = ZcallPeer(None, home / "alice", name="alice", sip_port=0, extra=loopback, env=env)
    times: list[float] = []
    with bob, alice:
        uri = bob.wait_event("ready")["sip_uri"]
        alice.wait_event("ready")
        for _ in range(2):
            sent = time.monotonic()
            call_id = alice.ctl("call", uri)["id"]
            times.append(alice.wait_event("secure", id=call_id)["_t"] - sent)
            alice.ctl("hangup", call_id)
            alice.wait_event("ended", id=call_id)
            bob.wait_event("ended")
    return times[0], times[1]
