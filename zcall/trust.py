"""`zcall trust list|verify|unverify|forget|rename`: the devices this unit has secrets with."""

from __future__ import annotations

import argparse
import sys
import time

from zcall.errors import ZcallError
from zcall.paths import Paths
from zcall.zrtp.cache import PeerRecord, ZrtpCache


class PeerNotFound(ZcallError, LookupError):
    pass


MIN_PREFIX = 4  # hex digits of a ZID prefix, as short as git's
MAX_NAME = 63


def find_peer(records: list[PeerRecord], ref: str) -> PeerRecord:
    """A peer by its full ZID (hex), its name, or a unique ZID prefix of 4+ hex digits.

    A name and a prefix are weighed together: a device that names itself like another's ZID prefix makes
    the reference ambiguous, never the winner. A name in other letter case counts only when nothing else does.
    """
    wanted = ref.strip().lower()
    exact = [r for r in records if r.zid.hex() == wanted]
    if len(exact) == 1:
        return exact[0]
    prefixed = [r for r in records if r.zid.hex().startswith(wanted)] if len(wanted) >= MIN_PREFIX else []
    matches = {r.zid: r for r in [*prefixed, *(r for r in records if r.name == ref.strip())]}
    if not matches:
        matches = {r.zid: r for r in records if r.name.lower() == wanted}
    if len(matches) != 1:
        why = "no known device" if not matches else f"{len(matches)} known devices"
        hint = f"give a name, or {MIN_PREFIX}+ hex digits of a ZID from `zcall trust list`"
        raise PeerNotFound(f"{why} match {ref[:80]!r} ({hint})")
    return next(iter(matches.values()))


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp)) if stamp else "-"


def format_table(records: list[PeerRecord]) -> str:
    if not records:
        return "no known devices\n"
    rows = [("ZID", "NAME", "TRUST", "FIRST SEEN", "LAST SEEN", "ACCOUNTS")]
    for r in sorted(records, key=lambda r: (not r.verified, r.name.lower(), r.zid)):
        trust = "verified" if r.verified else ("known" if r.has_secret else "expired")
        accounts = ",".join(r.accounts) or "-"
        rows.append((r.zid.hex(), r.name or "-", trust, _when(r.first_seen), _when(r.last_seen), accounts))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)
    return "".join(line + "\n" for line in lines)


def run(args: argparse.Namespace, paths: Paths) -> int:
    paths.ensure_private_dirs()
    with ZrtpCache(paths.cache_file) as cache:
        records = cache.peers(time.time())
        if args.trust_command == "list":
            print(format_table(records), end="")
            return 0
        try:
            peer = find_peer(records, args.peer)
        except PeerNotFound as exc:
            print(f"zcall: {exc}", file=sys.stderr)
            return 1
        if args.trust_command == "verify":
            if not peer.has_secret:
                # Verified vouches for a secret chain; this one expired, so there is nothing to vouch for.
                who = f"{peer.zid.hex()} {peer.name}".rstrip()
                print(
                    f"zcall: cannot verify {who}: its secrets expired. "
                    "Call it and compare the words; a match marks it verified.",
                    file=sys.stderr,
                )
                return 1
            cache.set_verified(peer.zid, True)
        elif args.trust_command == "unverify":
            cache.set_verified(peer.zid, False)
        elif args.trust_command == "forget":
            cache.forget(peer.zid)
        elif args.trust_command == "rename":
            name = args.new_name.strip()
            if not 0 < len(name) <= MAX_NAME or not name.isprintable():
                print(f"zcall: a name is 1-{MAX_NAME} printable characters", file=sys.stderr)
                return 1
            cache.set_name(peer.zid, name)
            print(f"rename: {peer.zid.hex()} {peer.name or '-'} -> {name}")
            return 0
        print(f"{args.trust_command}: {peer.zid.hex()} {peer.name}".rstrip())
    return 0
