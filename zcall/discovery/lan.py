"""Find other zcall units on the LAN and let them find us (mDNS / DNS-SD via zeroconf's asyncio API).

We advertise `<name>._zcall._udp.local.` (and the same name under `_sip._udp.local.` for ordinary SIP
phones), browse `_zcall._udp.local.`, and turn what we see into PeerUp / PeerDown events. A display name
already taken on the LAN becomes "name (2)", "name (3)", ... so every unit stays reachable by name.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ipaddress
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable

import ifaddr
from zeroconf import (
    IPVersion,
    NonUniqueNameException,
    ServiceStateChange,
    Zeroconf,
    current_time_millis,
)
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from zcall import __version__
from zcall.discovery.service import (
    MAX_NAME_BYTES,
    SIP_SERVICE,
    ZCALL_SERVICE,
    PeerDown,
    PeerUp,
    TxtError,
    check_name,
    decode_txt,
    encode_txt,
)
from zcall.discovery.table import MAX_PEERS, PeerTable
from zcall.errors import ZcallError

log = logging.getLogger(__name__)

Event = PeerUp | PeerDown

# PTR/TXT default to 75 minutes (RFC 6762); a desk unit that loses power should vanish within minutes.
RECORD_TTL = 120
RESOLVE_TIMEOUT_MS = 3000
MAX_RENAMES = 32
REANNOUNCE_DELAY_S = 1.0  # let the loser's goodbyes land before we re-announce the shared name
# Two units can only miss each other's probes when they start at about the same time. Past this long after
# our first name went out, a rival under our name is a unit that did not probe (or lies about its ZID): we
# keep the name rather than let anyone walk us through MAX_RENAMES names until we stop advertising.
YIELD_WINDOW_S = 20.0
_DNS_TYPE_TXT = 16  # RFC 1035
_DNS_CLASS_IN = 1


class DiscoveryError(ZcallError):
    """Discovery could not start (no usable address, no free name, socket trouble)."""


def local_ipv4_addresses() -> list[str]:
    """Every non-loopback IPv4 address of this host, for the A records when no bind address is given."""
    found: list[str] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str) and not ipaddress.IPv4Address(ip.ip).is_loopback and ip.ip not in found:
                found.append(ip.ip)
    return found


def candidate_name(base: str, n: int) -> str:
    """The n-th name to try: base, then "base (2)", ..., trimmed so the label stays within 63 bytes."""
    if n == 1:
        return base
    suffix = f" ({n})"
    room = MAX_NAME_BYTES - len(suffix.encode("utf-8"))
    trimmed = base.encode("utf-8")[:room].decode("utf-8", errors="ignore").rstrip()
    return trimmed + suffix


def instance_label(service_name: str, service_type: str = ZCALL_SERVICE) -> str | None:
    """'Desk._zcall._udp.local.' -> 'Desk'; None when the name is not of that type."""
    suffix = "." + service_type
    if not service_name.lower().endswith(suffix.lower()) or len(service_name) == len(suffix):
        return None
    return service_name[: -len(suffix)]


class Discovery:
    """Advertise this unit and browse for others. Events arrive on `events` (or through `async for`)."""

    def __init__(
        self,
        name: str,
        zid: bytes,
        sip_port: int,
        bind_ip: str | None = None,
        *,
        version: str = __version__,
        on_event: Callable[[Event], None] | None = None,
        on_rename: Callable[[str, str], None] | None = None,
        probe: bool = True,
        advertise: bool = True,
        aor: str | None = None,
    ) -> None:
        encode_txt(zid, sip_port, check_name(name), version, aor)  # validate everything up front
        self.aor = aor
        if bind_ip is not None:
            ipaddress.IPv4Address(bind_ip)
        self.requested_name = name
        self.name = name  # becomes the registered (possibly renamed) name after start()
        self.zid = zid
        self.sip_port = sip_port
        self.bind_ip = bind_ip
        self.version = version
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self.drops: collections.Counter[str] = collections.Counter()  # why announcements were ignored
        self._on_event = on_event
        self._on_rename = on_rename  # (old, new) after a late name conflict made us pick another name
        # probe=False skips mDNS probing, as if two units had probed at the same instant; tests use it to
        # make the late-conflict path happen on demand.
        self._probe = probe
        self.advertise = advertise  # False: browse only (`zcall peers` lists without showing up itself)
        self._azc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._table = PeerTable(drops=self.drops)  # by ZID, capped, lookups rate-limited
        self._resolving: dict[str, asyncio.Task[None]] = {}
        self._sip_task: asyncio.Future[None] | None = None
        self._addresses: list[str] = []
        self._zcall_info: AsyncServiceInfo | None = None  # set while registered
        self._sip_info: AsyncServiceInfo | None = None
        self._own_name_task: asyncio.Task[None] | None = None
        self._first_announced: float | None = None  # loop time our first name went out
        self._closed = False

    # -- lifecycle ------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open sockets, start browsing, then register (probing takes about 1.5 s) under a unique name."""
        addresses = [self.bind_ip] if self.bind_ip else local_ipv4_addresses()
        if not addresses:
            raise DiscoveryError("no IPv4 address to advertise")
        try:
            self._azc = AsyncZeroconf(
                interfaces=[self.bind_ip] if self.bind_ip else addresses, ip_version=IPVersion.V4Only
            )
        except OSError as exc:
            raise DiscoveryError(f"cannot open mDNS sockets: {exc}") from exc
        # Browse first: answers to our browse query fill the cache, so a name already in use is seen early.
        self._browser = AsyncServiceBrowser(self._azc.zeroconf, [ZCALL_SERVICE], handlers=[self._on_change])
        self._addresses = addresses
        if self.advertise:
            await self._register(addresses)

    async def _register(self, addresses: list[str], avoid: tuple[str, ...] = ()) -> None:
        assert self._azc is not None
        taken = self._table.names() | {name.lower() for name in avoid}
        for n in itertools.count(1):
            if n > MAX_RENAMES:
                raise DiscoveryError(f"no free name like {self.requested_name!r} on this LAN")
            candidate = candidate_name(self.requested_name, n)
            if candidate.lower() in taken:
                continue
            info = self._service_info(ZCALL_SERVICE, candidate, addresses)
            try:
                announced = await self._azc.async_register_service(
                    info, cooperating_responders=not self._probe
                )
            except NonUniqueNameException:
                log.info("mDNS name %r is taken, trying another", candidate)
                continue
            self.name = candidate
            self._zcall_info = info
            break
        # The _sip._udp twin is only for ordinary SIP phones: it probes in the background so start() returns
        # once zcall units can see us, and if its name is taken zeroconf picks another.
        self._sip_info = self._service_info(SIP_SERVICE, self.name, addresses)
        self._sip_task = asyncio.ensure_future(self._register_sip(self._sip_info))
        await announced
        if self._first_announced is None:
            self._first_announced = asyncio.get_running_loop().time()

    async def _register_sip(self, info: AsyncServiceInfo) -> None:
        assert self._azc is not None
        try:
            await (await self._azc.async_register_service(info, allow_name_change=True))
        except Exception as exc:  # not fatal: zcall peers still find us through _zcall._udp
            log.warning("could not advertise %s: %s", SIP_SERVICE, exc)

    def _service_info(self, service_type: str, name: str, addresses: list[str]) -> AsyncServiceInfo:
        return AsyncServiceInfo(
            service_type,
            f"{name}.{service_type}",
            port=self.sip_port,
            properties=encode_txt(self.zid, self.sip_port, name, self.version, self.aor),
            parsed_addresses=addresses,
            host_ttl=RECORD_TTL,
            other_ttl=RECORD_TTL,
        )

    async def close(self) -> None:
        """Say goodbye (peers see us go at once) and release the sockets."""
        if self._closed:
            return
        self._closed = True
        for task in self._resolving.values():
            task.cancel()
        for task in list(self._resolving.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._resolving.clear()
        if self._own_name_task is not None:
            self._own_name_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._own_name_task
        if self._sip_task is not None:
            self._sip_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sip_task
        if self._browser is not None:
            await self._browser.async_cancel()
        if self._azc is not None:
            with contextlib.suppress(Exception):  # goodbyes are best effort; closing must not fail
                await self._azc.async_unregister_all_services()
            await self._azc.async_close()

    async def __aenter__(self) -> Discovery:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            yield await self.events.get()

    def peers(self) -> list[PeerUp]:
        """The units currently visible, one per ZID (two units may announce the same name)."""
        return self._table.peers()

    # -- browsing -------------------------------------------------------------------------------------------

    def _on_change(
        self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        # Called on the event loop by zeroconf's browser; keyword names are zeroconf's contract.
        if self._closed:
            return
        label = instance_label(name, service_type)
        if label is None:
            self.drops["bad-instance-name"] += 1
            return
        if self._zcall_info is not None and label.lower() == self.name.lower():
            self._own_name_changed(label, state_change is ServiceStateChange.Removed)
            return
        if state_change is ServiceStateChange.Removed:
            pending = self._resolving.pop(name.lower(), None)
            if pending is not None:
                pending.cancel()
            for gone in self._table.remove_name(label):
                self._emit(gone)
            return
        self._schedule_resolve(zeroconf, service_type, name, label)

    def _schedule_resolve(self, zeroconf: Zeroconf, service_type: str, name: str, label: str) -> None:
        previous = self._resolving.get(name.lower())
        if previous is not None:
            previous.cancel()
        elif len(self._resolving) >= MAX_PEERS:
            self.drops["too-many-lookups"] += 1
            return
        elif not self._table.admit_resolve(time.monotonic()):
            return  # a flood of announcements is looked up only as fast as allowed (counted)
        task = asyncio.ensure_future(self._resolve(zeroconf, service_type, name, label))
        self._resolving[name.lower()] = task

    async def _resolve(self, zeroconf: Zeroconf, service_type: str, name: str, label: str) -> None:
        try:
            info = AsyncServiceInfo(service_type, name)
            if not await info.async_request(zeroconf, RESOLVE_TIMEOUT_MS):
                self.drops["unresolved"] += 1
                return
            try:
                announcement = decode_txt(info.text or b"")
            except TxtError as exc:
                self.drops[exc.reason] += 1
                return
            if announcement.zid == self.zid:
                self.drops["self"] += 1  # our own records, or a unit cloned with our identity
                return
            addresses = info.parsed_addresses(IPVersion.V4Only)
            if not addresses or info.port is None or not 1 <= info.port <= 65535:
                self.drops["no-address"] += 1
                return
            peer = PeerUp(
                name=label,
                zid=announcement.zid,
                address=addresses[0],
                port=info.port,
                sip_port=announcement.sip_port,
                aor=announcement.aor,
            )
            # Keyed by ZID: a second unit announcing a listed name is listed too, never in its place.
            for event in self._table.update(peer):
                self._emit(event)
        finally:
            if self._resolving.get(name.lower()) is asyncio.current_task():
                del self._resolving[name.lower()]

    # -- our own name: late conflicts ------------------------------------------------------------------------
    #
    # Probing cannot see a unit that probes the same name at the same moment (zeroconf answers probes only for
    # names it has finished registering). So once registered we keep watching our own name: if records with
    # another ZID appear there, the unit with the lower ZID keeps the name and the other one renames itself
    # (RFC 6762 §9 in spirit; the ZID is our deterministic tie-break).

    def _own_name_changed(self, label: str, removed: bool) -> None:
        # Whoever else held this name is not a separate peer while we hold it.
        for gone in self._table.remove_name(label):
            self._emit(gone)
        if self._own_name_task is not None and not self._own_name_task.done():
            return  # one check or rename at a time; it re-reads the cache when it runs
        self._own_name_task = asyncio.ensure_future(self._defend_name(removed))

    def _rivals(self) -> set[bytes]:
        """ZIDs other than ours in the TXT records cached under our own service name."""
        assert self._azc is not None and self._zcall_info is not None
        zc = self._azc.zeroconf
        rivals: set[bytes] = set()
        now = current_time_millis()
        for record in zc.cache.async_all_by_details(self._zcall_info.name, _DNS_TYPE_TXT, _DNS_CLASS_IN):
            text = getattr(record, "text", None)  # TXT records are DNSText
            if not isinstance(text, bytes) or record.is_expired(now):
                continue
            try:
                zid = decode_txt(text).zid
            except TxtError:
                continue
            if zid != self.zid:
                rivals.add(zid)
        return rivals

    async def _defend_name(self, removed: bool) -> None:
        try:
            await self._settle_name(removed)
        except Exception as exc:  # a background task: report, never leave an unretrieved exception behind
            log.warning("could not settle mDNS name %r: %s", self.name, exc)

    async def _settle_name(self, removed: bool) -> None:
        if self._azc is None or self._zcall_info is None:
            return
        rivals = self._rivals()
        if any(rival < self.zid for rival in rivals) and self._may_yield():
            await self._rename()
            return
        if rivals or removed:
            # We keep the name: after the loser's goodbyes (which also withdraw the shared PTR record),
            # announce again so every cache points at us.
            await asyncio.sleep(REANNOUNCE_DELAY_S)
            if self._zcall_info is not None:
                await (await self._azc.async_update_service(self._zcall_info))

    def _may_yield(self) -> bool:
        first = self._first_announced
        return first is None or asyncio.get_running_loop().time() - first <= YIELD_WINDOW_S

    async def _rename(self) -> None:
        assert self._azc is not None and self._zcall_info is not None
        old_name, old_service = self.name, self._zcall_info.name
        log.warning("mDNS name %r is also claimed by another unit; renaming", old_name)
        if self._sip_task is not None:
            self._sip_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sip_task
        infos = [self._zcall_info] + ([self._sip_info] if self._sip_info is not None else [])
        self._zcall_info = self._sip_info = None
        for info in infos:
            with contextlib.suppress(Exception):  # if it never finished registering, nothing to withdraw
                await (await self._azc.async_unregister_service(info))
        await self._register(self._addresses, avoid=(old_name,))
        if self._on_rename is not None:
            self._on_rename(old_name, self.name)
        # The unit that kept the old name is a peer: look it up now, as nothing new will announce it to us.
        self._schedule_resolve(self._azc.zeroconf, ZCALL_SERVICE, old_service, old_name)

    def _emit(self, event: Event) -> None:
        self.events.put_nowait(event)
        if self._on_event is not None:
            self._on_event(event)
