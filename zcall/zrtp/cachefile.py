"""The trust cache's SQLite file, opened safely: created private (0600) before SQLite sees it, in WAL with
every commit synced, checked (integrity, application id, schema; version 1 migrated); a file that is corrupt
or not ours is moved aside, and CacheError says where. zcall.zrtp.cache keeps the records in it."""

from __future__ import annotations

import contextlib
import os
import pathlib
import sqlite3
import stat
import time
from collections.abc import Iterator

from zcall.errors import ZcallError

_APPLICATION_ID = 0x7A435243  # "zCRC": marks the file as a zcall ZRTP cache
_SCHEMA_VERSION = 2  # 1: peers only; 2: + accounts (a version 1 file is migrated on open)
_BUSY_TIMEOUT_MS = 5000

_SCHEMA = """
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
_ACCOUNTS = """
CREATE TABLE IF NOT EXISTS accounts (
    aor TEXT PRIMARY KEY CHECK (typeof(aor) = 'text' AND length(aor) BETWEEN 3 AND 256),
    zid BLOB NOT NULL CHECK (typeof(zid) = 'blob' AND length(zid) = 12),
    learned_at REAL
) WITHOUT ROWID
"""
_PEER_COLUMNS = {"zid", "name", "rs1", "rs1_expires_at", "rs2", "rs2_expires_at", "verified", "first_seen",
                 "last_seen"}  # fmt: skip
_ACCOUNT_COLUMNS = {"aor", "zid", "learned_at"}


class CacheError(ZcallError):
    """The cache file is corrupt, foreign or unreadable; the message names the file and where it was moved."""


class _NotOurs(ZcallError):
    """Raised while opening when the file is a database but not (this version of) our cache."""


# SQLite primary result codes that mean the bytes on disk are bad, as opposed to busy/locked/permission.
_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26


def open_cache_file(path: pathlib.Path) -> sqlite3.Connection:
    """A connection (autocommit; use transaction()) to the cache at `path`, made if missing; CacheError when
    it cannot be opened (a corrupt or foreign file is moved aside first)."""
    _create_private_file(path)
    try:
        return _open(path)
    except _NotOurs as exc:
        raise _quarantine(path, str(exc)) from exc
    except sqlite3.Error as exc:
        code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
        if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
            raise _quarantine(path, str(exc)) from exc
        # Busy, locked, I/O or permission trouble: the file may be fine, so leave it where it is.
        raise CacheError(f"cannot open ZRTP cache {path}: {exc}") from exc


def _create_private_file(path: pathlib.Path) -> None:
    # Create it ourselves with 0600 before SQLite does (SQLite would honour the umask, often 0644);
    # the -wal and -shm files inherit the main file's mode. A file that exists is never opened here:
    # closing any descriptor of a file drops all of this process's POSIX locks on it, SQLite's too. A
    # connection already open in this process (the TUI's first screen, then the phone's) lost the lock
    # that tells other processes it is there, and the next one to close the cache (`zcall trust list`)
    # folded the WAL in and deleted it under the phone, whose later writes then reached no one.
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
            return
        except FileExistsError:
            found = os.stat(path)
        if not stat.S_ISREG(found.st_mode):
            raise CacheError(f"cannot open ZRTP cache {path}: not a regular file")
        if stat.S_IMODE(found.st_mode) != 0o600:
            os.chmod(path, 0o600)  # tighten a file an older version or a careless copy left readable
    except OSError as exc:
        raise CacheError(f"cannot open ZRTP cache {path}: {exc.strerror or exc}") from exc


def _open(path: pathlib.Path) -> sqlite3.Connection:
    # Another process opening (or recovering the WAL of a writer that was killed) holds a lock that
    # SQLite's busy handler does not always wait for: try again for as long as a busy writer may take.
    deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            return _open_once(path)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


def _open_once(path: pathlib.Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=_BUSY_TIMEOUT_MS / 1000)
    try:
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        # WAL is a property of the file: read it first, so only the first opener ever needs to switch.
        mode = conn.execute("PRAGMA journal_mode").fetchone()
        if mode is None or str(mode[0]).lower() != "wal":
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
        if mode is None or str(mode[0]).lower() != "wal":
            raise sqlite3.OperationalError(f"cannot switch to WAL (journal mode {mode})")
        # FULL: the WAL is synced at every commit. With NORMAL it is synced only at checkpoints, so a
        # power cut loses every commit since the last one (the desk unit's boot test lost 64 of 64).
        conn.execute("PRAGMA synchronous = FULL")
        check = conn.execute("PRAGMA quick_check").fetchone()
        if check is None or check[0] != "ok":
            raise _NotOurs(f"integrity check failed: {check[0] if check else None}")
        # Check in a read transaction so opening never waits on a busy writer; write a fresh or old one.
        conn.execute("BEGIN")
        try:
            found = _check_schema(conn)
        finally:
            conn.execute("COMMIT")
        if found != _SCHEMA_VERSION:
            with transaction(conn):
                found = _check_schema(conn)  # again, under the write lock
                if found == 0:
                    conn.execute(_SCHEMA)
                    conn.execute(f"PRAGMA application_id = {_APPLICATION_ID}")
                if found < _SCHEMA_VERSION:  # fresh, or version 1: add what 2 has
                    conn.execute(_ACCOUNTS)
                    conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
    except BaseException:
        conn.close()
        raise
    return conn


def _check_schema(conn: sqlite3.Connection) -> int:
    """The schema version of our cache (1 is migrated), 0 for a fresh, empty file; raises _NotOurs for
    anything else."""
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]
    if app_id == 0 and version == 0 and tables == 0:
        return 0
    if app_id != _APPLICATION_ID:
        raise _NotOurs(f"not a zcall ZRTP cache (application_id {app_id:#x})")
    if version not in (1, _SCHEMA_VERSION):
        raise _NotOurs(f"unknown cache schema version {version}")
    if {row[1] for row in conn.execute("PRAGMA table_info(peers)")} != _PEER_COLUMNS:
        raise _NotOurs("peers table has an unexpected shape")
    accounts = {row[1] for row in conn.execute("PRAGMA table_info(accounts)")}
    if version >= 2 and accounts != _ACCOUNT_COLUMNS:
        raise _NotOurs("accounts table has an unexpected shape")
    return int(version)


def _quarantine(path: pathlib.Path, why: str) -> CacheError:
    """Move the bad file (and its WAL companions) aside; return the error that says where it went."""
    aside = _aside_path(path)
    try:
        os.replace(path, aside)
    except OSError as exc:
        return CacheError(f"ZRTP cache {path} is unusable ({why}); moving it aside failed: {exc}")
    for suffix in ("-wal", "-shm"):
        companion = path.with_name(path.name + suffix)
        with contextlib.suppress(FileNotFoundError):
            os.replace(companion, aside.with_name(aside.name + suffix))
    return CacheError(f"ZRTP cache {path} is unusable ({why}); kept aside as {aside}")

@contextlib.contextmanager


def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    # IMMEDIATE takes the write lock up front, so read-modify-write (rs1 -> rs2) cannot interleave
    # with another process doing the same.
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _aside_path(path: pathlib.Path) -> pathlib.Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    candidate = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    return candidate
