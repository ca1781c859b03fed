"""Finding the SIP server of a domain (RFC 3263 §4), for sips: over TLS only.

The ordering is pure: `plan()` says what to look up for a URI, `naptr_services()` keeps the SIPS+D2T
records in (order, preference) order, `srv_order()` sorts SRV records by priority and weighted chance
(RFC 2782). The `Locator` is the thin asyncio part: dnspython's resolver, configured from the system's
resolv.conf. Lookups are lazy: the caller tries each hop's addresses in turn and resolves the next hop only
when those fail.

The certificate of whichever host answers is checked against the SIP domain, not the SRV target
(RFC 5922 §4.1): DNS is not trusted to say who the server is, only where to look for it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.resolver

from zcall.errors import ZcallError
from zcall.net import is_ip_literal
from zcall.sip.uri import SipUri

SIPS_SERVICE = "SIPS+D2T"  # RFC 3263 §4.1: SIP over TLS over TCP
SIPS_SRV_PREFIX = "_sips._tcp."
DEFAULT_PORT = 5061
LOOKUP_LIFETIME_S = 5.0  # per query, all retries included
MAX_HOPS = 16  # SRV targets tried at most (a zone cannot make us walk forever)
MAX_ADDRESSES = 8  # addresses tried per target


class LocateError(ZcallError):
    """DNS could not say where the server is. `reason` is one of REASONS; `name` the name looked up."""

    REASONS = (
        "no such domain",
        "no address records",
        "DNS timeout",
        "DNS server failure",
        "no DNS resolver configured",
        "service not offered",
        "DNS error",
    )

    def __init__(self, reason: str, name: str) -> None:
        assert reason in self.REASONS
        super().__init__(f"{name}: {reason}")
        self.reason = reason
        self.name = name


@dataclass(frozen=True)
class Naptr:
    order: int
    preference: int
    flags: str
    service: str
    replacement: str


@dataclass(frozen=True)
class Srv:
    priority: int
    weight: int
    port: int
    target: str


@dataclass(frozen=True)
class Hop:
    """A host to connect to (a name still to resolve, or an address) and its port."""

    host: str
    port: int


@dataclass(frozen=True)
class Plan:
    """What RFC 3263 says to do for a URI: connect at once, look up addresses only, or walk NAPTR → SRV."""

    domain: str
    direct: Hop | None = None  # an IP literal: no DNS at all
    port: int | None = None  # an explicit port: A/AAAA of the host only (§4.2)


def plan(uri: SipUri) -> Plan:
    """RFC 3263 §4: a numeric host is used as is; a port skips NAPTR and SRV; else NAPTR, then SRV."""
    host = (uri.params.get("maddr") or uri.host).strip("[]").rstrip(".").lower()
    if is_ip_literal(host):
        return Plan(host, direct=Hop(host, uri.port or DEFAULT_PORT))
    return Plan(host, port=uri.port)


def naptr_services(records: Iterable[Naptr]) -> list[str]:
    """The SRV names of the SIPS+D2T records, best first (order, then preference; RFC 3403 §4.1)."""
    usable = [
        r for r in records if r.service.upper() == SIPS_SERVICE and r.flags.lower() == "s" and r.replacement
    ]
    return [r.replacement for r in sorted(usable, key=lambda r: (r.order, r.preference))]


def srv_order(records: Sequence[Srv], rng: random.Random) -> list[Srv]:
    """RFC 2782: lowest priority first; within one priority a weighted random order (zero weights first in the
    running sum, so they are picked rarely but still picked). A lone "." target means: no such service."""
    if len(records) == 1 and records[0].target in ("", "."):
        return []
    out: list[Srv] = []
    for priority in sorted({r.priority for r in records}):
        group = sorted((r for r in records if r.priority == priority), key=lambda r: r.weight != 0)
        while group:
            total = sum(r.weight for r in group)
            pick = rng.randint(0, total)
            running = 0
            for index, record in enumerate(group):
                running += record.weight
                if running >= pick:
                    out.append(group.pop(index))
                    break
    return [r for r in out if r.target not in ("", ".")]


def _name(value: object) -> str:
    return str(value).rstrip(".").lower()


class Locator:
    """RFC 3263 lookups with dnspython's asyncio resolver (the system's resolv.conf unless one is given)."""

    def __init__(
        self, resolver: dns.asyncresolver.Resolver | None = None, rng: random.Random | None = None,
        lifetime: float = LOOKUP_LIFETIME_S,
    ) -> None:  # fmt: skip
        self._resolver = resolver
        self._rng = rng or random.SystemRandom()
        self.lifetime = lifetime

    def _get_resolver(self) -> dns.asyncresolver.Resolver:
        if self._resolver is None:
            try:
                self._resolver = dns.asyncresolver.Resolver()  # reads /etc/resolv.conf now
            except dns.resolver.NoResolverConfiguration as exc:
                raise LocateError("no DNS resolver configured", "resolv.conf") from exc
        return self._resolver

    async def _query(self, name: str, rdtype: str) -> list[Any] | None:
        """The records, or None when the name exists without records of this type."""
        try:
            answer = await self._get_resolver().resolve(name, rdtype, lifetime=self.lifetime, search=False)
        except dns.resolver.NoAnswer:
            return None
        except dns.resolver.NXDOMAIN as exc:
            raise LocateError("no such domain", name) from exc
        except dns.exception.Timeout as exc:
            raise LocateError("DNS timeout", name) from exc
        except dns.resolver.NoNameservers as exc:
            raise LocateError("DNS server failure", name) from exc
        except dns.exception.DNSException as exc:
            raise LocateError("DNS error", name) from exc
        return list(answer)

    async def hops(self, uri: SipUri) -> list[Hop]:
        """Where to connect, best first: targets whose addresses are looked up later (see addresses())."""
        where = plan(uri)
        if where.direct is not None:
            return [where.direct]
        if where.port is not None:
            return [Hop(where.domain, where.port)]
        naptr = await self._query(where.domain, "NAPTR") or []
        records = [
            Naptr(r.order, r.preference, r.flags.decode(errors="replace"), r.service.decode(errors="replace"),
                  _name(r.replacement))
            for r in naptr
        ]  # fmt: skip
        services = naptr_services(records) or [SIPS_SRV_PREFIX + where.domain]
        for service in services:
            try:
                srv = await self._query(service, "SRV")
            except LocateError as exc:
                if exc.reason != "no such domain":
                    raise
                srv = None
            if srv is None:
                continue
            found = [Srv(r.priority, r.weight, r.port, _name(r.target)) for r in srv]
            ordered = srv_order(found, self._rng)
            if not ordered:
                raise LocateError("service not offered", service)
            return [Hop(r.target, r.port) for r in ordered[:MAX_HOPS]]
        # No SRV: the domain's own addresses at the default port (§4.2).
        return [Hop(where.domain, DEFAULT_PORT)]

    async def addresses(self, hop: Hop) -> list[str]:
        """A hop's IPv4 then IPv6 addresses (zcall's own addresses are IPv4, so those are tried first)."""
        if is_ip_literal(hop.host):
            return [hop.host]
        lookups = (self._query(hop.host, "A"), self._query(hop.host, "AAAA"))
        results: list[list[Any] | BaseException | None] = list(
            await asyncio.gather(*lookups, return_exceptions=True)
        )
        v4 = results[0]
        found: list[str] = []
        for result in results:
            if isinstance(result, BaseException) and not (
                isinstance(result, LocateError) and result.reason == "no such domain"
            ):
                raise result
            if isinstance(result, list):
                found += [str(r) for r in result]
        if not found:
            if isinstance(v4, LocateError):
                raise v4
            raise LocateError("no address records", hop.host)
        return found[:MAX_ADDRESSES]
