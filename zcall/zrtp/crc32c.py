"""CRC-32c (Castagnoli, RFC 3309) as ZRTP carries it in the last word of every packet (RFC 6189 §5)."""

from __future__ import annotations

_POLY_REFLECTED = 0x82F63B78


def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (_POLY_REFLECTED if crc & 1 else 0)
        table.append(crc)
    return tuple(table)


_TABLE = _make_table()


def crc32c(data: bytes) -> int:
    """The standard CRC-32c value (check value of b"123456789" is 0xE3069283)."""
    crc = 0xFFFFFFFF
    table = _TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFFFFFF


def zrtp_crc_bytes(data: bytes) -> bytes:
    """The 4 CRC bytes ZRTP puts on the wire.

    Like SCTP (RFC 3309), the reflected register goes out least significant byte first; bzrtp, GNU ZRTP and
    Wireshark all agree on this order, so it is what interoperates.
    """
    return crc32c(data).to_bytes(4, "little")
