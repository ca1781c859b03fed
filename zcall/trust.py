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


def find_peer(records: list[PeerRecord], ref: str) -> PeerRecord:
    """A peer by its full ZID (hex), a unique ZID prefix of 6+ hex digits, or its exact name."""
    wanted = ref.strip().lower()
    by_zid = [r for r in records if r.zid.hex() == wanted]
    if not by_zid and len(wanted) >= 6:
        by_zid = [r for r in records if r.zid.hex().startswith(wanted)]
    matches = by_zid or [r for r in records if r.name == ref]
    if len(matches) != 1:
        why = "no known device" if not matches else f"{len(matches)} known devices"
        raise PeerNotFound(f"{why} matches {ref!r} (give the ZID from `zcall trust list`)")
    return matches[0]


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp)) if stamp else "-"


def format_table(records: list[PeerRecord]) -> str:
    if not records:
        return "no known devices\n"
    rows = [("ZID", "NAME", "TRUST", "FIRST SEEN", "LAST SEEN")]
    for r in sorted(records, key=lambda r: (not r.verified, r.name.lower(), r.zid)):
        trust = "verified" if r.verified else ("known" if r.has_secret else "expired")
        rows.append((r.zid.hex(), r.name or "-", trust, _when(r.first_seen), _when(r.last_seen)))
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
            cache.set_name(peer.zid, args.new_name)
        print(f"{args.trust_command}: {peer.zid.hex()} {peer.name}".rstrip())
    return 0
