"""The cache's account -> ZID table (schema 2) on a real SQLite file; a version 1 cache is migrated."""

from __future__ import annotations

import pathlib
import sqlite3

import pytest

from zcall.zrtp.cache import ZrtpCache
from zcall.zrtp.cachefile import CacheError

BOB = bytes.fromhex("b0" * 12)
MALLORY = bytes.fromhex("e7" * 12)
T0 = 1_800_000_000.0

# The schema a version 1 zcall wrote, byte for byte: a cache from before accounts were kept.
V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS peers (
    zid BLOB PRIMARY KEY CHECK (typeof(zid) = 'blob' AND length(zid) = 12),
    name TEXT NOT NULL DEFAULT '',
    rs1 BLOB,
    rs1_expires_at REAL,
    rs2 BLOB,
    rs2_expires_at REAL,
    verified INTEGER NOT NULL DEFAULT 0,
    first_seen REAL,
    last_seen REAL
) WITHOUT ROWID
"""


def _v1_cache(path: pathlib.Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute(V1_SCHEMA)
        db.execute("PRAGMA application_id = 2051232323")  # 0x7A435243, "zCRC"
        db.execute("PRAGMA user_version = 1")
        db.execute(
            "INSERT INTO peers (zid, name, rs1, rs1_expires_at, verified, first_seen, last_seen)"
            " VALUES (?, 'Bob', ?, NULL, 1, ?, ?)",
            (BOB, b"\x01" * 32, T0, T0),
        )
    db.close()


def test_an_account_remembers_the_last_zid_met_there(tmp_path: pathlib.Path) -> None:
    with ZrtpCache(tmp_path / "c.sqlite") as cache:
        assert cache.account_zid("bob@example.org") is None
        cache.remember_account("bob@example.org", BOB, T0)
        assert cache.account_zid("bob@example.org") == BOB
        cache.remember_account("bob@example.org", MALLORY, T0 + 1)  # the policy decides when this may happen
        assert cache.account_zid("bob@example.org") == MALLORY
    with ZrtpCache(tmp_path / "c.sqlite") as cache:  # it is on disk
        assert cache.account_zid("bob@example.org") == MALLORY


def test_forgetting_a_device_forgets_its_accounts(tmp_path: pathlib.Path) -> None:
    with ZrtpCache(tmp_path / "c.sqlite") as cache:
        cache.touch(BOB, T0, "Bob")
        cache.remember_account("bob@example.org", BOB, T0)
        cache.forget(BOB)
        assert cache.account_zid("bob@example.org") is None


@pytest.mark.parametrize(
    "aor", ["", "bob", "Bob@example.org", "bob@ex ample.org", "a@b@c", "bob@\x00x", "b@" + "x" * 300]
)
def test_a_malformed_account_is_refused(tmp_path: pathlib.Path, aor: str) -> None:
    with ZrtpCache(tmp_path / "c.sqlite") as cache, pytest.raises(ValueError):
        cache.remember_account(aor, BOB, T0)


def test_a_version_1_cache_is_migrated_and_keeps_its_peers(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "cache.sqlite"
    _v1_cache(path)
    with ZrtpCache(path) as cache:
        secrets = cache.lookup(BOB, T0)
        assert secrets is not None and secrets.verified and secrets.rs1 == b"\x01" * 32
        assert cache.account_zid("bob@example.org") is None
        cache.remember_account("bob@example.org", BOB, T0)
    assert list(path.parent.glob("*.corrupt-*")) == []  # nothing set aside
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    with ZrtpCache(path) as cache:  # a migrated cache opens as one of ours
        assert cache.account_zid("bob@example.org") == BOB


def test_an_accounts_table_of_another_shape_is_not_ours(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "cache.sqlite"
    with ZrtpCache(path) as cache:
        cache.touch(BOB, T0)
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE accounts")
        db.execute("CREATE TABLE accounts (aor TEXT PRIMARY KEY, owner BLOB)")
    db.close()
    with pytest.raises(CacheError, match="accounts table"):
        ZrtpCache(path)
