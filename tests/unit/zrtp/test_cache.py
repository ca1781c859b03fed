"""The retained-secrets cache on a real SQLite file: rotation, expiry, persistence, corruption, mode, WAL."""

from __future__ import annotations

import os
import pathlib
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from zcall.zrtp.cache import NEVER_EXPIRES, RetainedSecrets, ZrtpCache
from zcall.zrtp.cachefile import CacheError

ALICE = bytes.fromhex("a1" * 12)
BOB = bytes.fromhex("b0" * 12)
T0 = 1_800_000_000.0


@pytest.fixture
def path(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "home" / "cache.sqlite"


@pytest.fixture
def cache(path: pathlib.Path) -> Iterator[ZrtpCache]:
    c = ZrtpCache(path)
    yield c
    c.close()


def rs(n: int) -> bytes:
    return bytes([n]) * 32


def test_unknown_peer_is_none(cache: ZrtpCache) -> None:
    assert cache.lookup(ALICE, T0) is None


def test_store_and_rotate_rs1_to_rs2(cache: ZrtpCache) -> None:
    cache.store_new_rs1(ALICE, rs(1), 3600, T0)
    got = cache.lookup(ALICE, T0 + 1)
    assert got == RetainedSecrets(rs1=rs(1), rs2=None, verified=False, rs1_expires_at=T0 + 3600)
    cache.store_new_rs1(ALICE, rs(2), 3600, T0 + 10)
    got = cache.lookup(ALICE, T0 + 11)
    assert got is not None and (got.rs1, got.rs2) == (rs(2), rs(1))
    cache.store_new_rs1(ALICE, rs(3), 3600, T0 + 20)
    got = cache.lookup(ALICE, T0 + 21)
    assert got is not None and (got.rs1, got.rs2) == (rs(3), rs(2))
    # Other peers are untouched.
    assert cache.lookup(BOB, T0) is None


def test_expiry_is_honoured_per_secret(cache: ZrtpCache) -> None:
    cache.store_new_rs1(ALICE, rs(1), 100, T0)  # expires T0+100
    cache.store_new_rs1(ALICE, rs(2), 1000, T0 + 50)  # expires T0+1050; rs2 keeps T0+100
    got = cache.lookup(ALICE, T0 + 99)
    assert got is not None and (got.rs1, got.rs2) == (rs(2), rs(1))
    got = cache.lookup(ALICE, T0 + 100)
    assert got is not None and (got.rs1, got.rs2) == (rs(2), None)
    got = cache.lookup(ALICE, T0 + 1050)
    assert got is not None and (got.rs1, got.rs2, got.rs1_expires_at) == (None, None, None)


def test_never_expires(cache: ZrtpCache) -> None:
    cache.store_new_rs1(ALICE, rs(1), NEVER_EXPIRES, T0)
    got = cache.lookup(ALICE, T0 + 100 * 365 * 86400)
    assert got is not None and got.rs1 == rs(1) and got.rs1_expires_at is None


def test_zero_interval_caches_nothing_and_discards(cache: ZrtpCache) -> None:
    cache.store_new_rs1(ALICE, rs(1), 3600, T0)
    cache.set_verified(ALICE, True)
    cache.store_new_rs1(ALICE, rs(2), 0, T0 + 1)
    got = cache.lookup(ALICE, T0 + 2)
    assert got == RetainedSecrets(rs1=None, rs2=None, verified=False, rs1_expires_at=None)


def test_verified_flag_survives_close_and_reopen(path: pathlib.Path) -> None:
    with ZrtpCache(path) as c:
        c.store_new_rs1(ALICE, rs(7), NEVER_EXPIRES, T0)
        c.set_verified(ALICE, True)
        c.touch(ALICE, T0, name="Alice desk")
    with ZrtpCache(path) as c:
        got = c.lookup(ALICE, T0 + 5)
        assert got is not None and got.verified and got.rs1 == rs(7)
        c.set_verified(ALICE, False)
    with ZrtpCache(path) as c:
        got = c.lookup(ALICE, T0 + 5)
        assert got is not None and not got.verified


def test_verified_needs_a_live_secret(cache: ZrtpCache) -> None:
    cache.store_new_rs1(ALICE, rs(1), 10, T0)
    cache.set_verified(ALICE, True)
    got = cache.lookup(ALICE, T0 + 20)
    assert got is not None and not got.verified
    # The stored flag itself is kept for the trust list.
    assert cache.peers()[0].verified


def test_touch_names_and_peers(cache: ZrtpCache) -> None:
    cache.touch(ALICE, T0, name="Alice")
    cache.touch(ALICE, T0 + 50)
    cache.touch(ALICE, T0 + 20)  # an out-of-order touch never moves last_seen back
    cache.touch(BOB, T0 + 10, name="Bob")
    cache.store_new_rs1(BOB, rs(5), 60, T0 + 10)
    cache.set_name(BOB, "Bob (kitchen)")
    peers = {p.zid: p for p in cache.peers()}
    assert peers[ALICE].name == "Alice"
    assert (peers[ALICE].first_seen, peers[ALICE].last_seen) == (T0, T0 + 50)
    assert not peers[ALICE].has_secret
    assert peers[BOB].name == "Bob (kitchen)" and peers[BOB].has_secret
    assert [p.zid for p in cache.peers()] == [ALICE, BOB]  # most recently seen first


def test_forget(cache: ZrtpCache) -> None:
    cache.store_new_rs1(ALICE, rs(1), 60, T0)
    cache.forget(ALICE)
    assert cache.lookup(ALICE, T0) is None
    assert cache.peers() == []


def test_secrets_never_in_repr(cache: ZrtpCache) -> None:
    secret = bytes(range(32))
    cache.store_new_rs1(ALICE, secret, 60, T0)
    got = cache.lookup(ALICE, T0)
    assert got is not None
    assert secret.hex() not in repr(got) and repr(secret) not in repr(got)


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.lookup(b"short", T0),
        lambda c: c.store_new_rs1(ALICE, b"", 60, T0),
        lambda c: c.store_new_rs1(ALICE, bytes(65), 60, T0),
        lambda c: c.store_new_rs1(ALICE, rs(1), -1, T0),
        lambda c: c.store_new_rs1(ALICE, rs(1), 1 << 32, T0),
        lambda c: c.store_new_rs1(ALICE, rs(1), 60, float("nan")),
        lambda c: c.set_name(ALICE, "x" * 129),
        lambda c: c.touch(ALICE, T0, name="bad\nname"),
    ],
)
def test_rejects_bad_arguments(cache: ZrtpCache, call: object) -> None:
    assert callable(call)
    with pytest.raises(ValueError):
        call(cache)
    assert cache.peers() == []  # nothing half-written


def test_file_mode_is_0600(path: pathlib.Path) -> None:
    old = os.umask(0o022)
    try:
        with ZrtpCache(path) as c:
            c.store_new_rs1(ALICE, rs(1), 60, T0)
            for f in (path, path.with_name(path.name + "-wal")):
                assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    finally:
        os.umask(old)


def test_loose_mode_is_tightened(path: pathlib.Path) -> None:
    with ZrtpCache(path):
        pass
    path.chmod(0o644)
    with ZrtpCache(path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_wal_mode(path: pathlib.Path) -> None:
    with ZrtpCache(path):
        pass
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_every_commit_is_synced(cache: ZrtpCache) -> None:
    # In WAL mode only FULL syncs at each commit; NORMAL waits for a checkpoint, and a power cut before it
    # loses the secrets a call reported stored (the desk unit's boot test saw all of them go).
    assert cache._conn is not None
    assert cache._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def _aside_files(path: pathlib.Path) -> list[pathlib.Path]:
    return sorted(path.parent.glob(path.name + ".corrupt-*"))


def test_garbage_file_is_kept_aside(path: pathlib.Path) -> None:
    path.parent.mkdir(parents=True)
    garbage = b"this is not a database, it is a shopping list\n" * 100
    path.write_bytes(garbage)
    with pytest.raises(CacheError) as info:
        ZrtpCache(path)
    aside = _aside_files(path)
    assert len(aside) == 1 and aside[0].read_bytes() == garbage
    assert str(path) in str(info.value) and str(aside[0]) in str(info.value)
    assert not path.exists()  # not silently replaced: the caller decides what next
    # A fresh cache can now be made, and the kept file stays.
    with ZrtpCache(path) as c:
        assert c.peers() == []
    assert _aside_files(path) == aside


def test_damaged_pages_are_detected(path: pathlib.Path) -> None:
    with ZrtpCache(path) as c:
        for i in range(200):
            c.store_new_rs1(bytes([i]) * 12, rs(i), 60, T0)
    data = bytearray(path.read_bytes())
    assert len(data) > 8192
    data[4096:8192] = b"\xa5" * 4096  # trash the second page (a b-tree page of the peers table)
    path.write_bytes(bytes(data))
    with pytest.raises(CacheError):
        ZrtpCache(path)
    assert len(_aside_files(path)) == 1


def test_foreign_database_is_kept_aside(path: pathlib.Path) -> None:
    path.parent.mkdir(parents=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE recipes (name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(CacheError, match="not a zcall ZRTP cache"):
        ZrtpCache(path)
    assert len(_aside_files(path)) == 1


def test_unopenable_path_is_a_cache_error(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "dir-in-the-way"
    target.mkdir()
    with pytest.raises(CacheError, match="dir-in-the-way"):
        ZrtpCache(target)
    assert target.is_dir()  # nothing moved


def test_closed_cache_says_so(cache: ZrtpCache) -> None:
    cache.close()
    with pytest.raises(CacheError, match="closed"):
        cache.lookup(ALICE, T0)


def test_two_objects_on_one_file_share_updates(path: pathlib.Path) -> None:
    with ZrtpCache(path) as a, ZrtpCache(path) as b:
        a.store_new_rs1(ALICE, rs(1), 60, T0)
        got = b.lookup(ALICE, T0)
        assert got is not None and got.rs1 == rs(1)
        b.store_new_rs1(ALICE, rs(2), 60, T0 + 1)
        got = a.lookup(ALICE, T0 + 1)
        assert got is not None and (got.rs1, got.rs2) == (rs(2), rs(1))


def test_concurrent_rotations_lose_nothing(path: pathlib.Path) -> None:
    """Two writers rotate the same peer at once: every store is one atomic rs1->rs2 step."""
    ZrtpCache(path).close()
    rounds = 60
    seen: list[tuple[bytes | None, bytes | None]] = []
    errors: list[BaseException] = []

    def writer(tag: int) -> None:
        try:
            with ZrtpCache(path) as c:
                for i in range(rounds):
                    c.store_new_rs1(ALICE, bytes([tag, i]) * 16, 3600, T0)
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in (1, 2)]
    for t in threads:
        t.start()
    with ZrtpCache(path) as reader:
        while any(t.is_alive() for t in threads):
            got = reader.lookup(ALICE, T0)
            if got is not None:
                seen.append((got.rs1, got.rs2))
    for t in threads:
        t.join()
    assert not errors
    with ZrtpCache(path) as c:
        final = c.lookup(ALICE, T0)
    assert final is not None and final.rs1 is not None and final.rs2 is not None
    # The last two stores were different writes, and every intermediate read was a consistent pair.
    assert final.rs1 != final.rs2
    assert all(rs1 is not None and rs1 != rs2 for rs1, rs2 in seen)


def test_reader_in_another_process_while_writing(path: pathlib.Path) -> None:
    """WAL: a second process (the `zcall trust` CLI) reads while this one holds an open write transaction."""
    with ZrtpCache(path) as c:
        c.store_new_rs1(ALICE, rs(1), NEVER_EXPIRES, T0)
        c.set_verified(ALICE, True)
        lock = sqlite3.connect(path, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")  # a writer mid-transaction
        try:
            script = (
                "import pathlib,sys;from zcall.zrtp.cache import ZrtpCache;"
                "c=ZrtpCache(pathlib.Path(sys.argv[1]));"
                "print([(p.zid.hex(), p.verified) for p in c.peers()])"
            )
            out = subprocess.run(
                [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=30
            )
        finally:
            lock.execute("ROLLBACK")
            lock.close()
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"[('{ALICE.hex()}', True)]"


def _peers_in_another_process(path: pathlib.Path) -> str:
    """`zcall trust list` as a desk unit's user runs it: a process of its own, which opens and closes."""
    script = (
        "import pathlib,sys;from zcall.zrtp.cache import ZrtpCache;"
        "c=ZrtpCache(pathlib.Path(sys.argv[1]));"
        "print([(p.zid.hex(), p.verified) for p in c.peers()]);c.close()"
    )
    argv = [sys.executable, "-c", script, str(path)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_a_second_cache_in_one_process_keeps_the_first_ones_writes_visible(path: pathlib.Path) -> None:
    """The desk unit's finding: its TUI opens the cache for the first screen, then the phone opens its own.
    Opening must not drop the process's SQLite locks on the file (POSIX drops them all when any descriptor of
    the file is closed): without them the next process to close the cache thought itself the last, folded the
    WAL in and deleted it under the phone, whose later writes (a revoke) went to a deleted file."""
    with ZrtpCache(path) as c:
        c.store_new_rs1(ALICE, rs(1), NEVER_EXPIRES, T0)
    first_screen = ZrtpCache(path)
    phone = ZrtpCache(path)
    first_screen.close()
    try:
        phone.set_verified(ALICE, True)
        assert _peers_in_another_process(path) == f"[('{ALICE.hex()}', True)]"
        phone.set_verified(ALICE, False)  # the words differ
        assert _peers_in_another_process(path) == f"[('{ALICE.hex()}', False)]"
    finally:
        phone.close()
    assert _peers_in_another_process(path) == f"[('{ALICE.hex()}', False)]"
