"""Where a call goes, as a pure function: names, ZIDs, verified names, URIs, bad input."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zcall.discovery.service import PeerUp
from zcall.routing import NotOnLan, RouteError, ServerRoute, account_of, resolve
from zcall.sip.errors import SipParseError
from zcall.sip.uri import parse_uri
from zcall.sipleg import LanLeg
from zcall.zrtp.cache import PeerRecord, ZrtpCache

BOB = PeerUp(name="bob", zid=bytes.fromhex("b0" * 12), address="10.0.0.2", port=5060, sip_port=5060)
EVE_AS_BOB = PeerUp(name="bob", zid=bytes.fromhex("ee" * 12), address="10.0.0.66", port=5060, sip_port=5060)
CAROL = PeerUp(name="carol", zid=bytes.fromhex("c0" * 12), address="10.0.0.3", port=5060, sip_port=5062)
LAN = LanLeg(lambda leg, event: None)


def verified(name: str, zid: bytes) -> list[PeerRecord]:
    return [PeerRecord(zid=zid, name=name, verified=True, first_seen=0.0, last_seen=0.0, has_secret=True)]


def test_a_discovered_name_carries_its_zid() -> None:
    route = resolve("carol", [BOB, CAROL], LAN, None)
    assert route.dest == ("10.0.0.3", 5062) and route.expected_zid == CAROL.zid and not route.dtls


def test_a_zid_or_a_unique_prefix_picks_the_unit() -> None:
    assert resolve(CAROL.zid.hex(), [BOB, CAROL], LAN, None).expected_zid == CAROL.zid
    assert resolve("c0c0c0", [BOB, CAROL], LAN, None).label == "carol"


def test_a_verified_name_points_at_its_device_even_when_an_impostor_advertises_it() -> None:
    trusted = verified("bob", BOB.zid)
    assert resolve("bob", [EVE_AS_BOB, BOB], LAN, None, trusted).dest == ("10.0.0.2", 5060)
    impostor = resolve("bob", [EVE_AS_BOB], LAN, None, trusted)
    # Only the impostor is there: it is called, but the call expects bob's ZID (identity_mismatch if not).
    assert impostor.dest == ("10.0.0.66", 5060) and impostor.expected_zid == BOB.zid


def test_two_units_with_one_name_are_told_apart_by_zid() -> None:
    with pytest.raises(RouteError, match=r"2 units are named 'bob'.*b0b0"):
        resolve("bob", [BOB, EVE_AS_BOB], LAN, None)


def test_a_verified_device_that_is_away_is_not_on_the_lan() -> None:
    with pytest.raises(NotOnLan, match="verified"):
        resolve("bob", [CAROL], LAN, None, verified("bob", BOB.zid))


def test_an_ipv4_uri_is_called_directly_with_zrtp() -> None:
    route = resolve("sip:x@10.9.9.9:5070", [], LAN, None)
    assert route.dest == ("10.9.9.9", 5070) and route.expected_zid is None and not route.dtls


@pytest.mark.parametrize("target", ["::::", "!!!", "sip:::", "a\x00b"])
def test_what_is_not_a_target_is_refused_at_once(target: str) -> None:
    with pytest.raises(RouteError) as info:
        resolve(target, [BOB], LAN, None)
    assert not isinstance(info.value, NotOnLan)


def test_an_unknown_name_may_still_show_up() -> None:
    with pytest.raises(NotOnLan):
        resolve("dave", [BOB], LAN, None)


def test_errors_quote_long_input_shortened() -> None:
    with pytest.raises(RouteError) as info:
        resolve("x" * 5000, [], LAN, None)
    assert len(str(info.value)) < 200


def test_through_the_server_with_dtls() -> None:
    server = ServerRoute(LAN, "example.org", ("10.0.0.9", 5061), registered=True)
    route = resolve("dave", [BOB], LAN, server)
    assert route.dtls and str(route.uri) == "sips:dave@example.org" and route.dest == ("10.0.0.9", 5061)
    with pytest.raises(RouteError, match="not registered"):
        resolve("dave", [], LAN, ServerRoute(LAN, "example.org", ("10.0.0.9", 5061), registered=False))


def test_a_uri_is_never_taken_for_a_verified_name() -> None:
    uri = "sip:zcall@10.0.0.7:5060"
    route = resolve(uri, [BOB], LAN, None, verified(uri, BOB.zid))
    assert route.dest == ("10.0.0.7", 5060) and route.expected_zid is None


@pytest.mark.parametrize(
    ("target", "account"),
    [
        ("dave", "dave@example.org"),
        ("sips:Dave@Example.ORG", "dave@example.org"),
        ("sip:dave@example.org:5070;transport=tls", "dave@example.org"),
        ("sips:example.org", None),  # no user: no account
        ("sips:a%40b@example.org", None),  # an escaped '@' would make two accounts look like one
    ],
)
def test_a_server_route_names_the_account_it_calls(target: str, account: str | None) -> None:
    server = ServerRoute(LAN, "example.org", ("10.0.0.9", 5061), registered=True)
    assert resolve(target, [], LAN, server).account == account


def test_a_lan_route_names_no_account() -> None:
    assert resolve("bob", [BOB], LAN, None).account is None


HOSTS = st.sampled_from(["example.org", "EXAMPLE.org:5061", "10.0.0.1;transport=tls", "[::1]"]) | st.text()
# User parts a SIP URI can carry, escapes included (an escaped '@', space, control or non-ASCII character).
USER_BITS = [*"aZ09-_.!~*'()&=+$,;?/", "%40", "%20", "%41", "%C4%B0", "%00", "%7F", "%E2%80%A8"]
USERS = st.lists(st.sampled_from(USER_BITS), max_size=120).map("".join) | st.text(max_size=300)


@given(USERS, HOSTS)
@settings(max_examples=300, deadline=None)
def test_any_account_a_uri_names_is_one_the_trust_cache_keeps(user: str, host: str) -> None:
    """What account_of() gives is always accepted by the cache (a ValueError there would break the call's
    cache write), and normalising it again changes nothing."""
    try:
        uri = parse_uri(f"sips:{user}@{host}")
    except SipParseError:
        return
    account = account_of(uri)
    if account is None:
        return
    with tempfile.TemporaryDirectory() as tmp, ZrtpCache(Path(tmp) / "c.sqlite") as cache:
        cache.remember_account(account, BOB.zid, 0.0)
        assert cache.account_zid(account) == BOB.zid
    assert account_of(parse_uri(f"sip:{uri.user}@{uri.host}")) == account
