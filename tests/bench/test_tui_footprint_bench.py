"""TUI footprint (issue 17): time to the first screen and idle memory, against the issue's anchors.

`zcall` (the TUI) runs in a pseudo-terminal as a user starts it, on a home that has run before (its
identity exists, as on every start but the first). The first screen is there when Home's frame comes out of
the terminal with this unit's data on it: its name and ZID in the title, the peer list and the recent calls.
`ready` is when the title drops "starting…": the engine is loaded and started and the phone takes calls.
Times are wall (spawn -> text on the terminal) and the process's CPU (user+sys, read from /proc at that
moment): on a loaded machine the CPU figure is the steadier one. Memory is VmRSS (and PSS) once it has been
idle a few seconds with its phone running. The floor is a bare Textual app that shows one line: no Textual
program starts faster. Prints figures, ratios and the load average; asserts only that the screens came up.
"""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import signal
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.bytecode import compiled
from zcall import zidfile
from zcall.paths import Paths

RUNS = 9
IDLE_S = 3.0
# Anchors from issue 17 (same machine, before this work): first screen 0.85 s, idle RSS 86 MB.
BEFORE_FIRST_SCREEN_S = 0.85
TARGET_FIRST_SCREEN_S = 0.5
BEFORE_RSS_MB = 86.0
TARGET_RSS_MB = 70.0
NAME = "bench"
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

pytestmark = [pytest.mark.timeout(600)]


@dataclass(frozen=True)
class Run:
    wall_s: float  # spawn -> the first screen on the terminal
    cpu_s: float  # the process's user+sys CPU at that moment
    ready_s: float  # spawn -> the phone is up (the last marker); the first screen's time if there is none
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


def _run_in_pty(
    argv: list[str], pycache: Path, first: tuple[bytes, ...], ready: bytes = b"", timeout: float = 60.0
) -> Run:
    """Time the first frame showing every text in `first`, then `ready` if given, then idle and measure.
    Byte-compiled into `pycache` (tests/support/bytecode.py)."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(compiled(pycache), TERM="xterm-256color", PYTHONPATH=str(REPO))
    start = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:  # the child: become the program
        os.chdir(REPO)
        os.execve(argv[0], argv, env)
    seen, wall, cpu, ready_s = b"", 0.0, 0.0, 0.0
    try:
        while not ready_s:
            if time.perf_counter() - start > timeout:
                raise AssertionError(f"{argv[-1]!r} never showed {first!r} then {ready!r}: {seen[-2000:]!r}")
            if not select.select([fd], [], [], 0.005)[0]:
                continue
            seen += os.read(fd, 65536)
            now, text = time.perf_counter() - start, ESCAPES.sub(b"", seen)
            if not wall and all(marker in text for marker in first):
                wall, cpu = now, _cpu_s(pid)
            if wall and (not ready or ready in text):  # `ready`'s text is not on the screen before it
                ready_s = now if ready else wall
        idle_until = time.monotonic() + IDLE_S
        while time.monotonic() < idle_until:  # keep the terminal drained while it idles
            if select.select([fd], [], [], 0.1)[0]:
                os.read(fd, 65536)
        rss, pss = _memory_mb(pid)
        return Run(wall, cpu, ready_s, rss, pss)
    finally:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
        os.close(fd)


def _median(runs: list[Run]) -> Run:
    fields = ("wall_s", "cpu_s", "ready_s", "rss_mb", "pss_mb")
    return Run(*(statistics.median(getattr(run, name) for run in runs) for name in fields))


def _load() -> str:
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


def test_tui_first_screen_and_idle_memory(tmp_path: Path) -> None:
    home = tmp_path / "home"
    argv = [
        sys.executable, "-m", "zcall", "--home", str(home), "--name", NAME, "--bind", "127.0.0.1",
        "--sip-port", "0", "--no-mdns", "--audio-in", "silence", "--audio-out", "null",
    ]  # fmt: skip
    pycache = tmp_path / "pycache"
    floor_argv = [sys.executable, "-c", FLOOR_APP]
    _run_in_pty(floor_argv, pycache, (b"Peers on the LAN",))  # writes the .pyc files (not timed)
    _run_in_pty(argv, pycache, (b"Peers on the LAN",), ready=b"ZID ")
    shutil.rmtree(home)
    # The home's first start creates its identity (a key pair): timed once, to ready, then the ZID is known.
    ready_any = f"{NAME} \xb7 ZID ".encode()
    new_home = _run_in_pty(argv, pycache, (b"Peers on the LAN", b"Recent calls"), ready=ready_any)
    zid = zidfile.read(Paths.for_home(home).identity_dir)
    assert zid is not None
    # The real Home, with this unit's data: "zcall · bench · starting… · ZID 0123abcd…" then without
    # "starting…" once the phone is up.
    first = (f"{NAME} \xb7 ".encode(), f"ZID {zid.hex()[:8]}".encode(), b"Peers on the LAN", b"Recent calls")
    ready = f"{NAME} \xb7 ZID {zid.hex()[:8]}".encode()
    load_before = _load()
    floor_runs, runs = [], []
    for _ in range(RUNS):  # interleaved, so a load that comes and goes weighs on both alike
        floor_runs.append(_run_in_pty(floor_argv, pycache, (b"Peers on the LAN",)))
        runs.append(_run_in_pty(argv, pycache, first, ready))
    floor, tui = _median(floor_runs), _median(runs)
    own_wall = statistics.median(run.wall_s - base.wall_s for run, base in zip(runs, floor_runs, strict=True))
    print(
        f"\nTUI footprint (issue 17), median of {RUNS} starts in an 80x24 pseudo-terminal, byte-compiled, "
        "on a home that ran before:\n"
        f"  bare Textual app (floor)   first screen wall {floor.wall_s:.3f} s  cpu {floor.cpu_s:.3f} s  "
        f"idle RSS {floor.rss_mb:.1f} MB\n"
        f"  zcall TUI                  first screen wall {tui.wall_s:.3f} s  cpu {tui.cpu_s:.3f} s  "
        f"x{tui.wall_s / TARGET_FIRST_SCREEN_S:.2f} of the 0.5 s goal, "
        f"x{tui.wall_s / BEFORE_FIRST_SCREEN_S:.2f} of before (0.85 s), "
        f"x{tui.wall_s / floor.wall_s:.2f} the floor's wall, "
        f"x{tui.cpu_s / max(floor.cpu_s, 1e-3):.2f} its cpu\n"
        f"  zcall's own share          wall +{own_wall:.3f} s over the floor run next to it, "
        f"cpu +{tui.cpu_s - floor.cpu_s:.3f} s\n"
        f"  zcall ready (takes calls)  wall {tui.ready_s:.3f} s, {tui.ready_s - tui.wall_s:.3f} s after the "
        f"first screen; a new home's first start (creates its identity): {new_home.ready_s:.3f} s\n"
        f"  zcall TUI idle             RSS {tui.rss_mb:.1f} MB (PSS {tui.pss_mb:.1f})  "
        f"x{tui.rss_mb / TARGET_RSS_MB:.2f} of the 70 MB goal, x{tui.rss_mb / BEFORE_RSS_MB:.2f} of before "
        f"(86 MB), floor + {tui.rss_mb - floor.rss_mb:.1f} MB\n"
        f"  load average (1, 5, 15 min): {load_before} before, {_load()} after"
    )
    assert all(run.wall_s > 0 and run.ready_s >= run.wall_s for run in runs)
