"""Network types and helpers shared by every layer."""

import ipaddress

Addr = tuple[str, int]
"""A UDP/TCP peer as asyncio reports it: (host, port)."""


def is_ip_literal(host: str) -> bool:
    """Whether `host` is an IPv4 or IPv6 address (no brackets), i.e. needs no name lookup."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
