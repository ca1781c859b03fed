"""ZRTP messages (RFC 6189 §5): exact wire layouts, strict parsing, no protocol logic.

Every message dataclass keeps `raw`, the exact message bytes (preamble to MAC), because the hash chain MACs,
hvi, total_hash and the SDP Hello hash are all computed over the bytes as they were sent. Packet framing
(header, CRC, size limits) is in packet.py.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import ClassVar

from zcall.zrtp.packet import (
    MAX_MESSAGE_LEN,
    MIN_MESSAGE_LEN,
    BadLength,
    Malformed,
    UnknownType,
)

PREAMBLE = 0x505A
MAC_LEN = 8
HASH_IMAGE_LEN = 32
ZID_LEN = 12
MAX_PV_LEN = 1024  # DH3k is 384 bytes, EC52 132; leave room for X448/K448 but refuse absurd sizes
MAX_ALGOS = 7
VERSION = b"1.10"
IV_LEN = 16
MIN_ENCRYPTED_LEN = 40  # Confirm: H0, flags word, expiry; SASrelay: the same size with no signature


# --------------------------------------------------------------------------------------------- messages


def _head(mtype: bytes, body: bytes) -> bytes:
    total = MIN_MESSAGE_LEN + len(body)
    if total % 4:
        raise ValueError("message body must be a whole number of words")
    return struct.pack("!HH", PREAMBLE, total // 4) + mtype + body


def _exact(value: bytes, size: int, name: str) -> bytes:
    if len(value) != size:
        raise ValueError(f"{name} must be {size} bytes")
    return value


def _encrypted_body(mac: bytes, iv: bytes, encrypted: bytes, mac_name: str) -> bytes:
    """MAC, IV and AES-CFB ciphertext: the shared layout of Confirm and SASrelay (§5.7, §5.13)."""
    if len(encrypted) < MIN_ENCRYPTED_LEN or len(encrypted) % 4:
        raise ValueError("encrypted part must be at least 40 bytes, whole words")
    return _exact(mac, MAC_LEN, mac_name) + _exact(iv, IV_LEN, "IV") + encrypted


@dataclass(frozen=True)
class _Bare:
    """A message that is only preamble, length and type (the ACKs)."""

    raw: bytes = field(default=b"", compare=False)
    TYPE: ClassVar[bytes] = b""

    def encode(self) -> bytes:
        return _head(self.TYPE, b"")


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
    # The bits §5.2 leaves unused (sent as zero, ignored on receipt): kept so a parsed Hello encodes back to
    # the same bytes; its hash and MAC are over what was sent.
    unused_bits: int = 0
    raw: bytes = field(default=b"", compare=False)

    TYPE = b"Hello   "

    def encode(self) -> bytes:
        lists = (self.hashes, self.ciphers, self.auths, self.key_agreements, self.sas_types)
        if any(len(lst) > MAX_ALGOS for lst in lists):
            raise ValueError("at most 7 algorithms per kind")
        flags = (0x40 if self.signature_capable else 0) | (0x20 if self.mitm else 0)
        flags |= (0x10 if self.passive else 0) | (self.unused_bits >> 8 & _UNUSED_76)
        hc, cc, ac, kc, sc = (len(lst) for lst in lists)
        byte77 = hc | (self.unused_bits & _UNUSED_77)
        counts = struct.pack("!BBBB", flags, byte77, (cc << 4) | ac, (kc << 4) | sc)
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
class HelloAck(_Bare):
    TYPE: ClassVar[bytes] = b"HelloACK"


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
        body = _encrypted_body(self.confirm_mac, self.iv, self.encrypted, "confirm_mac")
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
class Conf2Ack(_Bare):
    TYPE: ClassVar[bytes] = b"Conf2ACK"


@dataclass(frozen=True)
class Error:
    code: int
    raw: bytes = field(default=b"", compare=False)
    TYPE = b"Error   "

    def encode(self) -> bytes:
        return _head(self.TYPE, struct.pack("!I", self.code))


@dataclass(frozen=True)
class ErrorAck(_Bare):
    TYPE: ClassVar[bytes] = b"ErrorACK"


@dataclass(frozen=True)
class GoClear:
    clear_mac: bytes
    raw: bytes = field(default=b"", compare=False)
    TYPE = b"GoClear "

    def encode(self) -> bytes:
        return _head(self.TYPE, _exact(self.clear_mac, MAC_LEN, "clear_mac"))


@dataclass(frozen=True)
class ClearAck(_Bare):
    TYPE: ClassVar[bytes] = b"ClearACK"


@dataclass(frozen=True)
class SasRelay:
    mac: bytes
    iv: bytes
    encrypted: bytes  # flags, rendering scheme, trusted MiTM sashash, signature
    raw: bytes = field(default=b"", compare=False)
    TYPE = b"SASrelay"

    def encode(self) -> bytes:
        return _head(self.TYPE, _encrypted_body(self.mac, self.iv, self.encrypted, "MAC"))


@dataclass(frozen=True)
class RelayAck(_Bare):
    TYPE: ClassVar[bytes] = b"RelayACK"


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

_BARE: dict[bytes, type[HelloAck | Conf2Ack | ErrorAck | ClearAck | RelayAck]] = {
    cls.TYPE: cls for cls in (HelloAck, Conf2Ack, ErrorAck, ClearAck, RelayAck)
}

# ---------------------------------------------------------------------------------------------- parsing


def _fixed(raw: bytes, words: int) -> None:
    if len(raw) != 4 * words:
        raise BadLength(f"{raw[4:12]!r} must be {words} words")


def _algo(value: bytes) -> bytes:
    # Algorithm names are printable ASCII (§5.1.2-5.1.6); anything else is not a name.
    if not all(0x20 <= b < 0x7F for b in value):
        raise Malformed("algorithm name is not printable ASCII")
    return value


_UNUSED_76, _UNUSED_77 = 0x8F, 0xF0  # around the S/M/P flags and the hash count


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
        unused_bits=(flags & _UNUSED_76) << 8 | (raw[77] & _UNUSED_77),
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


def _split_encrypted(raw: bytes, name: str) -> tuple[bytes, bytes, bytes]:
    """MAC, IV and ciphertext of a Confirm or SASrelay, at least 19 words in all."""
    if len(raw) < 76:
        raise BadLength(f"{name} shorter than 19 words")
    return raw[12:20], raw[20:36], raw[36:]


def parse_message(raw: bytes) -> Message:
    """Parse one ZRTP message (the bytes between packet header and CRC)."""
    if len(raw) < MIN_MESSAGE_LEN or len(raw) > MAX_MESSAGE_LEN:
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
        mac, iv, encrypted = _split_encrypted(raw, "Confirm")
        return Confirm(1 if mtype == b"Confirm1" else 2, mac, iv, encrypted, raw=raw)
    if mtype == SasRelay.TYPE:
        mac, iv, encrypted = _split_encrypted(raw, "SASrelay")
        return SasRelay(mac, iv, encrypted, raw=raw)
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
    cls = _BARE.get(mtype)
    if cls is None:
        raise UnknownType(f"message type {mtype!r}")
    _fixed(raw, 3)
    return cls(raw=raw)


def replace_mac(encoded: bytes, mac: bytes) -> bytes:
    """Put a MAC into the last 8 bytes of an encoded Hello, Commit or DHPart."""
    return encoded[:-MAC_LEN] + _exact(mac, MAC_LEN, "MAC")
