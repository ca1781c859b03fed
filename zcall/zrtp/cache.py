"""The ZRTP retained-secrets cache (RFC 6189 §4.9, §4.6.1) in one SQLite file under the instance's home.

Per peer ZID: rs1, rs2 with their expiry, the SAS-verified flag, a display name, first and last seen; and per
SIP account (user@host) the ZID a bound ZRTP exchange on the server path met there. Every update is one
transaction; the file is WAL so a CLI (`zcall trust ...`) can read while the phone runs. How the file is
opened, checked and, when it is not our cache, moved aside: zcall.zrtp.cachefile.
"""

from __future__ import annotations

import contextlib
import hmac
import math
import pathlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field

from zcall.zrtp.cachefile import CacheError, open_cache_file, transaction

ZID_LEN = 12
MAX_SECRET_LEN = 64  # rs1/rs2 are one hash long: 32 (S256) or 48 (S384) bytes
MAX_NAME_LEN = 128
MAX_ACCOUNT_LEN = 256  # user@host, as zcall.routing.account_of() normalises it
NEVER_EXPIRES = 0xFFFFFFFF  # cache expiration interval meaning "keep forever"


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


class ZrtpCache:
    """Retained secrets per peer ZID in SQLite (WAL, mode 0600). One object per thread; many per file."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = pathlib.Path(path)
        self._conn: sqlite3.Connection | None = open_cache_file(self.path)

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise CacheError(f"ZRTP cache {self.path} is closed")
        return self._conn

    def _write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return transaction(self._db)

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
