"""Where a call goes: a pure function of the target, the discovered peers and the server account."""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from zcall.discovery.roster import TrustEntry, name_key, verified_owner
from zcall.discovery.service import PeerUp
from zcall.errors import ZcallError
from zcall.net import Addr
from zcall.sip.errors import SipParseError
from zcall.sip.uri import SipUri, parse_uri, unescape
from zcall.sipleg import SipLeg

MAX_TARGET_SHOWN = 80  # an error quotes at most this much of what was typed
MAX_NAME = 63  # a DNS label: the longest name a unit can advertise
MIN_ZID_PREFIX = 6  # hex digits of a ZID that are enough to pick a unit
MAX_ACCOUNT = 256  # user@host: longer is no account the trust cache keeps


class RouteError(ZcallError):
    """The target cannot be called; the message is for the user."""


class NotOnLan(RouteError):
    """A name no unit on the LAN has (yet): it may still show up."""


@dataclass(frozen=True)
class Route:
    """How a call reaches its target: request URI, first hop, label for the user, SIP leg, key agreement."""

    uri: SipUri
    dest: Addr
    label: str
    leg: SipLeg
    dtls: bool
    expected_zid: bytes | None = None  # the identity the target was chosen by
    fallback: str | None = None  # the peer's server AOR, tried when the LAN path does not answer
    account: str | None = None  # the server account called (account_of): the trust cache may know its ZID


@dataclass(frozen=True)
class ServerRoute:
    leg: SipLeg
    hostname: str
    proxy: Addr
    registered: bool


def shown(text: str) -> str:
    return repr(text if len(text) <= MAX_TARGET_SHOWN else text[:MAX_TARGET_SHOWN] + "…")


def is_sip_uri(text: str) -> bool:
    return text.lower().startswith(("sip:", "sips:"))


def looks_like_a_name(text: str) -> bool:
    """A unit's name (an mDNS label), not a URI or an address."""
    return (
        len(text) <= MAX_NAME and ":" not in text and text.isprintable() and any(c.isalnum() for c in text)
    )


def account_of(uri: SipUri) -> str | None:
    """The SIP account a URI names, as the trust cache keys it: user@host in lower case (sip: and sips:, a
    port and parameters name the same account). None for a URI without a user or one too odd to keep."""
    if not uri.is_sip or not uri.user or not uri.host:
        return None
    account = f"{unescape(uri.user)}@{uri.host}".lower()
    if len(account) > MAX_ACCOUNT or account.count("@") != 1 or not account.isprintable():
        return None
    return None if any(c.isspace() for c in account) else account


def _by_zid(wanted: str, peers: Sequence[PeerUp]) -> PeerUp | None:
    """A full ZID, or a prefix of one that only one discovered unit has."""
    text = wanted.lower()
    if len(text) < MIN_ZID_PREFIX or any(c not in "0123456789abcdef" for c in text):
        return None
    found = [p for p in peers if p.zid.hex().startswith(text)]
    return found[0] if len(found) == 1 else None


def _by_name(
    wanted: str, peers: Sequence[PeerUp], trusted: Iterable[TrustEntry]
) -> tuple[PeerUp, bytes] | None:
    """The unit a name points at, and the identity it must have. A name that belongs to a verified device
    points at that device: another unit announcing it is called, but ZRTP meeting its ZID raises
    identity_mismatch."""
    key = name_key(wanted)
    named = [p for p in peers if name_key(p.name) == key]
    owner = verified_owner(wanted, trusted)
    if owner is not None:
        genuine = [p for p in peers if p.zid == owner]
        if genuine:
            return genuine[0], owner
        if named:
            return named[0], owner
        raise NotOnLan(f"{shown(wanted)} (verified) is not on the LAN now")
    if len({p.zid for p in named}) > 1:
        zids = ", ".join(sorted(p.zid.hex() for p in named))
        raise RouteError(f"{len(named)} units are named {shown(wanted)}: call one by its ZID ({zids})")
    return (named[0], named[0].zid) if named else None


def resolve(
    target: str,
    peers: Iterable[PeerUp],
    lan: SipLeg,
    server: ServerRoute | None,
    trusted: Iterable[TrustEntry] = (),
) -> Route:
    """A discovered peer (by name or ZID): straight to it with ZRTP. A SIP URI with an IPv4 address over UDP:
    straight there with ZRTP. Anything else (a user name, a URI with a domain or TLS): through the configured
    server with DTLS-SRTP. `trusted` is the trust list: a verified device's name points at its ZID."""
    wanted = target.strip()
    units = list(peers)
    chosen = _by_zid(wanted, units)
    found = (chosen, chosen.zid) if chosen is not None else None
    if found is None and looks_like_a_name(wanted):
        found = _by_name(wanted, units, trusted)
    if found is not None:
        peer, expected = found
        uri = parse_uri(f"sip:zcall@{peer.address}:{peer.sip_port}")
        fallback = peer.aor if server is not None else None
        return Route(uri, (peer.address, peer.sip_port), peer.name, lan, False, expected, fallback)
    if is_sip_uri(wanted):
        try:
            uri = parse_uri(wanted)
        except SipParseError as exc:
            raise RouteError(f"not a SIP URI: {shown(wanted)} ({exc})") from exc
        if uri.scheme == "sip" and (uri.params.get("transport") or "udp").lower() == "udp":
            with contextlib.suppress(ValueError):
                ipaddress.IPv4Address(uri.host)
                return Route(uri, (uri.host, uri.port or 5060), wanted, lan, False)
    elif not looks_like_a_name(wanted):
        raise RouteError(f"{shown(wanted)} is not a peer name, a ZID or a SIP URI")
    if server is None:
        if is_sip_uri(wanted):
            raise RouteError(
                f"{shown(wanted)} is not on the LAN and no SIP server is configured (give an IPv4 SIP URI)"
            )
        raise NotOnLan(f"no peer named {shown(wanted)} on the LAN (try `zcall peers`, or give a SIP URI)")
    if not server.registered:
        raise RouteError("the SIP server is not reachable now (not registered)")
    if not is_sip_uri(wanted):
        wanted = f"sips:{wanted}@{server.hostname}"
    try:
        uri = parse_uri(wanted)
    except SipParseError as exc:
        raise RouteError(f"not a SIP URI: {shown(wanted)} ({exc})") from exc
    return Route(uri, server.proxy, wanted, server.leg, True, account=account_of(uri))
