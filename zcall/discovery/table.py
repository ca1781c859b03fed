"""The units seen on the LAN, keyed by ZID, bounded in size and in how fast announcements are followed.

Sans-I/O: Discovery feeds it what mDNS resolved and the clock. Keyed by ZID, not by name, because a name is
whatever a unit (or an attacker) announces: two units that announce the same name are both listed, and the
one the user verified can be told from the other by its ZID (roster.py says which is which). A LAN full of
forged announcements cannot grow the table past `capacity` or make us resolve faster than `rate` per second.
"""

from __future__ import annotations

import collections

from zcall.discovery.service import PeerDown, PeerUp

MAX_PEERS = 64  # a desk phone's LAN holds a handful of units; far more is a flood
RESOLVES_PER_S = 10.0
RESOLVE_BURST = 20  # a LAN's worth of units answering one browse query at start


class PeerTable:
    def __init__(
        self,
        capacity: int = MAX_PEERS,
        rate: float = RESOLVES_PER_S,
        burst: int = RESOLVE_BURST,
        drops: collections.Counter[str] | None = None,
    ) -> None:
        self.capacity = capacity
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._last: float | None = None
        self._by_zid: dict[bytes, PeerUp] = {}
        self.drops: collections.Counter[str] = collections.Counter() if drops is None else drops

    def admit_resolve(self, now: float) -> bool:
        """May one more announcement be looked up now? (token bucket; refused ones are counted)"""
        if self._last is not None:
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens < 1.0:
            self.drops["rate-limited"] += 1
            return False
        self._tokens -= 1.0
        return True

    def update(self, peer: PeerUp) -> list[PeerUp]:
        """A resolved announcement: the events to emit (none when nothing changed or the table is full)."""
        if self._by_zid.get(peer.zid) == peer:
            return []
        if peer.zid not in self._by_zid and len(self._by_zid) >= self.capacity:
            self.drops["table-full"] += 1
            return []
        self._by_zid[peer.zid] = peer
        return [peer]

    def remove_name(self, name: str) -> list[PeerDown]:
        """Every unit listed under this instance name said goodbye (mDNS cannot tell whose it was)."""
        gone = [p for p in self._by_zid.values() if p.name.lower() == name.lower()]
        for peer in gone:
            del self._by_zid[peer.zid]
        return [PeerDown(name=p.name, zid=p.zid) for p in gone]

    def names(self) -> set[str]:
        return {p.name.lower() for p in self._by_zid.values()}

    def peers(self) -> list[PeerUp]:
        return list(self._by_zid.values())
