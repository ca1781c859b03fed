"""The call layer before and after it became a sans-I/O core (issue 11): the same calls, run on the code as it
was at 87eda46 (from git) and on this tree, on loopback. Prints medians and after/before ratios of

- call setup: `dialing` -> `secure` on both ends (INVITE, answer, ZRTP, keys installed);
- CPU per call: both processes' user+system time over the calls, per call;
- media latency: what the receiver holds in its jitter buffer (`jitter_buffer_ms` in the stats).

Nothing is asserted about the figures; the goal is every ratio at or below 1.0 (no worse than before).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.tui.helpers import free_port

BEFORE = "87eda46"
CALLS = 6
HOLD_S = 5.5  # past the first 5 s stats report, which both versions send
ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(900)


class Unit:
    """One `zcall --headless` from a given source tree, its events read as they come."""

    def __init__(self, tree: Path, home: Path, name: str, port: int, *extra: str) -> None:
        self.tree, self.home = tree, home
        argv = [sys.executable, "-m", "zcall", "--home", str(home), "--headless", "--name", name,
                "--bind", "127.0.0.1", "--no-mdns", "--sip-port", str(port), "--audio-in", "tone:440",
                "--audio-out", "null", *extra]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        self.proc = subprocess.Popen(argv, cwd=tree, env=env, text=True, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)  # fmt: skip
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with_time = json.loads(line)
            with_time["_t"] = time.monotonic()
            self.events.put(with_time)

    def wait(self, kind: str, **fields: Any) -> dict[str, Any]:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            event = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            if event["event"] == kind and all(event.get(k) == v for k, v in fields.items()):
                return event
        raise AssertionError(f"no {kind} {fields}")

    def ctl(self, *args: str) -> None:
        subprocess.run([sys.executable, "-m", "zcall", "--home", str(self.home), "ctl", *args], cwd=self.tree,
                       check=True, capture_output=True, timeout=30)  # fmt: skip

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@contextmanager
def source_tree(tmp: Path, commit: str | None) -> Iterator[Path]:
    if commit is None:
        yield ROOT
        return
    archive = tmp / f"{commit}.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), commit, "zcall"], check=True)
    tree = tmp / commit
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    yield tree
    shutil.rmtree(tree)


def measure(tree: Path, work: Path) -> dict[str, list[float]]:
    bob_port = free_port()
    alice = Unit(tree, work / "alice", "alice", free_port())
    bob = Unit(tree, work / "bob", "bob", bob_port, "--auto-answer")
    figures: dict[str, list[float]] = {"setup_ms": [], "cpu_ms_per_call": [], "jitter_buffer_ms": []}
    try:
        alice.wait("ready")
        bob.wait("ready")
        cpu_before = alice.cpu_s() + bob.cpu_s()
        for _ in range(CALLS):
            alice.ctl("call", f"sip:zcall@127.0.0.1:{bob_port}")
            dialing = alice.wait("call", state="dialing")
            secure = max(alice.wait("secure")["_t"], bob.wait("secure")["_t"])
            figures["setup_ms"].append((secure - dialing["_t"]) * 1000)
            figures["jitter_buffer_ms"].append(float(bob.wait("stats")["jitter_buffer_ms"]))
            time.sleep(max(0.0, HOLD_S - 5.0))
            alice.ctl("hangup")
            alice.wait("ended")
            bob.wait("ended")
        figures["cpu_ms_per_call"] = [(alice.cpu_s() + bob.cpu_s() - cpu_before) * 1000 / CALLS]
    finally:
        alice.stop()
        bob.stop()
    return figures


def test_call_layer_before_and_after(tmp_path: Path) -> None:
    results = {}
    for label, commit in (("before", BEFORE), ("after", None)):
        with source_tree(tmp_path, commit) as tree:
            results[label] = measure(tree, tmp_path / label)
    print(f"\ncall layer, {CALLS} calls on loopback: {BEFORE} (before) vs this tree (after)")
    for key in ("setup_ms", "cpu_ms_per_call", "jitter_buffer_ms"):
        before, after = (statistics.median(results[side][key]) for side in ("before", "after"))
        ratio = after / before if before else float("nan")
        print(f"  {key:18} before {before:8.1f}  after {after:8.1f}  ratio {ratio:5.2f}")
