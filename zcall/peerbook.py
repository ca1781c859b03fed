"""The LAN as the phone knows it: this unit's announcement and the units discovery found, by ZID (two units
may announce one name).

Discovery's own table (discovery/table.py) caps and rate-limits what arrives; what arrives before the phone
said `ready` is held back here and replayed, so the faces see `ready` first.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from zcall import events
from zcall.discovery.lan import Discovery, DiscoveryError
from zcall.discovery.service import PeerDown, PeerUp


class PeerBook:
    def __init__(self, emit: Callable[[events.Event], None]) -> None:
        self._emit = emit
        self._peers: dict[bytes, PeerUp] = {}
        self._early: list[PeerUp | PeerDown] | None = []  # seen before `ready` went out
        self.discovery: Discovery | None = None

    async def start(self, name: str, zid: bytes, sip_port: int, local_ip: str, aor: str | None) -> None:
        """Announce this unit and browse for others; without multicast the phone works on, said once."""
        self.discovery = Discovery(name, zid, sip_port, local_ip, on_event=self.on_discovery, aor=aor)
        try:
            await self.discovery.start()
        except DiscoveryError as exc:
            self._emit(events.Error(message=f"LAN discovery is off: {exc}"))
            self.discovery = None

    async def close(self) -> None:
        if self.discovery is not None:
            with contextlib.suppress(Exception):
                await self.discovery.close()

    def __iter__(self) -> Iterator[PeerUp]:
        return iter(list(self._peers.values()))

    def __len__(self) -> int:
        return len(self._peers)

    def open(self) -> None:
        """The phone is ready: report what was seen so far, and everything from now on."""
        early, self._early = self._early or [], None
        for seen in early:
            self.on_discovery(seen)

    def on_discovery(self, event: PeerUp | PeerDown) -> None:
        if self._early is not None:
            self._early.append(event)
            return
        if isinstance(event, PeerDown):
            if self._peers.pop(event.zid, None) is not None:
                self._emit(events.Peer(action="down", name=event.name, zid=event.zid.hex()))
            return
        self._peers[event.zid] = event
        self._emit(
            events.Peer(
                action="up", name=event.name, zid=event.zid.hex(), address=event.address, port=event.sip_port
            )
        )

    def at(self, address: str) -> bytes | None:
        """The ZID of the one discovered unit at this address (None if none or several share it)."""
        zids = {p.zid for p in self._peers.values() if p.address == address}
        return zids.pop() if len(zids) == 1 else None

    def with_aor(self, aor: str) -> bytes | None:
        """The ZID of the one discovered unit announcing this server account (user@host), if one does."""
        wanted = aor.lower()
        zids = {p.zid for p in self._peers.values() if p.aor is not None and p.aor.lower() == wanted}
        return zids.pop() if len(zids) == 1 else None

    def status(self) -> list[dict[str, object]]:
        return [{"name": p.name, "zid": p.zid.hex(), "address": p.address, "port": p.sip_port} for p in self]
