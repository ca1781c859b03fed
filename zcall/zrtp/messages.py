"""ZRTP packets and messages (RFC 6189 §5): exact wire layouts, strict parsing, no protocol logic.

Every message dataclass keeps `raw`, the exact message bytes (preamble to MAC), because the hash chain MACs,
hvi, total_hash and the SDP Hello hash are all computed over the bytes as they were sent.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from zcall.zrtp.crc32c import zrtp_crc_bytes

MAGIC_COOKIE = 0x5A525450
PREAMBLE = 0x505A
HEADER_LEN = 12
CRC_LEN = 4
MAC_LEN = 8
HASH_IMAGE_LEN = 32
ZID_LEN = 12
# Largest legal message: a Confirm with a 511-word signature is 530 words; nothing we accept is larger.
MAX_MESSAGE_LEN = 4 * 530
MAX_PACKET_LEN = HEADER_LEN + MAX_MESSAGE_LEN + CRC_LEN
MAX_PV_LEN = 1024  # DH3k is 384 bytes, EC52 132; leave room for X448/K448 but refuse absurd sizes
MAX_ALGOS = 7
VERSION = b"1.10"


class ParseError(ValueError):
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


# ---------------------------------------------------------------------------------------------- packets


@dataclass(frozen=True)
class Packet:
    sequence: int
    ssrc: int
    message: bytes


def is_zrtp(data: bytes) -> bool:
    """Cheap demultiplexing test (first nibble 0001, magic cookie), as RFC 7983 demuxers use."""
    return len(data) >= 8 and (data[0] >> 4) == 1 and int.from_bytes(data[4:8], "big") == MAGIC_COOKIE


def encode_packet(sequence: int, ssrc: int, message: bytes) -> bytes:
    head = struct.pack("!BBHII", 0x10, 0, sequence & 0xFFFF, MAGIC_COOKIE, ssrc & 0xFFFFFFFF)
    body = head + message
    return body + zrtp_crc_bytes(body)


def parse_packet(data: bytes) -> Packet:
    """Check header, size and CRC; return the (still unparsed) message bytes."""
    if len(data) < HEADER_LEN + 12 + CRC_LEN or len(data) > MAX_PACKET_LEN:
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


# --------------------------------------------------------------------------------------------- messages


def _head(mtype: bytes, body: bytes) -> bytes:
    total = 12 + len(body)
    if total % 4:
        raise ValueError("message body must be a whole number of words")
    return struct.pack("!HH", PREAMBLE, total // 4) + mtype + body


def _exact(value: bytes, size: int, name: str) -> bytes:
    if len(value) != size:
        raise ValueError(f"{name} must be {size} bytes")
    return value


@dataclass(frozen=True)
class Hello:
    version: bytes
    client_id: bytes
    h3: bytes
    zid: bytes
    hashes: tuple[bytes, ...]
    ciphers: tuple[bytes, ...]
    auths: tuple[bytes, ...]
    key_agreements: tuple[bytes, ...]
    sas_types: tuple[bytes, ...]
    mac: bytes = bytes(MAC_LEN)
    signature_capable: bool = False  # S
    mitm: bool = False  # M
    passive: bool = False  # P
    raw: bytes = field(default=b"", compare=False)

    TYPE = b"Hello   "

    def encode(self) -> bytes:
        lists = (self.hashes, self.ciphers, self.auths, self.key_agreements, self.sas_types)
        if any(len(lst) > MAX_ALGOS for lst in lists):
            raise ValueError("at most 7 algorithms per kind")
        flags = (0x40 if self.signature_capable else 0) | (0x20 if self.mitm else 0)
        flags |= 0x10 if self.passive else 0
        hc, cc, ac, kc, sc = (len(lst) for lst in lists)
        counts = struct.pack("!BBBB", flags, hc, (cc << 4) | ac, (kc << 4) | sc)
        algos = b"".join(_exact(a, 4, "algorithm name") for lst in lists for a in lst)
        body = (
            _exact(self.version, 4, "version")
            + _exact(self.client_id, 16, "client id")
            + _exact(self.h3, HASH_IMAGE_LEN, "H3")
            + _exact(self.zid, ZID_LEN, "ZID")
            + counts
            + algos
            + _exact(self.mac, MAC_LEN, "MAC")
        )
        return _head(self.TYPE, body)


@dataclass(frozen=True)
class HelloAck:
    raw: bytes = field(default=b"", compare=False)
    TYPE = b"HelloACK"

    def encode(self) -> bytes:
        return _head(self.TYPE, b"")


@dataclass(frozen=True)
class Commit:
    h2: bytes
    zid: bytes
    hash: bytes
    cipher: bytes
    auth: bytes
    key_agreement: bytes
    sas: bytes
    hvi: bytes  # DH mode: hvi (32); Mult and Prsh: the 16-byte nonce
    key_id: bytes = b""  # Prsh only (8 bytes)
    mac: bytes = bytes(MAC_LEN)
    raw: bytes = field(default=b"", compare=False)

    TYPE = b"Commit  "

    def encode(self) -> bytes:
        body = (
            _exact(self.h2, HASH_IMAGE_LEN, "H2")
            + _exact(self.zid, ZID_LEN, "ZID")
            + _exact(self.hash, 4, "hash")
            + _exact(self.cipher, 4, "cipher")
            + _exact(self.auth, 4, "auth")
            + _exact(self.key_agreement, 4, "key agreement")
            + _exact(self.sas, 4, "sas")
            + _exact(self.hvi, _commit_value_len(self.key_agreement), "hvi/nonce")
            + _exact(self.key_id, 8 if self.key_agreement == b"Prsh" else 0, "key id")
            + _exact(self.mac, MAC_LEN, "MAC")
        )
        return _head(self.TYPE, body)


def _commit_value_len(key_agreement: bytes) -> int:
    return 16 if key_agreement in (b"Mult", b"Prsh") else 32


@dataclass(frozen=True)
class DHPart:
    part: int  # 1 (responder) or 2 (initiator)
    h1: bytes
    rs1_id: bytes
    rs2_id: bytes
    aux_id: bytes
    pbx_id: bytes
    pv: bytes
    mac: bytes = bytes(MAC_LEN)
    raw: bytes = field(default=b"", compare=False)

    def encode(self) -> bytes:
        if not 4 <= len(self.pv) <= MAX_PV_LEN or len(self.pv) % 4:
            raise ValueError("public value must be 4..1024 bytes, whole words")
        body = (
            _exact(self.h1, HASH_IMAGE_LEN, "H1")
            + _exact(self.rs1_id, 8, "rs1ID")
            + _exact(self.rs2_id, 8, "rs2ID")
            + _exact(self.aux_id, 8, "auxsecretID")
            + _exact(self.pbx_id, 8, "pbxsecretID")
            + self.pv
            + _exact(self.mac, MAC_LEN, "MAC")
        )
        return _head(b"DHPart1 " if self.part == 1 else b"DHPart2 ", body)


@dataclass(frozen=True)
class Confirm:
    part: int  # 1 (responder) or 2 (initiator)
    confirm_mac: bytes
    iv: bytes
    encrypted: bytes  # H0, flags, expiry, signature: AES-CFB ciphertext
    raw: bytes = field(default=b"", compare=False)

    def encode(self) -> bytes:
        if len(self.encrypted) < 40 or len(self.encrypted) % 4:
            raise ValueError("encrypted part must be at least 40 bytes, whole words")
        body = _exact(self.confirm_mac, MAC_LEN, "confirm_mac") + _exact(self.iv, 16, "IV") + self.encrypted
        return _head(b"Confirm1" if self.part == 1 else b"Confirm2", body)


@dataclass(frozen=True)
class ConfirmBody:
    """The plaintext of a Confirm's encrypted part (§5.7)."""

    h0: bytes
    pbx_enrollment: bool = False  # E
    sas_verified: bool = False  # V
    allow_clear: bool = False  # A
    disclosure: bool = False  # D
    cache_expiry: int = 0xFFFFFFFF
    signature: bytes = b""

    def encode(self) -> bytes:
        if len(self.signature) % 4 or len(self.signature) > 4 * 511:
            raise ValueError("signature must be whole words, at most 511")
        sig_words = len(self.signature) // 4
        flags = (8 if self.pbx_enrollment else 0) | (4 if self.sas_verified else 0)
        flags |= (2 if self.allow_clear else 0) | (1 if self.disclosure else 0)
        word = (sig_words << 8) | flags
        head = _exact(self.h0, HASH_IMAGE_LEN, "H0") + struct.pack("!II", word, self.cache_expiry)
        return head + self.signature


def parse_confirm_body(plain: bytes) -> ConfirmBody:
    if len(plain) < 40 or len(plain) % 4:
        raise BadLength("Confirm body size")
    word, expiry = struct.unpack_from("!II", plain, 32)
    sig_words = (word >> 8) & 0x1FF
    if len(plain) != 40 + 4 * sig_words:
        raise BadLength("signature length disagrees with the Confirm size")
    flags = word & 0xFF
    return ConfirmBody(
        h0=plain[:32],
        pbx_enrollment=bool(flags & 8),
        sas_verified=bool(flags & 4),
        allow_clear=bool(flags & 2),
        disclosure=bool(flags & 1),
        cache_expiry=expiry,
        signature=plain[40:],
    )


@dataclass(frozen=True)
class Conf2Ack:
    raw: bytes = field(default=b"", compare=False)
    TYPE = b"Conf2ACK"

    def encode(self) -> bytes:
        return _head(self.TYPE, b"")


@dataclass(frozen=True)
class Error:
    code: int
    raw: bytes = field(default=b"", compare=False)
    TYPE = b"Error   "

    def encode(self) -> bytes:
        return _head(self.TYPE, struct.pack("!I", self.code))


@dataclass(frozen=True)
class ErrorAck:
    raw: bytes = field(default=b"", compare=False)
    TYPE = b"ErrorACK"

    def encode(self) -> bytes:
        return _head(self.TYPE, b"")


@dataclass(frozen=True)
class GoClear:
    clear_mac: bytes
    raw: bytes = field(default=b"", compare=False)
    TYPE = b"GoClear "

    def encode(self) -> bytes:
        return _head(self.TYPE, _exact(self.clear_mac, MAC_LEN, "clear_mac"))


@dataclass(frozen=True)
class ClearAck:
    raw: bytes = field(default=b"", compare=False)
    TYPE = b"ClearACK"

    def encode(self) -> bytes:
        return _head(self.TYPE, b"")


@dataclass(frozen=True)
class SasRelay:
    mac: bytes
    iv: bytes
    encrypted: bytes  # flags, rendering scheme, trusted MiTM sashash, signature
    raw: bytes = field(default=b"", compare=False)
    TYPE = b"SASrelay"

    def encode(self) -> bytes:
        if len(self.encrypted) < 40 or len(self.encrypted) % 4:
            raise ValueError("encrypted part must be at least 40 bytes, whole words")
        return _head(self.TYPE, _exact(self.mac, MAC_LEN, "MAC") + _exact(self.iv, 16, "IV") + self.encrypted)


@dataclass(frozen=True)
class RelayAck:
    raw: bytes = field(default=b"", compare=False)
    TYPE = b"RelayACK"

    def encode(self) -> bytes:
        return _head(self.TYPE, b"")


@dataclass(frozen=True)
class Ping:
    version: bytes
    endpoint_hash: bytes
    raw: bytes = field(default=b"", compare=False)
    TYPE = b"Ping    "

    def encode(self) -> bytes:
        return _head(self.TYPE, _exact(self.version, 4, "version") + _exact(self.endpoint_hash, 8, "hash"))


@dataclass(frozen=True)
class PingAck:
    version: bytes
    endpoint_hash: bytes
    received_endpoint_hash: bytes
    ssrc: int
    raw: bytes = field(default=b"", compare=False)
    TYPE = b"PingACK "

    def encode(self) -> bytes:
        body = (
            _exact(self.version, 4, "version")
            + _exact(self.endpoint_hash, 8, "hash")
            + _exact(self.received_endpoint_hash, 8, "received hash")
            + struct.pack("!I", self.ssrc)
        )
        return _head(self.TYPE, body)


Message = (
    Hello
    | HelloAck
    | Commit
    | DHPart
    | Confirm
    | Conf2Ack
    | Error
    | ErrorAck
    | GoClear
    | ClearAck
    | SasRelay
    | RelayAck
    | Ping
    | PingAck
)

# ---------------------------------------------------------------------------------------------- parsing


def _fixed(raw: bytes, words: int) -> None:
    if len(raw) != 4 * words:
        raise BadLength(f"{raw[4:12]!r} must be {words} words")


def _algo(value: bytes) -> bytes:
    # Algorithm names are printable ASCII (§5.1.2-5.1.6); anything else is not a name.
    if not all(0x20 <= b < 0x7F for b in value):
        raise Malformed("algorithm name is not printable ASCII")
    return value


def _parse_hello(raw: bytes) -> Hello:
    if len(raw) < 88:
        raise BadLength("Hello shorter than 22 words")
    flags, hc, cac, ksc = raw[76], raw[77] & 0x0F, raw[78], raw[79]
    counts = (hc, cac >> 4, cac & 0x0F, ksc >> 4, ksc & 0x0F)
    if any(c > MAX_ALGOS for c in counts):
        raise Malformed("more than 7 algorithms of one kind")
    if len(raw) != 88 + 4 * sum(counts):
        raise BadLength("Hello length disagrees with its algorithm counts")
    lists: list[tuple[bytes, ...]] = []
    pos = 80
    for count in counts:
        lists.append(tuple(_algo(raw[pos + 4 * i : pos + 4 * i + 4]) for i in range(count)))
        pos += 4 * count
    return Hello(
        version=raw[12:16],
        client_id=raw[16:32],
        h3=raw[32:64],
        zid=raw[64:76],
        hashes=lists[0],
        ciphers=lists[1],
        auths=lists[2],
        key_agreements=lists[3],
        sas_types=lists[4],
        mac=raw[pos : pos + 8],
        signature_capable=bool(flags & 0x40),
        mitm=bool(flags & 0x20),
        passive=bool(flags & 0x10),
        raw=raw,
    )


def _parse_commit(raw: bytes) -> Commit:
    if len(raw) < 100:
        raise BadLength("Commit too short")
    ka = _algo(raw[68:72])
    value_len = _commit_value_len(ka)
    key_id_len = 8 if ka == b"Prsh" else 0
    if len(raw) != 76 + value_len + key_id_len + 8:
        raise BadLength("Commit length does not fit its key agreement type")
    pos = 76 + value_len
    return Commit(
        h2=raw[12:44],
        zid=raw[44:56],
        hash=_algo(raw[56:60]),
        cipher=_algo(raw[60:64]),
        auth=_algo(raw[64:68]),
        key_agreement=ka,
        sas=_algo(raw[72:76]),
        hvi=raw[76:pos],
        key_id=raw[pos : pos + key_id_len],
        mac=raw[-8:],
        raw=raw,
    )


def _parse_dhpart(raw: bytes, part: int) -> DHPart:
    pv_len = len(raw) - 84
    if pv_len < 4 or pv_len > MAX_PV_LEN:
        raise BadLength("DHPart public value size")
    return DHPart(
        part=part,
        h1=raw[12:44],
        rs1_id=raw[44:52],
        rs2_id=raw[52:60],
        aux_id=raw[60:68],
        pbx_id=raw[68:76],
        pv=raw[76 : 76 + pv_len],
        mac=raw[-8:],
        raw=raw,
    )


def _parse_confirm(raw: bytes, part: int) -> Confirm:
    if len(raw) < 76:
        raise BadLength("Confirm shorter than 19 words")
    return Confirm(part=part, confirm_mac=raw[12:20], iv=raw[20:36], encrypted=raw[36:], raw=raw)


def _parse_sasrelay(raw: bytes) -> SasRelay:
    if len(raw) < 76:
        raise BadLength("SASrelay shorter than 19 words")
    return SasRelay(mac=raw[12:20], iv=raw[20:36], encrypted=raw[36:], raw=raw)


def parse_message(raw: bytes) -> Message:
    """Parse one ZRTP message (the bytes between packet header and CRC)."""
    if len(raw) < 12 or len(raw) > MAX_MESSAGE_LEN:
        raise BadLength(f"message of {len(raw)} bytes")
    preamble, words = struct.unpack_from("!HH", raw, 0)
    if preamble != PREAMBLE:
        raise Malformed("bad preamble")
    if words * 4 != len(raw):
        raise BadLength("length field disagrees with the packet size")
    mtype = raw[4:12]
    raw = bytes(raw)
    if mtype == Hello.TYPE:
        return _parse_hello(raw)
    if mtype == Commit.TYPE:
        return _parse_commit(raw)
    if mtype in (b"DHPart1 ", b"DHPart2 "):
        return _parse_dhpart(raw, 1 if mtype == b"DHPart1 " else 2)
    if mtype in (b"Confirm1", b"Confirm2"):
        return _parse_confirm(raw, 1 if mtype == b"Confirm1" else 2)
    if mtype == SasRelay.TYPE:
        return _parse_sasrelay(raw)
    if mtype == Error.TYPE:
        _fixed(raw, 4)
        return Error(code=int.from_bytes(raw[12:16], "big"), raw=raw)
    if mtype == GoClear.TYPE:
        _fixed(raw, 5)
        return GoClear(clear_mac=raw[12:20], raw=raw)
    if mtype == Ping.TYPE:
        _fixed(raw, 6)
        return Ping(version=raw[12:16], endpoint_hash=raw[16:24], raw=raw)
    if mtype == PingAck.TYPE:
        _fixed(raw, 9)
        return PingAck(
            version=raw[12:16],
            endpoint_hash=raw[16:24],
            received_endpoint_hash=raw[24:32],
            ssrc=int.from_bytes(raw[32:36], "big"),
            raw=raw,
        )
    simple: dict[bytes, type[HelloAck | Conf2Ack | ErrorAck | ClearAck | RelayAck]] = {
        HelloAck.TYPE: HelloAck,
        Conf2Ack.TYPE: Conf2Ack,
        ErrorAck.TYPE: ErrorAck,
        ClearAck.TYPE: ClearAck,
        RelayAck.TYPE: RelayAck,
    }
    cls = simple.get(mtype)
    if cls is None:
        raise UnknownType(f"message type {mtype!r}")
    _fixed(raw, 3)
    return cls(raw=raw)


def with_raw(message: Message) -> Message:
    """Encode a message and return it parsed again, so `raw` holds the exact bytes to send."""
    return parse_message(message.encode())


def replace_mac(encoded: bytes, mac: bytes) -> bytes:
    """Put a MAC into the last 8 bytes of an encoded Hello, Commit or DHPart."""
    return encoded[:-MAC_LEN] + _exact(mac, MAC_LEN, "MAC")
