"""RTP (RFC 3550 §5) and RTCP (RFC 3550 §6: SR, RR, SDES, BYE, compound packets), rtcp-mux (RFC 5761).

Parsers take untrusted bytes: every length is checked against the buffer and a size cap, and every problem
raises RtpParseError with a short `.reason` slug that callers count.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from zcall.errors import ZcallError

RTP_VERSION = 2
RTP_HEADER_LEN = 12
# Larger than any UDP payload we accept on a 1500-byte MTU; bigger input is hostile or broken.
MAX_PACKET_LEN = 2048
MAX_RTCP_PACKETS = 32

RTCP_SR = 200
RTCP_RR = 201
RTCP_SDES = 202
RTCP_BYE = 203

SDES_END = 0
SDES_CNAME = 1


class RtpParseError(ZcallError, ValueError):
    """Malformed RTP/RTCP input; `.reason` is a short slug suitable as a counter key."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


_FIXED_HEADER = struct.Struct("!BBHII")  # V P X CC | M PT | sequence | timestamp | SSRC
_new_object = object.__new__


def _check_uint(name: str, value: int, bits: int) -> None:
    if not 0 <= value < (1 << bits):
        raise ValueError(f"{name} out of range for {bits} bits: {value}")


@dataclass(frozen=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    # (profile-defined 16-bit id, data whose length is a multiple of 4)
    extension: tuple[int, bytes] | None = None
    # total padding octets including the final count octet; 0 means no padding
    padding: int = 0

    def __post_init__(self) -> None:
        _check_uint("payload_type", self.payload_type, 7)
        _check_uint("sequence", self.sequence, 16)
        _check_uint("timestamp", self.timestamp, 32)
        _check_uint("ssrc", self.ssrc, 32)
        if len(self.csrcs) > 15:
            raise ValueError("at most 15 CSRCs")
        for csrc in self.csrcs:
            _check_uint("csrc", csrc, 32)
        if self.extension is not None:
            _check_uint("extension profile", self.extension[0], 16)
            if len(self.extension[1]) % 4 or len(self.extension[1]) > 4 * 0xFFFF:
                raise ValueError("extension data must be a multiple of 4 octets")
        if not 0 <= self.padding <= 255:
            raise ValueError("padding must be 0..255")

    def serialize(self) -> bytes:
        first = (RTP_VERSION << 6) | len(self.csrcs)
        if self.padding:
            first |= 0x20
        if self.extension is not None:
            first |= 0x10
        parts = [
            _FIXED_HEADER.pack(
                first,
                (0x80 if self.marker else 0) | self.payload_type,
                self.sequence,
                self.timestamp,
                self.ssrc,
            )
        ]
        if self.csrcs:
            parts.append(struct.pack(f"!{len(self.csrcs)}I", *self.csrcs))
        if self.extension is not None:
            profile, data = self.extension
            parts.append(struct.pack("!HH", profile, len(data) // 4))
            parts.append(data)
        parts.append(self.payload)
        if self.padding:
            parts.append(bytes(self.padding - 1) + bytes((self.padding,)))
        return b"".join(parts)

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        size = len(data)
        if size > MAX_PACKET_LEN:
            raise RtpParseError("too_large", f"{size} octets")
        if size < RTP_HEADER_LEN:
            raise RtpParseError("truncated", "shorter than the fixed header")
        first, second, sequence, timestamp, ssrc = _FIXED_HEADER.unpack_from(data)
        if first >> 6 != RTP_VERSION:
            raise RtpParseError("bad_version")
        if first == 0x80:  # the usual packet: no padding, extension or CSRCs
            return cls._trusted(second, sequence, timestamp, ssrc, bytes(data[RTP_HEADER_LEN:]))
        end = size
        padding = 0
        if first & 0x20:
            padding = data[-1]
            if padding == 0:
                raise RtpParseError("bad_padding", "zero padding count")
            end -= padding
            if end < RTP_HEADER_LEN:
                raise RtpParseError("bad_padding", "padding longer than the packet")
        offset = RTP_HEADER_LEN
        csrc_count = first & 0x0F
        if offset + 4 * csrc_count > end:
            raise RtpParseError("truncated", "CSRC list")
        csrcs = struct.unpack_from(f"!{csrc_count}I", data, offset)
        offset += 4 * csrc_count
        extension: tuple[int, bytes] | None = None
        if first & 0x10:
            if offset + 4 > end:
                raise RtpParseError("truncated", "extension header")
            profile, words = struct.unpack_from("!HH", data, offset)
            offset += 4
            if offset + 4 * words > end:
                raise RtpParseError("truncated", "extension data")
            extension = (profile, bytes(data[offset : offset + 4 * words]))
            offset += 4 * words
        payload = bytes(data[offset:end])
        return cls._trusted(second, sequence, timestamp, ssrc, payload, csrcs, extension, padding)

    @classmethod
    def _trusted(cls, second: int, sequence: int, timestamp: int, ssrc: int, payload: bytes,
                 csrcs: tuple[int, ...] = (), extension: tuple[int, bytes] | None = None,
                 padding: int = 0) -> RtpPacket:
        """A packet from fields parse() unpacked: fixed-width wire fields are in range by construction, so
        the constructor's checks (a third of the per-packet cost) are skipped."""
        packet: RtpPacket = _new_object(cls)
        packet.__dict__.update(payload_type=second & 0x7F, sequence=sequence, timestamp=timestamp, ssrc=ssrc,
                               payload=payload, marker=second > 0x7F, csrcs=csrcs, extension=extension,
                               padding=padding)
        return packet


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 §4: with rtcp-mux, octet 1 in 192..223 (RTP PT 64..95) means RTCP."""
    return len(data) >= 2 and 192 <= data[1] <= 223


# ---------------------------------------------------------------- RTCP


@dataclass(frozen=True)
class ReportBlock:
    ssrc: int
    fraction_lost: int  # 8-bit fixed point, lost/expected * 256
    cumulative_lost: int  # signed 24-bit (duplicates can make it negative)
    highest_sequence: int  # extended highest sequence number received
    jitter: int  # RTP timestamp units
    lsr: int  # middle 32 bits of the last SR's NTP timestamp
    dlsr: int  # delay since that SR, 1/65536 s

    def __post_init__(self) -> None:
        _check_uint("ssrc", self.ssrc, 32)
        _check_uint("fraction_lost", self.fraction_lost, 8)
        if not -(1 << 23) <= self.cumulative_lost < (1 << 23):
            raise ValueError("cumulative_lost out of signed 24-bit range")
        for name in ("highest_sequence", "jitter", "lsr", "dlsr"):
            _check_uint(name, getattr(self, name), 32)

    def serialize(self) -> bytes:
        lost = self.cumulative_lost & 0xFFFFFF
        return struct.pack(
            "!IIIIII",
            self.ssrc,
            (self.fraction_lost << 24) | lost,
            self.highest_sequence,
            self.jitter,
            self.lsr,
            self.dlsr,
        )

    @classmethod
    def parse(cls, data: bytes, offset: int) -> ReportBlock:
        ssrc, word, highest, jitter, lsr, dlsr = struct.unpack_from("!IIIIII", data, offset)
        lost = word & 0xFFFFFF
        if lost & 0x800000:
            lost -= 1 << 24
        return cls(ssrc, word >> 24, lost, highest, jitter, lsr, dlsr)


@dataclass(frozen=True)
class SenderReport:
    ssrc: int
    ntp_timestamp: int  # 64-bit NTP format (32.32 fixed point seconds since 1900)
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()

    def __post_init__(self) -> None:
        _check_uint("ssrc", self.ssrc, 32)
        _check_uint("ntp_timestamp", self.ntp_timestamp, 64)
        for name in ("rtp_timestamp", "packet_count", "octet_count"):
            _check_uint(name, getattr(self, name), 32)
        if len(self.reports) > 31:
            raise ValueError("at most 31 report blocks")


@dataclass(frozen=True)
class ReceiverReport:
    ssrc: int
    reports: tuple[ReportBlock, ...] = ()

    def __post_init__(self) -> None:
        _check_uint("ssrc", self.ssrc, 32)
        if len(self.reports) > 31:
            raise ValueError("at most 31 report blocks")


@dataclass(frozen=True)
class SdesChunk:
    ssrc: int
    items: tuple[tuple[int, bytes], ...] = ()  # (item type 1..255, value of at most 255 octets)

    def __post_init__(self) -> None:
        _check_uint("ssrc", self.ssrc, 32)
        for kind, value in self.items:
            if not 1 <= kind <= 255 or len(value) > 255:
                raise ValueError("SDES item type must be 1..255 and value at most 255 octets")


@dataclass(frozen=True)
class SourceDescription:
    chunks: tuple[SdesChunk, ...] = ()

    def __post_init__(self) -> None:
        if len(self.chunks) > 31:
            raise ValueError("at most 31 SDES chunks")


@dataclass(frozen=True)
class Bye:
    ssrcs: tuple[int, ...] = ()
    reason: bytes = b""

    def __post_init__(self) -> None:
        if len(self.ssrcs) > 31 or len(self.reason) > 255:
            raise ValueError("at most 31 SSRCs and a reason of at most 255 octets")
        for ssrc in self.ssrcs:
            _check_uint("ssrc", ssrc, 32)


@dataclass(frozen=True)
class UnknownRtcp:
    """A packet type we do not interpret (APP, feedback, XR): kept so compound parsing can skip it."""

    packet_type: int
    count: int
    body: bytes = field(default=b"")

    def __post_init__(self) -> None:
        _check_uint("packet_type", self.packet_type, 8)
        _check_uint("count", self.count, 5)
        if len(self.body) % 4:
            raise ValueError("RTCP body must be a multiple of 4 octets")


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Bye | UnknownRtcp


def _pad4(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


def _rtcp_body(packet: RtcpPacket) -> tuple[int, int, bytes]:
    if isinstance(packet, SenderReport):
        body = struct.pack(
            "!IQIII",
            packet.ssrc,
            packet.ntp_timestamp,
            packet.rtp_timestamp,
            packet.packet_count,
            packet.octet_count,
        )
        return RTCP_SR, len(packet.reports), body + b"".join(r.serialize() for r in packet.reports)
    if isinstance(packet, ReceiverReport):
        body = struct.pack("!I", packet.ssrc) + b"".join(r.serialize() for r in packet.reports)
        return RTCP_RR, len(packet.reports), body
    if isinstance(packet, SourceDescription):
        chunks = []
        for chunk in packet.chunks:
            items = b"".join(bytes((kind, len(value))) + value for kind, value in chunk.items)
            # The item list ends with at least one null octet, then pads to a 32-bit boundary.
            chunks.append(_pad4(struct.pack("!I", chunk.ssrc) + items + b"\x00"))
        return RTCP_SDES, len(packet.chunks), b"".join(chunks)
    if isinstance(packet, Bye):
        body = struct.pack(f"!{len(packet.ssrcs)}I", *packet.ssrcs)
        if packet.reason:
            body += _pad4(bytes((len(packet.reason),)) + packet.reason)
        return RTCP_BYE, len(packet.ssrcs), body
    return packet.packet_type, packet.count, packet.body


def serialize_rtcp_compound(packets: list[RtcpPacket]) -> bytes:
    out = []
    for packet in packets:
        packet_type, count, body = _rtcp_body(packet)
        out.append(struct.pack("!BBH", (RTP_VERSION << 6) | count, packet_type, len(body) // 4) + body)
    return b"".join(out)


def _parse_sdes(body: bytes, count: int) -> SourceDescription:
    chunks = []
    offset = 0
    for _ in range(count):
        if offset + 4 > len(body):
            raise RtpParseError("truncated", "SDES chunk")
        (ssrc,) = struct.unpack_from("!I", body, offset)
        offset += 4
        items = []
        while True:
            if offset >= len(body):
                raise RtpParseError("truncated", "SDES item list not terminated")
            kind = body[offset]
            if kind == SDES_END:
                offset += 1
                offset += -offset % 4  # skip to the next 32-bit boundary
                break
            if offset + 2 > len(body) or offset + 2 + body[offset + 1] > len(body):
                raise RtpParseError("truncated", "SDES item")
            length = body[offset + 1]
            items.append((kind, bytes(body[offset + 2 : offset + 2 + length])))
            offset += 2 + length
        chunks.append(SdesChunk(ssrc, tuple(items)))
    if offset > len(body):
        raise RtpParseError("truncated", "SDES padding")
    return SourceDescription(tuple(chunks))


def _parse_reports(body: bytes, offset: int, count: int) -> tuple[ReportBlock, ...]:
    if offset + 24 * count > len(body):
        raise RtpParseError("truncated", "report blocks")
    return tuple(ReportBlock.parse(body, offset + 24 * i) for i in range(count))


def _parse_one(packet_type: int, count: int, body: bytes) -> RtcpPacket:
    if packet_type == RTCP_SR:
        if len(body) < 24:
            raise RtpParseError("truncated", "sender info")
        ssrc, ntp, rtp_ts, packets, octets = struct.unpack_from("!IQIII", body)
        return SenderReport(ssrc, ntp, rtp_ts, packets, octets, _parse_reports(body, 24, count))
    if packet_type == RTCP_RR:
        if len(body) < 4:
            raise RtpParseError("truncated", "receiver report")
        (ssrc,) = struct.unpack_from("!I", body)
        return ReceiverReport(ssrc, _parse_reports(body, 4, count))
    if packet_type == RTCP_SDES:
        return _parse_sdes(body, count)
    if packet_type == RTCP_BYE:
        if 4 * count > len(body):
            raise RtpParseError("truncated", "BYE SSRC list")
        ssrcs = struct.unpack_from(f"!{count}I", body)
        reason = b""
        if len(body) > 4 * count:
            length = body[4 * count]
            if 4 * count + 1 + length > len(body):
                raise RtpParseError("truncated", "BYE reason")
            reason = bytes(body[4 * count + 1 : 4 * count + 1 + length])
        return Bye(ssrcs, reason)
    return UnknownRtcp(packet_type, count, bytes(body))


def parse_rtcp_compound(data: bytes) -> list[RtcpPacket]:
    """Parse a (compound) RTCP datagram; the lengths must tile the datagram exactly (RFC 3550 A.2)."""
    size = len(data)
    if size > MAX_PACKET_LEN:
        raise RtpParseError("too_large", f"{size} octets")
    if size < 4:
        raise RtpParseError("truncated", "shorter than an RTCP header")
    packets: list[RtcpPacket] = []
    offset = 0
    while offset < size:
        if len(packets) >= MAX_RTCP_PACKETS:
            raise RtpParseError("too_many_packets")
        if offset + 4 > size:
            raise RtpParseError("truncated", "RTCP header")
        first, packet_type, words = struct.unpack_from("!BBH", data, offset)
        if first >> 6 != RTP_VERSION:
            raise RtpParseError("bad_version")
        if not 192 <= packet_type <= 223:
            raise RtpParseError("not_rtcp", f"packet type {packet_type}")
        end = offset + 4 + 4 * words
        if end > size:
            raise RtpParseError("truncated", "RTCP length beyond datagram")
        body_end = end
        if first & 0x20:
            # Only the last packet of a compound may be padded.
            if end != size:
                raise RtpParseError("bad_padding", "padding before the last packet")
            pad = data[end - 1]
            if pad == 0 or pad > 4 * words:
                raise RtpParseError("bad_padding")
            body_end -= pad
        try:
            packets.append(_parse_one(packet_type, first & 0x1F, bytes(data[offset + 4 : body_end])))
        except RtpParseError:
            raise
        except ValueError as exc:  # a field the dataclass refuses, e.g. an unaligned padded body
            raise RtpParseError("invalid", str(exc)) from exc
        offset = end
    return packets
