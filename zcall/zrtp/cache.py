"""The ZRTP retained-secrets cache (RFC 6189 §4.9, §4.6.1) in one SQLite file under the instance's home.

Per peer ZID: rs1, rs2 with their expiry, the SAS-verified flag, a display name, first and last seen; and per
SIP account (user@host) the ZID a bound ZRTP exchange on the server path met there. Every update is one
transaction; the file is WAL so a CLI (`zcall trust ...`) can read while the phone runs. A file
that is not our cache is never silently replaced: it is moved aside and CacheError says where it went.
"""

from __future__ import annotations

import contextlib
import hmac
import math
import os
import pathlib
import sqlite3
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from zcall.errors import ZcallError

ZID_LEN = 12
MAX_SECRET_LEN = 64  # rs1/rs2 are one hash long: 32 (S256) or 48 (S384) bytes
MAX_NAME_LEN = 128
MAX_ACCOUNT_LEN = 256  # user@host, as zcall.routing.account_of() normalises it
NEVER_EXPIRES = 0xFFFFFFFF  # cache expiration interval meaning "keep forever"

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


@dataclass(frozen=True)
class RetainedSecrets:
    """What a ZRTP session needs from the cache for one peer. Secrets stay out of repr so they are not logged.

    verified is only reported True while a live secret exists: the flag vouches for the secret chain, and an
    expired chain has to be verified again.
    """

    rs1: bytes | None = field(repr=False)
    rs2: bytes | None = field(repr=False)
    verified: bool
    rs1_expires_at: float | None  # unix time; None = never expires


@dataclass(frozen=True)
class StoredBefore:
    """One peer's secrets as they were before store_new_rs1, so rollback() can put them back.

    Held in memory for the length of a call (never written anywhere); secrets stay out of repr.
    """

    peer_zid: bytes
    existed: bool
    rs1: bytes | None = field(repr=False)
    rs1_expires_at: float | None
    rs2: bytes | None = field(repr=False)
    rs2_expires_at: float | None
    written_rs1: bytes | None = field(repr=False)  # what this store put in rs1 (None: it cleared them)


@dataclass(frozen=True)
class PeerRecord:
    """A cached peer as `zcall trust list` shows it (no secrets)."""

    zid: bytes
    name: str
    verified: bool
    first_seen: float
    last_seen: float
    has_secret: bool
    accounts: tuple[str, ...] = ()  # server accounts (user@host) a bound call met this device at


def _check_zid(zid: bytes) -> bytes:
    if not isinstance(zid, bytes) or len(zid) != ZID_LEN:
        raise ValueError(f"a ZID is {ZID_LEN} bytes")
    return zid


def _check_name(name: str) -> str:
    if len(name) > MAX_NAME_LEN or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise ValueError(f"a peer name is at most {MAX_NAME_LEN} printable characters")
    return name


def _check_account(aor: str) -> str:
    if (
        not isinstance(aor, str) or not 3 <= len(aor) <= MAX_ACCOUNT_LEN or aor.count("@") != 1
        or aor != aor.lower() or not aor.isprintable() or any(c.isspace() for c in aor)
    ):  # fmt: skip
        raise ValueError(f"an account is a lower-case user@host of at most {MAX_ACCOUNT_LEN} characters")
    return aor


def _check_now(now: float) -> float:
    if not math.isfinite(now):
        raise ValueError("now must be a finite unix time")
    return float(now)


def _live(secret: object, expires_at: object, now: float) -> bytes | None:
    """A stored secret if it is well-formed and not expired; anything else counts as absent."""
    if not isinstance(secret, bytes) or not 1 <= len(secret) <= MAX_SECRET_LEN:
        return None
    if expires_at is not None and (not isinstance(expires_at, int | float) or now >= expires_at):
        return None
    return secret


def _aside_path(path: pathlib.Path) -> pathlib.Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    candidate = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    return candidate


class ZrtpCache:
    """Retained secrets per peer ZID in SQLite (WAL, mode 0600). One object per thread; many per file."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = pathlib.Path(path)
        self._conn: sqlite3.Connection | None = None
        self._create_private_file()
        try:
            self._conn = self._open()
        except _NotOurs as exc:
            raise self._quarantine(str(exc)) from exc
        except sqlite3.Error as exc:
            code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
            if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
                raise self._quarantine(str(exc)) from exc
            # Busy, locked, I/O or permission trouble: the file may be fine, so leave it where it is.
            raise CacheError(f"cannot open ZRTP cache {self.path}: {exc}") from exc

    # -- opening --------------------------------------------------------------------------------------------

    def _create_private_file(self) -> None:
        # Create it ourselves with 0600 before SQLite does (SQLite would honour the umask, often 0644);
        # the -wal and -shm files inherit the main file's mode. A file that exists is never opened here:
        # closing any descriptor of a file drops all of this process's POSIX locks on it, SQLite's too. A
        # connection already open in this process (the TUI's first screen, then the phone's) lost the lock
        # that tells other processes it is there, and the next one to close the cache (`zcall trust list`)
        # folded the WAL in and deleted it under the phone, whose later writes then reached no one.
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
                return
            except FileExistsError:
                found = os.stat(self.path)
            if not stat.S_ISREG(found.st_mode):
                raise CacheError(f"cannot open ZRTP cache {self.path}: not a regular file")
            if stat.S_IMODE(found.st_mode) != 0o600:
                os.chmod(self.path, 0o600)  # tighten a file an older version or a careless copy left readable
        except OSError as exc:
            raise CacheError(f"cannot open ZRTP cache {self.path}: {exc.strerror or exc}") from exc

    def _open(self) -> sqlite3.Connection:
        # Another process opening (or recovering the WAL of a writer that was killed) holds a lock that
        # SQLite's busy handler does not always wait for: try again for as long as a busy writer may take.
        deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                return self._open_once()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.02)

    def _open_once(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=_BUSY_TIMEOUT_MS / 1000)
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
                found = self._check_schema(conn)
            finally:
                conn.execute("COMMIT")
            if found != _SCHEMA_VERSION:
                with self._transaction(conn):
                    found = self._check_schema(conn)  # again, under the write lock
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

    @staticmethod
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

    def _quarantine(self, why: str) -> CacheError:
        """Move the bad file (and its WAL companions) aside; return the error that says where it went."""
        aside = _aside_path(self.path)
        try:
            os.replace(self.path, aside)
        except OSError as exc:
            return CacheError(f"ZRTP cache {self.path} is unusable ({why}); moving it aside failed: {exc}")
        for suffix in ("-wal", "-shm"):
            companion = self.path.with_name(self.path.name + suffix)
            with contextlib.suppress(FileNotFoundError):
                os.replace(companion, aside.with_name(aside.name + suffix))
        return CacheError(f"ZRTP cache {self.path} is unusable ({why}); kept aside as {aside}")

    # -- transactions ---------------------------------------------------------------------------------------

    @staticmethod
    @contextlib.contextmanager
    def _transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front, so read-modify-write (rs1 -> rs2) cannot interleave
        # with another process doing the same.
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise CacheError(f"ZRTP cache {self.path} is closed")
        return self._conn

    def _write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return self._transaction(self._db)

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn SQLite failures after opening (disk full, file damaged under us) into CacheError."""
        try:
            yield
        except sqlite3.Error as exc:
            raise CacheError(f"ZRTP cache {self.path}: {exc}") from exc

    # -- the API the engine and the CLI use ----------------------------------------------------------------

    def lookup(self, peer_zid: bytes, now: float) -> RetainedSecrets | None:
        """This peer's live secrets and verified flag, or None if never met. Expired secrets read as None."""
        _check_zid(peer_zid)
        now = _check_now(now)
        with self._errors():
            row = self._db.execute(
                "SELECT rs1, rs1_expires_at, rs2, rs2_expires_at, verified FROM peers WHERE zid = ?",
                (peer_zid,),
            ).fetchone()
        if row is None:
            return None
        rs1 = _live(row[0], row[1], now)
        rs2 = _live(row[2], row[3], now)
        return RetainedSecrets(
            rs1=rs1,
            rs2=rs2,
            verified=bool(row[4]) if rs1 is not None or rs2 is not None else False,
            rs1_expires_at=float(row[1]) if rs1 is not None and row[1] is not None else None,
        )

    def store_new_rs1(self, peer_zid: bytes, rs1: bytes, expires_in: int, now: float) -> StoredBefore:
        """After a successful exchange: old rs1 becomes rs2 and the new rs1 is kept for `expires_in` seconds.

        expires_in is the lesser cache expiration interval from the two Confirm messages: 0xFFFFFFFF keeps it
        forever; 0 means do not cache, so the peer's existing secrets are discarded too (§4.9; and with them
        the verified flag, which only means something alongside a secret). When no live secret was left
        (first contact, or everything expired) the verified flag is cleared as well: it vouched for a chain
        that has ended, and nobody compared words on the new one.

        Returns the state before, for rollback() if the words of this call turn out to differ.
        """
        _check_zid(peer_zid)
        now = _check_now(now)
        if not isinstance(rs1, bytes) or not 1 <= len(rs1) <= MAX_SECRET_LEN:
            raise ValueError(f"rs1 must be 1..{MAX_SECRET_LEN} bytes")
        if not 0 <= expires_in <= NEVER_EXPIRES:
            raise ValueError("expires_in must be a 32-bit unsigned interval")
        with self._errors(), self._write() as db:
            row = db.execute(
                "SELECT rs1, rs1_expires_at, rs2, rs2_expires_at FROM peers WHERE zid = ?", (peer_zid,)
            ).fetchone()
            before = StoredBefore(
                peer_zid=peer_zid,
                existed=row is not None,
                rs1=row[0] if row else None,
                rs1_expires_at=row[1] if row else None,
                rs2=row[2] if row else None,
                rs2_expires_at=row[3] if row else None,
                written_rs1=None if expires_in == 0 else rs1,
            )
            self._ensure_row(db, peer_zid, now)
            if expires_in == 0:
                db.execute(
                    "UPDATE peers SET rs1 = NULL, rs1_expires_at = NULL, rs2 = NULL, rs2_expires_at = NULL,"
                    " verified = 0 WHERE zid = ?",
                    (peer_zid,),
                )
                return before
            live = row is not None and (_live(row[0], row[1], now) or _live(row[2], row[3], now))
            expires_at = None if expires_in == NEVER_EXPIRES else now + expires_in
            db.execute(
                "UPDATE peers SET rs2 = rs1, rs2_expires_at = rs1_expires_at, rs1 = ?, rs1_expires_at = ?,"
                " verified = CASE WHEN ? THEN verified ELSE 0 END WHERE zid = ?",
                (rs1, expires_at, int(bool(live)), peer_zid),
            )
        return before

    def rollback(self, before: StoredBefore) -> None:
        """Undo one store_new_rs1 (the words of that call differed): its secrets go back to what they were,
        and the peer is no longer verified. If another exchange stored a newer rs1 since, that one is kept
        (it is not this call's to undo) and only the verified flag is cleared."""
        peer_zid = _check_zid(before.peer_zid)
        with self._errors(), self._write() as db:
            row = db.execute("SELECT rs1 FROM peers WHERE zid = ?", (peer_zid,)).fetchone()
            if row is None:
                return
            # Both empty after an expiry-0 store: still ours to undo.
            ours = hmac.compare_digest(row[0] or b"", before.written_rs1 or b"")
            if ours:
                db.execute(
                    "UPDATE peers SET rs1 = ?, rs1_expires_at = ?, rs2 = ?, rs2_expires_at = ? WHERE zid = ?",
                    (before.rs1, before.rs1_expires_at, before.rs2, before.rs2_expires_at, peer_zid),
                )
            db.execute("UPDATE peers SET verified = 0 WHERE zid = ?", (peer_zid,))

    def set_verified(self, peer_zid: bytes, verified: bool) -> None:
        _check_zid(peer_zid)
        with self._errors(), self._write() as db:
            self._ensure_row(db, peer_zid, None)
            db.execute("UPDATE peers SET verified = ? WHERE zid = ?", (int(bool(verified)), peer_zid))

    def set_name(self, peer_zid: bytes, name: str) -> None:
        _check_zid(peer_zid)
        _check_name(name)
        with self._errors(), self._write() as db:
            self._ensure_row(db, peer_zid, None)
            db.execute("UPDATE peers SET name = ? WHERE zid = ?", (name, peer_zid))

    def touch(self, peer_zid: bytes, now: float, name: str | None = None) -> None:
        """Record that we talked to this peer now (first_seen set once). `name` only fills an empty name:
        a name from the network (SIP display name, mDNS label) never renames an entry; set_name() does."""
        _check_zid(peer_zid)
        now = _check_now(now)
        if name is not None:
            _check_name(name)
        with self._errors(), self._write() as db:
            self._ensure_row(db, peer_zid, now)
            db.execute(
                "UPDATE peers SET last_seen = max(coalesce(last_seen, ?), ?),"
                " name = CASE WHEN name = '' THEN coalesce(?, name) ELSE name END WHERE zid = ?",
                (now, now, name, peer_zid),
            )

    def forget(self, peer_zid: bytes) -> None:
        _check_zid(peer_zid)
        with self._errors(), self._write() as db:
            db.execute("DELETE FROM peers WHERE zid = ?", (peer_zid,))
            db.execute("DELETE FROM accounts WHERE zid = ?", (peer_zid,))  # expected nowhere now

    def remember_account(self, aor: str, peer_zid: bytes, now: float) -> None:
        """A bound ZRTP exchange on the server path met this ZID at this account: later calls to and from
        the account expect it (the policy of when to learn is zcall/calltrust.py's)."""
        _check_account(aor)
        _check_zid(peer_zid)
        now = _check_now(now)
        with self._errors(), self._write() as db:
            db.execute(
                "INSERT INTO accounts (aor, zid, learned_at) VALUES (?, ?, ?)"
                " ON CONFLICT (aor) DO UPDATE SET zid = excluded.zid, learned_at = excluded.learned_at",
                (aor, peer_zid, now),
            )

    def account_zid(self, aor: str) -> bytes | None:
        """The ZID last met with bound ZRTP at this account, or None (never, or a malformed row)."""
        _check_account(aor)
        with self._errors():
            row = self._db.execute("SELECT zid FROM accounts WHERE aor = ?", (aor,)).fetchone()
        zid = row[0] if row is not None else None
        return zid if isinstance(zid, bytes) and len(zid) == ZID_LEN else None

    def peers(self, now: float | None = None) -> list[PeerRecord]:
        """Every cached peer, most recently seen first. Rows that fail validation are skipped, not trusted.

        With `now`, has_secret means a live (unexpired) secret and verified is only reported alongside one,
        as lookup() does; without it, any stored secret counts."""
        with self._errors():
            rows = self._db.execute(
                "SELECT zid, name, verified, first_seen, last_seen, rs1, rs1_expires_at, rs2, rs2_expires_at"
                " FROM peers ORDER BY last_seen DESC, zid"
            ).fetchall()
            held: dict[object, list[str]] = {}
            for aor, owner in self._db.execute("SELECT aor, zid FROM accounts ORDER BY aor"):
                held.setdefault(owner, []).append(str(aor))
        records = []
        for zid, name, verified, first_seen, last_seen, rs1, rs1_exp, rs2, rs2_exp in rows:
            if now is None:
                has_secret = rs1 is not None or rs2 is not None
            else:
                has_secret = _live(rs1, rs1_exp, now) is not None or _live(rs2, rs2_exp, now) is not None
                verified = verified and has_secret
            if not isinstance(zid, bytes) or len(zid) != ZID_LEN or not isinstance(name, str):
                continue
            records.append(
                PeerRecord(
                    zid=zid,
                    name=name[:MAX_NAME_LEN],
                    verified=bool(verified),
                    first_seen=float(first_seen or 0.0),
                    last_seen=float(last_seen or 0.0),
                    has_secret=bool(has_secret),
                    accounts=tuple(held.get(zid, ())),
                )
            )
        return records

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> ZrtpCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _ensure_row(db: sqlite3.Connection, peer_zid: bytes, now: float | None) -> None:
        db.execute(
            "INSERT INTO peers (zid, first_seen, last_seen) VALUES (?, ?, ?) ON CONFLICT (zid) DO NOTHING",
            (peer_zid, now, now),
        )
