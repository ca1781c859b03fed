"""Network types and helpers shared by every layer."""

import ipaddress
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
