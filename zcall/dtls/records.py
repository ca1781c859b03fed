"""DTLS record framing (RFC 6347 §4.1): just enough to vet datagrams and to cut OpenSSL's output into them.

OpenSSL's memory BIO is a byte stream, so datagram boundaries are ours to keep: incoming datagrams are checked
record by record before OpenSSL sees them, and outgoing bytes are split at record headers.
"""

from __future__ import annotations

from zcall.errors import ZcallError

HEADER = 13  # type(1) version(2) epoch(2) sequence(6) length(2)
# RFC 6347 §4.1.1.1 / RFC 5246 §6.2.3: ciphertext is at most 2^14 + 2048 octets.
MAX_FRAGMENT = 2**14 + 2048
MAX_DATAGRAM = 2**16  # a UDP payload cannot be larger
# change_cipher_spec, alert, handshake, application_data
CONTENT_TYPES = frozenset({20, 21, 22, 23})


class RecordError(ZcallError, ValueError):
    """Bytes that are not a sequence of DTLS records; `.reason` is a drop-counter key."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def split_records(data: bytes) -> list[bytes]:
    """The records in `data`, each with its header, or RecordError if any one is malformed."""
    records: list[bytes] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < HEADER:
            raise RecordError("truncated_header")
        content_type, major = data[offset], data[offset + 1]
        if content_type not in CONTENT_TYPES:
            raise RecordError("content_type")
        if major != 0xFE:  # DTLS versions are the one's complement of TLS's: 1.0 = FEFF, 1.2 = FEFD
            raise RecordError("version")
        length = int.from_bytes(data[offset + 11 : offset + 13], "big")
        if length > MAX_FRAGMENT:
            raise RecordError("record_too_large")
        end = offset + HEADER + length
        if end > len(data):
            raise RecordError("truncated_record")
        records.append(data[offset:end])
        offset = end
    if not records:
        raise RecordError("empty")
    return records


def pack_datagrams(records: list[bytes], mtu: int) -> list[bytes]:
    """Consecutive records in as few datagrams of at most `mtu` octets as possible (RFC 6347 §4.1.1)."""
    datagrams: list[bytes] = []
    current = b""
    for record in records:
        if current and len(current) + len(record) > mtu:
            datagrams.append(current)
            current = b""
        current += record
    if current:
        datagrams.append(current)
    return datagrams
