"""TUI footprint (issue 17): time to the first screen and idle memory, against the issue's anchors.

`zcall` (the TUI) runs in a pseudo-terminal as a user starts it; the first screen is there when Home's text
comes out of the terminal. Its time is taken as wall time and as the process's CPU time (user+sys, read from
/proc at that moment): on a loaded machine the CPU figure is the steadier one. Memory is VmRSS (and PSS) once
it has been idle a few seconds with its phone running. The floor is a bare Textual app that shows one line:
no Textual program starts faster. Prints figures and ratios; asserts only that the screen came up.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

RUNS = 5
IDLE_S = 3.0
# Anchors from issue 17 (same machine, before this work): first screen 0.85 s, idle RSS 86 MB.
BEFORE_FIRST_SCREEN_S = 0.85
TARGET_FIRST_SCREEN_S = 0.5
BEFORE_RSS_MB = 86.0
TARGET_RSS_MB = 70.0
REPO = Path(__file__).resolve().parents[2]
ESCAPES = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]")
FLOOR_APP = (
    "from textual.app import App\n"
    "from textual.widgets import Static\n"
    "class Floor(App[None]):\n"
    "    def compose(self):\n"
    "        yield Static('Peers on the LAN')\n"
    "Floor().run()\n"
)

pytestmark = [pytest.mark.timeout(300)]


@dataclass(frozen=True)
class Run:
    wall_s: float  # spawn -> the marker text on the terminal
    cpu_s: float  # the process's user+sys CPU at that moment
    rss_mb: float  # after IDLE_S more seconds
    pss_mb: float


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _memory_mb(pid: int) -> tuple[float, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])
    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    pss_kb = int(next(line for line in rollup.splitlines() if line.startswith("Pss:")).split()[1])
    return rss_kb / 1024, pss_kb / 1024


def _run_in_pty(argv: list[str], marker: bytes, timeout: float = 60.0) -> Run:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(TERM="xterm-256color", PYTHONPATH=str(REPO))
    start = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:  # the child: become the program
        os.chdir(REPO)
        os.execve(argv[0], argv, env)
    seen = b""
    try:
        while marker not in ESCAPES.sub(b"", seen):
            if time.perf_counter() - start > timeout:
                raise AssertionError(f"{argv[-1]!r} never showed {marker!r}")
            ready, _, _ = select.select([fd], [], [], 0.02)
            if ready:
                seen += os.read(fd, 65536)
        wall, cpu = time.perf_counter() - start, _cpu_s(pid)
        idle_until = time.monotonic() + IDLE_S
        while time.monotonic() < idle_until:  # keep the terminal drained while it idles
            if select.select([fd], [], [], 0.1)[0]:
                os.read(fd, 65536)
        rss, pss = _memory_mb(pid)
        return Run(wall, cpu, rss, pss)
    finally:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
        os.close(fd)


def _median(runs: list[Run]) -> Run:
    fields = ("wall_s", "cpu_s", "rss_mb", "pss_mb")
    return Run(*(statistics.median(getattr(run, name) for run in runs) for name in fields))


def test_tui_first_screen_and_idle_memory(tmp_path: Path) -> None:
    floor_argv = [sys.executable, "-c", FLOOR_APP]
    floor_runs, runs = [], []
    for n in range(RUNS):  # interleaved, so a load that comes and goes weighs on both alike
        floor_runs.append(_run_in_pty(floor_argv, b"Peers on the LAN"))
        argv = [
            sys.executable, "-m", "zcall", "--home", str(tmp_path / f"home{n}"), "--name", "bench",
            "--bind", "127.0.0.1", "--sip-port", "0", "--no-mdns", "--audio-in", "silence",
            "--audio-out", "null",
        ]
        runs.append(_run_in_pty(argv, b"Peers on the LAN"))
    floor, tui = _median(floor_runs), _median(runs)
    own_wall = statistics.median(run.wall_s - base.wall_s for run, base in zip(runs, floor_runs, strict=True))
    print(
        "\nTUI footprint (issue 17), median of", RUNS, "starts in a pseudo-terminal:\n"
        f"  bare Textual app (floor)   first screen wall {floor.wall_s:.3f} s  cpu {floor.cpu_s:.3f} s  "
        f"idle RSS {floor.rss_mb:.1f} MB\n"
        f"  zcall TUI                  first screen wall {tui.wall_s:.3f} s  cpu {tui.cpu_s:.3f} s  "
        f"x{tui.wall_s / TARGET_FIRST_SCREEN_S:.2f} of the 0.5 s goal, "
        f"x{tui.wall_s / BEFORE_FIRST_SCREEN_S:.2f} of before (0.85 s), "
        f"x{tui.cpu_s / max(floor.cpu_s, 1e-3):.2f} the floor's cpu\n"
        f"  zcall's own share          wall +{own_wall:.3f} s over the floor run next to it, "
        f"cpu +{tui.cpu_s - floor.cpu_s:.3f} s\n"
        f"  zcall TUI idle             RSS {tui.rss_mb:.1f} MB (PSS {tui.pss_mb:.1f})  "
        f"x{tui.rss_mb / TARGET_RSS_MB:.2f} of the 70 MB goal, x{tui.rss_mb / BEFORE_RSS_MB:.2f} of before "
        f"(86 MB), floor + {tui.rss_mb - floor.rss_mb:.1f} MB\n"
        "  load average: " + " ".join(f"{load:.1f}" for load in os.getloadavg())
    )
    assert all(run.wall_s > 0 for run in runs)
