"""The [nat] section's server URIs: STUN (RFC 7064) and TURN (RFC 7065), parsed into what the ICE agent needs.

Only what aioice can carry is accepted: stun: over UDP, turn: over UDP or TCP, turns: over TLS (TCP).
STUN over TLS (stuns:) and TURN over DTLS (turns: with transport=udp) are refused with a clear error.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal

from zcall.errors import ZcallError

MAX_URI = 300
STUN_PORT = 3478
TURNS_PORT = 5349

_HOST_NAME = re.compile(r"(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?\Z")  # noqa: E501
_HOST_PORT = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[^:\[\]]+)(?::([0-9]{1,5}))?\Z")


class NatUriError(ZcallError, ValueError):
    """A [nat] URI we cannot use; the message says what is expected."""


@dataclass(frozen=True)
class StunServer:
    host: str
    port: int


@dataclass(frozen=True)
class TurnServer:
    host: str
    port: int
    transport: Literal["udp", "tcp"]
    tls: bool  # turns: TLS over TCP to the server, its certificate verified


@dataclass(frozen=True)
class NatSettings:
    """What the ICE agent is given: None for a server not configured."""

    stun: StunServer | None = None
    turn: TurnServer | None = None
    turn_user: str = ""
    turn_password: str = ""
    relay_only: bool = False  # no host or srflx candidates: the peer never learns our addresses

    @property
    def enabled(self) -> bool:
        """ICE runs on the server path when a STUN or TURN server is configured."""
        return self.stun is not None or self.turn is not None


def _host_port(rest: str, default_port: int, what: str) -> tuple[str, int]:
    match = _HOST_PORT.fullmatch(rest)
    if match is None:
        raise NatUriError(f"{what}: expected host[:port]")
    host, port_text = match.group(1), match.group(2)
    if host.startswith("["):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise NatUriError(f"{what}: bad IPv6 address") from None
    elif not _is_ipv4(host) and not _HOST_NAME.match(host):
        raise NatUriError(f"{what}: bad host name")
    port = default_port if port_text is None else int(port_text)
    if not 1 <= port <= 65535:
        raise NatUriError(f"{what}: port must be 1-65535")
    return host, port


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def parse_stun_uri(uri: str) -> StunServer:
    """`stun:host[:port]` (RFC 7064); the port defaults to 3478."""
    if len(uri) > MAX_URI:
        raise NatUriError("STUN URI too long")
    scheme, colon, rest = uri.partition(":")
    if not colon or scheme.lower() not in ("stun", "stuns"):
        raise NatUriError("expected stun:host[:port]")
    if scheme.lower() == "stuns":
        raise NatUriError("stuns: (STUN over TLS) is not supported; use stun:host[:port]")
    host, port = _host_port(rest, STUN_PORT, "STUN URI")
    return StunServer(host, port)


def parse_turn_uri(uri: str) -> TurnServer:
    """`turn:host[:port][?transport=udp|tcp]` or `turns:host[:port][?transport=tcp]` (RFC 7065)."""
    if len(uri) > MAX_URI:
        raise NatUriError("TURN URI too long")
    scheme, colon, rest = uri.partition(":")
    scheme = scheme.lower()
    if not colon or scheme not in ("turn", "turns"):
        raise NatUriError("expected turn:host[:port][?transport=udp|tcp] or turns:host[:port]")
    rest, question, query = rest.partition("?")
    tls = scheme == "turns"
    transport: Literal["udp", "tcp"] = "tcp" if tls else "udp"
    if question:
        if query.lower() not in ("transport=udp", "transport=tcp"):
            raise NatUriError("TURN URI: the only parameter is transport=udp or transport=tcp")
        transport = "udp" if query.lower() == "transport=udp" else "tcp"
    if tls and transport == "udp":
        raise NatUriError("turns: with transport=udp (TURN over DTLS) is not supported; use transport=tcp")
    host, port = _host_port(rest, TURNS_PORT if tls else STUN_PORT, "TURN URI")
    return TurnServer(host, port, transport, tls)


def is_stun_uri(text: str) -> bool:
    try:
        parse_stun_uri(text)
    except NatUriError:
        return False
    return True


def is_turn_uri(text: str) -> bool:
    try:
        parse_turn_uri(text)
    except NatUriError:
        return False
    return True
