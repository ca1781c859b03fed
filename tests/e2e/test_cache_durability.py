"""SIGKILL while the trust cache is being written: it still opens, SQLite's integrity_check is "ok", and
every secret a writer reported stored is still there. Writers run alone or two at once on the one file.

ZCALL_DURABILITY_ROUNDS sets the number of kills (20 here; `make durability` runs 1000).
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zcall.zrtp.cache import ZrtpCache

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = int(os.environ.get("ZCALL_DURABILITY_ROUNDS", "20"))


def _writer(path: Path, writer: int, round_: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.cache_writer", str(path), str(writer), str(round_)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def _kill_mid_write(procs: list[subprocess.Popen[bytes]], rng: random.Random) -> tuple[dict[str, str], int]:
    """Let the writers get going, SIGKILL each at a random moment; the last secret each reported per peer,
    and how many writes the cache refused (the lock held past the busy timeout by the other writer)."""
    assert procs[0].stdout is not None
    first = procs[0].stdout.readline()  # it has opened the cache and written once
    time.sleep(rng.uniform(0.0, 0.15))
    for proc in procs:
        proc.send_signal(signal.SIGKILL)
    last: dict[str, str] = {}
    refused = 0
    for n, proc in enumerate(procs):
        assert proc.stdout is not None and proc.stderr is not None
        # Read through the same buffered file readline() used (communicate() would skip what it buffered).
        out = (first if n == 0 else b"") + proc.stdout.read()
        err = proc.stderr.read()
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
        for line in out.decode().splitlines():
            refused += line == "refused"
            parts = line.split()
            if len(parts) == 2 and len(parts[1]) == 64:  # a line cut by the kill was never reported whole
                last[parts[0]] = parts[1]
    return last, refused


def _check(path: Path, reported: dict[str, str]) -> None:
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with ZrtpCache(path) as cache:  # opens: no quarantine, no error
        for zid_hex, rs1_hex in reported.items():
            got = cache.lookup(bytes.fromhex(zid_hex), time.time())
            assert got is not None, f"peer {zid_hex} lost"
            # A write may have committed after the last line reached us: then ours has moved on to rs2.
            assert bytes.fromhex(rs1_hex) in (got.rs1, got.rs2), f"reported secret for {zid_hex} lost"


@pytest.mark.timeout(60 + ROUNDS * 6)
@pytest.mark.parametrize("writers", [1, 2], ids=["one-writer", "two-writers"])
def test_sigkill_during_cache_writes_loses_nothing_reported(tmp_path: Path, writers: int) -> None:
    rng = random.Random(writers)
    path = tmp_path / "zrtp-cache.sqlite"
    reported: dict[str, str] = {}
    refused = 0
    for round_ in range(ROUNDS):
        last, refused_now = _kill_mid_write([_writer(path, w + 1, round_) for w in range(writers)], rng)
        reported.update(last)
        refused += refused_now
        _check(path, reported)  # this round's peers, and every earlier round's, untouched since
    print(f"\n{ROUNDS} SIGKILLs, {writers} writer(s): {len(reported)} peers' last reported secrets all kept, "
          f"integrity_check ok every round; {refused} writes refused as locked")
    assert len(reported) >= ROUNDS
    assert {zid[:2] for zid in reported} == {f"{w + 1:02x}" for w in range(writers)}  # each writer wrote
    assert path.exists() and not list(tmp_path.glob("*.corrupt*"))  # never quarantined
