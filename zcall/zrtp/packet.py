"""ZRTP packet framing (RFC 6189 §5): header, magic cookie, sequence number, CRC and size limits.

A packet wraps exactly one message; this layer checks the envelope and hands the message bytes on unparsed.
The ParseError family lives here because it is the lowest layer that rejects input.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from zcall.errors import ZcallError
from zcall.zrtp.crc32c import zrtp_crc_bytes

MAGIC_COOKIE = 0x5A525450
HEADER_LEN = 12
CRC_LEN = 4
MIN_MESSAGE_LEN = 12  # preamble, length and type: the bare ACKs
# Largest legal message: a Confirm with a 511-word signature is 530 words; nothing we accept is larger.
MAX_MESSAGE_LEN = 4 * 530
MAX_PACKET_LEN = HEADER_LEN + MAX_MESSAGE_LEN + CRC_LEN


class ParseError(ZcallError, ValueError):
    """A packet or message that cannot be accepted; `reason` names the drop counter."""

    reason = "malformed"


class BadCrc(ParseError):
    reason = "bad_crc"


class BadLength(ParseError):
    reason = "bad_length"


class UnknownType(ParseError):
    reason = "unknown_type"


class NotZrtp(ParseError):
    reason = "not_zrtp"


class Malformed(ParseError):
    reason = "malformed"


@dataclass(frozen=True)
class Packet:
    sequence: int
    ssrc: int
    message: bytes


def encode_packet(sequence: int, ssrc: int, message: bytes) -> bytes:
    head = struct.pack("!BBHII", 0x10, 0, sequence & 0xFFFF, MAGIC_COOKIE, ssrc & 0xFFFFFFFF)
    body = head + message
    return body + zrtp_crc_bytes(body)


def parse_packet(data: bytes) -> Packet:
    """Check header, size and CRC; return the (still unparsed) message bytes."""
    if len(data) < HEADER_LEN + MIN_MESSAGE_LEN + CRC_LEN or len(data) > MAX_PACKET_LEN:
        raise BadLength(f"packet of {len(data)} bytes")
    if (data[0] >> 4) not in (1, 3) or int.from_bytes(data[4:8], "big") != MAGIC_COOKIE:
        raise NotZrtp("no ZRTP header")
    if data[0] & 0x20:  # 0011: a fragment (draft-zrtp-pq); we never offer the algorithms that need them
        raise Malformed("fragmented packets are not supported")
    if zrtp_crc_bytes(data[:-CRC_LEN]) != data[-CRC_LEN:]:
        raise BadCrc("CRC mismatch")
    sequence = int.from_bytes(data[2:4], "big")
    ssrc = int.from_bytes(data[8:12], "big")
    return Packet(sequence, ssrc, bytes(data[HEADER_LEN:-CRC_LEN]))
