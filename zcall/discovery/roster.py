"""Discovered units against the trust list: which are the devices the user verified, and which only claim
one's name.

A name on the LAN is whatever a unit announces; a ZID is proven by ZRTP. So a unit whose ZID is a verified
trust entry is that device, whatever it calls itself; a unit with another ZID that announces the name of a
verified device (or that name with mDNS's " (2)" suffix) is an impostor until proven otherwise, listed apart
and never with the verified badge. The trust entry's name is the one the user gave (network names never
rename it, see cache.touch), so it is the reference here.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from zcall.discovery.service import PeerUp

_RENAME_SUFFIX = re.compile(r" \(\d{1,3}\)$")  # what candidate_name() adds on a name conflict


class TrustEntry(Protocol):
    """What roster needs of cache.PeerRecord."""

    @property
    def zid(self) -> bytes: ...

    @property
    def name(self) -> str: ...

    @property
    def verified(self) -> bool: ...


class Standing(enum.StrEnum):
    VERIFIED = "verified"  # its ZID is a device whose words were compared
    KNOWN = "known"  # its ZID is in the trust list, not verified
    NEW = "new"  # never met
    IMPOSTOR = "impostor"  # another ZID announcing a verified device's name


@dataclass(frozen=True)
class Listing:
    peer: PeerUp
    standing: Standing
    claims: bytes | None = None  # for an impostor: the ZID of the verified device whose name it announces


def name_key(name: str) -> str:
    """The name a unit claims, as compared: case-folded, without a conflict suffix like " (2)"."""
    return _RENAME_SUFFIX.sub("", name.strip()).casefold()


def verified_owner(name: str, trusted: Iterable[TrustEntry]) -> bytes | None:
    """The ZID of the verified device that this name belongs to, if exactly one does."""
    key = name_key(name)
    owners = {t.zid for t in trusted if t.verified and t.name and name_key(t.name) == key}
    return owners.pop() if len(owners) == 1 else None


def classify(peers: Iterable[PeerUp], trusted: Iterable[TrustEntry]) -> list[Listing]:
    """Every discovered unit with its standing: verified first, then known, new, and impostors last."""
    entries = list(trusted)
    by_zid = {t.zid: t for t in entries}
    listings = []
    for peer in peers:
        entry = by_zid.get(peer.zid)
        if entry is not None and entry.verified:
            listings.append(Listing(peer, Standing.VERIFIED))
            continue
        key = name_key(peer.name)
        claimed = [t.zid for t in entries if t.verified and t.name and name_key(t.name) == key]
        if claimed:
            listings.append(Listing(peer, Standing.IMPOSTOR, claims=claimed[0]))
        else:
            listings.append(Listing(peer, Standing.KNOWN if entry is not None else Standing.NEW))
    order = list(Standing)
    return sorted(
        listings, key=lambda item: (order.index(item.standing), item.peer.name.casefold(), item.peer.zid)
    )
