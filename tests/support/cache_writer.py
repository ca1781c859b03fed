"""A process that writes the ZRTP trust cache as fast as it can and reports each write once it returned
(`python -m tests.support.cache_writer PATH WRITER_ID ROUND`): one line "zid-hex rs1-hex" per stored secret.
The durability tests kill it with SIGKILL at random moments.

A write the cache refuses (CacheError: another writer kept the lock past the busy timeout, which a hot loop
next to another hot loop can do, each commit waiting for fsync) is reported as "refused" and the loop goes on,
as a call does: it says the cache could not be updated and stores nothing it would later count on."""

from __future__ import annotations

import contextlib
import os
import pathlib
import sys
import time

from zcall.zrtp.cache import NEVER_EXPIRES, ZrtpCache
from zcall.zrtp.cachefile import CacheError

PEERS = 8  # each writer cycles over its own peers, so rs1 moves to rs2 and rows are rewritten
# Peers are new in every round: a kill can leave one unreported write per peer behind, and only one may
# stand between the last reported secret and the check (it then sits in rs2).


def main() -> None:
    path, writer, round_ = pathlib.Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    cache = ZrtpCache(path)
    out = sys.stdout
    i = 0
    while True:
        zid = bytes([writer]) + round_.to_bytes(4, "big") + (i % PEERS).to_bytes(7, "big")
        rs1 = os.urandom(32)
        try:
            cache.store_new_rs1(zid, rs1, NEVER_EXPIRES, time.time())
        except CacheError:
            out.write("refused\n")
        else:
            out.write(f"{zid.hex()} {rs1.hex()}\n")
        if i % 5 == 0:
            with contextlib.suppress(CacheError):
                cache.set_verified(zid, True)
        if i % 7 == 0:
            with contextlib.suppress(CacheError):
                cache.touch(zid, time.time(), name=f"peer {writer}/{i % PEERS}")
        out.flush()
        i += 1


if __name__ == "__main__":
    main()
