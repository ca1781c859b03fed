"""RFC 3263 server location: the pure ordering, and the resolver wrapper against a real DNS server on loopback
(a tiny authoritative server built from dnspython's message code, so answers travel as real DNS packets)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any, cast

import dns.asyncresolver
import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest
from hypothesis import given
from hypothesis import strategies as st

from zcall.sip.locate import Hop, LocateError, Locator, Naptr, Srv, naptr_services, plan, srv_order
from zcall.sip.uri import parse_uri

# ------------------------------------------------------------------ pure ordering


def test_plan_follows_rfc3263_section_4() -> None:
    assert plan(parse_uri("sips:10.1.2.3")).direct == Hop("10.1.2.3", 5061)
    assert plan(parse_uri("sips:[2001:db8::1]:5071")).direct == Hop("2001:db8::1", 5071)
    explicit = plan(parse_uri("sips:Example.ORG:5062"))
    assert (explicit.direct, explicit.port, explicit.domain) == (None, 5062, "example.org")
    walk = plan(parse_uri("sips:example.org"))
    assert (walk.direct, walk.port) == (None, None)
    assert plan(parse_uri("sips:example.org;maddr=10.0.0.9")).direct == Hop("10.0.0.9", 5061)


def test_naptr_keeps_sips_over_tls_in_order_then_preference() -> None:
    records = [
        Naptr(20, 10, "s", "SIPS+D2T", "_sips._tcp.b.example"),
        Naptr(10, 50, "s", "SIPS+D2T", "_sips._tcp.c.example"),
        Naptr(10, 10, "S", "sips+d2t", "_sips._tcp.a.example"),
        Naptr(5, 1, "s", "SIP+D2U", "_sip._udp.example"),  # plain UDP: never
        Naptr(5, 1, "a", "SIPS+D2T", "x.example"),  # not an SRV step
    ]
    assert naptr_services(records) == ["_sips._tcp.a.example", "_sips._tcp.c.example", "_sips._tcp.b.example"]


def test_srv_lowest_priority_first_and_dot_means_no_service() -> None:
    rng = random.Random(1)
    records = [
        Srv(20, 0, 5061, "backup.example"), Srv(10, 5, 5061, "a.example"), Srv(10, 5, 5062, "b.example")
    ]
    ordered = srv_order(records, rng)
    assert [r.priority for r in ordered] == [10, 10, 20]
    assert ordered[-1].target == "backup.example"
    assert srv_order([Srv(0, 0, 0, ".")], rng) == []


def test_srv_weights_share_the_first_pick() -> None:
    rng = random.Random(7)
    heavy, light = Srv(10, 90, 5061, "heavy.example"), Srv(10, 10, 5061, "light.example")
    zero = Srv(10, 0, 5061, "zero.example")
    firsts = [srv_order([light, heavy, zero], rng)[0].target for _ in range(4000)]
    share = firsts.count("heavy.example") / len(firsts)
    assert 0.85 < share < 0.95, share  # 90 of 100 weight units (a zero weight is picked only at pick == 0)
    assert 0 < firsts.count("zero.example") < 120


_targets = st.sampled_from(["a.example", "b.example", "c.example", "."])
srv_records = st.lists(
    st.builds(Srv, st.integers(0, 3), st.integers(0, 5), st.integers(1, 65535), _targets), max_size=8
)


@given(srv_records, st.integers(0, 2**32))
def test_srv_order_is_a_priority_sorted_permutation(records: list[Srv], seed: int) -> None:
    ordered = srv_order(records, random.Random(seed))
    if len(records) == 1 and records[0].target == ".":
        assert ordered == []
        return
    assert sorted(ordered, key=repr) == sorted((r for r in records if r.target != "."), key=repr)
    assert [r.priority for r in ordered] == sorted(r.priority for r in ordered)


# ------------------------------------------------------------------ the resolver, against a DNS server


class _Zone(asyncio.DatagramProtocol):
    """Answers from a dict {(name, type): [rdata text]}; names absent from it are NXDOMAIN."""

    def __init__(self, records: dict[tuple[str, str], list[str]], mode: str = "answer") -> None:
        self.records = records
        self.mode = mode  # "answer" | "silent" | "servfail"
        self.queries: list[tuple[str, str]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        query = dns.message.from_wire(data)
        question = query.question[0]
        name = question.name.to_text().rstrip(".").lower()
        kind = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, kind))
        if self.mode == "silent":
            return
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if self.mode == "servfail":
            response.set_rcode(dns.rcode.SERVFAIL)
        elif not any(n == name or n.endswith("." + name) for n, _ in self.records):  # parents exist too
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif (name, kind) in self.records:
            rrset = dns.rrset.from_text_list(name + ".", 60, "IN", kind, self.records[(name, kind)])
            response.answer.append(rrset)
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


Serve = Any


@pytest.fixture
async def dns_server() -> AsyncIterator[Serve]:
    made: list[asyncio.DatagramTransport] = []

    async def serve(records: dict[tuple[str, str], list[str]], mode: str = "answer") -> tuple[Locator, _Zone]:
        loop = asyncio.get_running_loop()
        transport, zone = await loop.create_datagram_endpoint(
            lambda: _Zone(records, mode), local_addr=("127.0.0.1", 0)
        )
        made.append(transport)
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = transport.get_extra_info("sockname")[1]
        resolver.timeout = 0.3
        return Locator(resolver, random.Random(3), lifetime=0.8), zone

    yield serve
    for transport in made:
        transport.close()


EXAMPLE = {
    ("example.org", "NAPTR"): [
        '10 10 "s" "SIPS+D2T" "" _sips._tcp.example.org.',
        '20 10 "s" "SIP+D2U" "" _sip._udp.example.org.',
    ],
    ("_sips._tcp.example.org", "SRV"): ["10 0 5061 one.example.org.", "20 0 5071 two.example.org."],
    ("one.example.org", "A"): ["10.9.0.1", "10.9.0.2"],
    ("two.example.org", "A"): ["10.9.0.3"],
    ("two.example.org", "AAAA"): ["2001:db8::3"],
}


async def test_naptr_then_srv_then_addresses(dns_server: Serve) -> None:
    locator, zone = await dns_server(EXAMPLE)
    hops = await locator.hops(parse_uri("sips:example.org"))
    assert hops == [Hop("one.example.org", 5061), Hop("two.example.org", 5071)]
    assert sorted(await locator.addresses(hops[0])) == ["10.9.0.1", "10.9.0.2"]
    assert await locator.addresses(hops[1]) == ["10.9.0.3", "2001:db8::3"]
    assert zone.queries[:2] == [("example.org", "NAPTR"), ("_sips._tcp.example.org", "SRV")]


async def test_no_naptr_goes_to_srv_and_no_srv_to_the_domain_itself(dns_server: Serve) -> None:
    records = {k: v for k, v in EXAMPLE.items() if k[1] != "NAPTR"}
    locator, _ = await dns_server(records)
    assert (await locator.hops(parse_uri("sips:example.org")))[0] == Hop("one.example.org", 5061)
    locator, zone = await dns_server({("example.org", "A"): ["10.9.0.7"]})
    assert await locator.hops(parse_uri("sips:example.org")) == [Hop("example.org", 5061)]
    assert ("_sips._tcp.example.org", "SRV") in zone.queries


async def test_explicit_port_and_ip_skip_the_walk(dns_server: Serve) -> None:
    locator, zone = await dns_server(EXAMPLE)
    assert await locator.hops(parse_uri("sips:one.example.org:5099")) == [Hop("one.example.org", 5099)]
    assert await locator.hops(parse_uri("sips:10.1.1.1")) == [Hop("10.1.1.1", 5061)]
    assert zone.queries == []


@pytest.mark.parametrize(
    ("mode", "name", "reason"),
    [
        ("answer", "nowhere.example", "no such domain"),
        ("silent", "example.org", "DNS timeout"),
        ("servfail", "example.org", "DNS server failure"),
    ],
)
async def test_failures_carry_a_fixed_reason(dns_server: Serve, mode: str, name: str, reason: str) -> None:
    locator, _ = await dns_server(EXAMPLE, mode)
    with pytest.raises(LocateError) as caught:
        await locator.hops(parse_uri(f"sips:{name}"))
    assert caught.value.reason == reason
    assert name in str(caught.value)


async def test_a_target_without_addresses_is_reported(dns_server: Serve) -> None:
    records = dict(EXAMPLE)
    records[("three.example.org", "TXT")] = ['"no address here"']
    locator, _ = await dns_server(records)
    with pytest.raises(LocateError) as caught:
        await locator.addresses(Hop("three.example.org", 5061))
    assert caught.value.reason == "no address records"
    with pytest.raises(LocateError) as caught:
        await locator.addresses(Hop("gone.example.org", 5061))
    assert caught.value.reason == "no such domain"


async def test_srv_saying_no_service_is_reported(dns_server: Serve) -> None:
    locator, _ = await dns_server({("_sips._tcp.example.org", "SRV"): ["0 0 0 ."]})
    with pytest.raises(LocateError) as caught:
        await locator.hops(parse_uri("sips:example.org"))
    assert caught.value.reason == "service not offered"
