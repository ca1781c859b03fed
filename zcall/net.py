"""Network types shared by every layer."""

Addr = tuple[str, int]
"""A UDP/TCP peer as asyncio reports it: (host, port)."""
