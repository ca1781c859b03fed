"""`zcall peers`: browse the LAN for a while and list the zcall units seen, with how each stands against
the trust list (verified, known, new, or an impostor announcing a verified device's name)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time

from zcall.discovery import roster
from zcall.discovery.lan import Discovery, DiscoveryError
from zcall.identity import load_or_create
from zcall.paths import Paths
from zcall.settings import PhoneSettings
from zcall.zrtp.cache import PeerRecord, ZrtpCache
from zcall.zrtp.cachefile import CacheError

_UNUSED_PORT = 9  # browse-only: the port is never announced


async def list_peers(settings: PhoneSettings, paths: Paths, wait_s: float, as_json: bool) -> int:
    paths.ensure_private_dirs()
    identity = load_or_create(paths.identity_dir)
    discovery = Discovery(settings.name, identity.zid, _UNUSED_PORT, settings.bind or None, advertise=False)
    try:
        await discovery.start()
    except DiscoveryError as exc:
        print(f"zcall: {exc}", file=sys.stderr)  # stdout is the list (a script may parse it)
        return 1
    try:
        await asyncio.sleep(wait_s)
        found = [p for p in discovery.peers() if p.zid != identity.zid]
    finally:
        with contextlib.suppress(Exception):
            await discovery.close()
    listings = roster.classify(found, _trusted(paths))
    if as_json:
        for item in listings:
            p = item.peer
            print(json.dumps({"name": p.name, "zid": p.zid.hex(), "address": p.address, "port": p.sip_port,
                              "trust": str(item.standing)}))  # fmt: skip
        return 0
    if not found:
        print("no zcall units found")
    for item in listings:  # verified first, impostors last
        p = item.peer
        print(f"{p.name}\t{p.zid.hex()}\tsip:zcall@{p.address}:{p.sip_port}\t{item.standing}")
    return 0


def _trusted(paths: Paths) -> list[PeerRecord]:
    try:
        with ZrtpCache(paths.cache_file) as cache:
            return cache.peers(time.time())
    except CacheError as exc:
        print(f"zcall: {exc}", file=sys.stderr)
        return []
