"""Network types and helpers shared by every layer."""

import ipaddress
import socket
from typing import Any, Protocol

Addr = tuple[str, int]
"""A UDP/TCP peer as asyncio reports it: (host, port)."""


class DatagramPort(Protocol):
    """Where a call's media goes out: an asyncio datagram transport, or the ICE agent's selected pair."""

    def sendto(self, data: bytes, addr: Any = None, /) -> None: ...

    def close(self) -> None: ...


def is_ip_literal(host: str) -> bool:
    """Whether `host` is an IPv4 or IPv6 address (no brackets), i.e. needs no name lookup."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def routed_source(host: str) -> str | None:
    """The local address the kernel would send from to reach `host` now (None: no route, the network is
    down). A UDP connect() picks the route and sends nothing."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((host, 9))
        except OSError:
            return None
        return str(probe.getsockname()[0])


def moved_to(flow_source: str, routed: str | None, pinned: bool) -> str | None:
    """The new local address when this unit has moved to another network (or got another address): the route
    to the server now leaves from `routed`, not from where the flow was opened. None: nothing to do (no route
    at all is the keep-alive's business; a pinned --bind address is the user's choice)."""
    if pinned or routed is None or routed == flow_source:
        return None
    return routed
