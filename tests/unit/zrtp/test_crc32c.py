from __future__ import annotations

import zlib

from zcall.zrtp.crc32c import crc32c, zrtp_crc_bytes


def test_check_value() -> None:
    # The CRC-32c catalogue check value, and the iSCSI (RFC 3720 B.4) vector of 32 zero bytes.
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"") == 0


def test_wire_order_is_least_significant_byte_first() -> None:
    assert zrtp_crc_bytes(b"123456789") == bytes.fromhex("839206e3")


def test_differs_from_ieee_crc32() -> None:
    data = b"ZRTP packet body"
    assert crc32c(data) != zlib.crc32(data)
