"""Where a call goes: a pure function of the target, the discovered peers and the server account."""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from zcall.discovery.service import PeerUp
from zcall.errors import ZcallError
from zcall.net import Addr
from zcall.sip.errors import SipParseError
from zcall.sip.uri import SipUri, parse_uri
from zcall.sipleg import SipLeg

MAX_TARGET_SHOWN = 80  # an error quotes at most this much of what was typed


class RouteError(ZcallError):
    """The target cannot be called; the message is for the user."""


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


def resolve(target: str, peers: Iterable[PeerUp], lan: SipLeg, server: ServerRoute | None) -> Route:
    """A discovered peer (by name or ZID): straight to it with ZRTP. A SIP URI with an IPv4 address over UDP:
    straight there with ZRTP. Anything else (a user name, a URI with a domain or TLS): through the configured
    server with DTLS-SRTP."""
    wanted = target.strip()
    matches = [p for p in peers if wanted in (p.name, p.zid.hex())]
    if len({p.zid for p in matches}) > 1:
        # Two units announce this name (one may be an impostor): the user must pick by ZID.
        zids = ", ".join(sorted(p.zid.hex() for p in matches))
        raise RouteError(f"more than one unit is named {shown(wanted)} ({zids}): call one by its ZID")
    if matches:
        peer = matches[0]
        uri = parse_uri(f"sip:zcall@{peer.address}:{peer.sip_port}")
        fallback = peer.aor if server is not None else None
        return Route(uri, (peer.address, peer.sip_port), peer.name, lan, False, peer.zid, fallback)
    if is_sip_uri(wanted):
        try:
            uri = parse_uri(wanted)
        except SipParseError as exc:
            raise RouteError(f"not a SIP URI: {shown(wanted)} ({exc})") from exc
        if uri.scheme == "sip" and (uri.params.get("transport") or "udp").lower() == "udp":
            with contextlib.suppress(ValueError):
                ipaddress.IPv4Address(uri.host)
                return Route(uri, (uri.host, uri.port or 5060), wanted, lan, False)
    if server is None:
        if is_sip_uri(wanted):
            raise RouteError(
                f"{shown(wanted)} is not on the LAN and no SIP server is configured (give an IPv4 SIP URI)"
            )
        raise RouteError(f"no peer named {shown(wanted)} on the LAN (try `zcall peers`, or give a SIP URI)")
    if not server.registered:
        raise RouteError("the SIP server is not reachable now (not registered)")
    if not is_sip_uri(wanted):
        wanted = f"sips:{wanted}@{server.hostname}"
    try:
        uri = parse_uri(wanted)
    except SipParseError as exc:
        raise RouteError(f"not a SIP URI: {shown(wanted)} ({exc})") from exc
    return Route(uri, server.proxy, wanted, server.leg, True)
