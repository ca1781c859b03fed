"""SDP (RFC 8866) parse/serialize, with the checks of the attribute values zcall reads.

Malformed SDP raises SdpError with status 400. Unknown attributes are kept and written back. What zcall
offers and answers, and what it reads of the peer's audio stream, is in offeranswer.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from zcall.sip.errors import ParseReason, SipParseError, ascii_number

MAX_SDP = 16384
MAX_LINES = 512
MAX_MEDIA = 16
MAX_FORMATS = 64

ZRTP_PROFILES = ("RTP/AVP", "RTP/SAVP", "RTP/AVPF", "RTP/SAVPF")
DTLS_PROFILES = ("UDP/TLS/RTP/SAVP", "UDP/TLS/RTP/SAVPF")
KNOWN_PROFILES = ZRTP_PROFILES + DTLS_PROFILES
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
SETUP_ROLES = ("active", "passive", "actpass", "holdconn")

_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+\Z")
ZRTP_VERSION = "1.10"  # the ZRTP version zcall speaks (RFC 6189), in a=zrtp-hash
_ZRTP_HASH = re.compile(r"([0-9]{1,4}\.[0-9]{1,4}) ([0-9A-Fa-f]{64})\Z")
_FINGERPRINT = re.compile(r"([A-Za-z0-9\-]{1,16}) ((?:[0-9A-Fa-f]{2}:)*[0-9A-Fa-f]{2})\Z")
_RTPMAP = re.compile(r"([0-9]{1,3}) ([A-Za-z0-9\-_.]+)/([0-9]{1,6})(?:/([0-9]{1,2}))?\Z")
_ADDRESS = re.compile(r"[A-Za-z0-9\-.:%\[\]]+\Z")

class SdpError(SipParseError):
    """Malformed (400) or unacceptable (488) SDP."""

    default_kind = ParseReason.SDP


def _bad(reason: str) -> SdpError:
    return SdpError(f"SDP: {reason}", 400)


@dataclass
class Origin:
    username: str
    session_id: str
    version: int
    address: str
    addrtype: str = "IP4"

    def __str__(self) -> str:
        return f"{self.username} {self.session_id} {self.version} IN {self.addrtype} {self.address}"


@dataclass
class Media:
    media: str
    port: int
    proto: str
    formats: list[str]
    port_count: int | None = None
    connection: str | None = None  # address only; IN IP4/IP6 kept in addrtype
    addrtype: str = "IP4"
    # Lines other than c= and a= (i=, b=, k=) in order, then attributes in order.
    other: list[tuple[str, str]] = field(default_factory=list)
    attributes: list[tuple[str, str | None]] = field(default_factory=list)

    def attr(self, name: str) -> str | None:
        for key, value in self.attributes:
            if key == name:
                return value if value is not None else ""
        return None

    def attrs(self, name: str) -> list[str]:
        return [v or "" for k, v in self.attributes if k == name]

    def has(self, name: str) -> bool:
        return any(k == name for k, _ in self.attributes)

    @property
    def direction(self) -> str | None:
        found = [k for k, _ in self.attributes if k in DIRECTIONS]
        return found[-1] if found else None

    def rtpmap(self) -> dict[str, tuple[str, int, int]]:
        """payload type -> (encoding name lower-cased, clock rate, channels)."""
        out: dict[str, tuple[str, int, int]] = {}
        for value in self.attrs("rtpmap"):
            m = _RTPMAP.match(value)
            if not m:
                raise _bad(f"bad rtpmap {value[:40]!r}")
            out[m.group(1)] = (m.group(2).lower(), int(m.group(3)), int(m.group(4) or 1))
        return out

    def fmtp(self, pt: str) -> dict[str, str]:
        for value in self.attrs("fmtp"):
            fmt, _, params = value.partition(" ")
            if fmt == pt:
                out: dict[str, str] = {}
                for item in params.split(";"):
                    k, _, v = item.strip().partition("=")
                    if k:
                        out[k.strip().lower()] = v.strip()
                return out
        return {}

    def red_payload_type(self, opus_pt: str) -> str | None:
        """A red/48000/2 format whose fmtp names only `opus_pt` as the redundant encoding (RFC 2198 §5)."""
        for pt, (name, clock, channels) in self.rtpmap().items():
            if name == "red" and clock == 48000 and channels == 2 and pt in self.formats:
                value = next((v for v in self.attrs("fmtp") if v.partition(" ")[0] == pt), "")
                encodings = value.partition(" ")[2].split("/")
                if encodings and all(e == opus_pt for e in encodings) and len(encodings) <= 4:
                    return pt
        return None

    def opus_payload_type(self) -> str | None:
        for pt, (name, clock, channels) in self.rtpmap().items():
            if name == "opus" and clock == 48000 and channels == 2 and pt in self.formats:
                return pt
        return None


@dataclass
class SessionDescription:
    origin: Origin
    name: str = "-"
    connection: str | None = None
    addrtype: str = "IP4"
    times: list[str] = field(default_factory=lambda: ["0 0"])
    other: list[tuple[str, str]] = field(default_factory=list)  # i= u= e= p= b= z= k= r= lines
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)

    def attr(self, name: str) -> str | None:
        for key, value in self.attributes:
            if key == name:
                return value if value is not None else ""
        return None

    def attrs(self, name: str) -> list[str]:
        return [v or "" for k, v in self.attributes if k == name]

    def attr_direction(self) -> str:
        """Session-level direction; sendrecv when absent (RFC 8866 §6.7)."""
        found = [k for k, _ in self.attributes if k in DIRECTIONS]
        return found[-1] if found else "sendrecv"

    def serialize(self) -> bytes:
        lines = ["v=0", f"o={self.origin}", f"s={self.name}"]
        lines += [f"{k}={v}" for k, v in self.other if k in "iuep"]
        if self.connection is not None:
            lines.append(f"c=IN {self.addrtype} {self.connection}")
        lines += [f"{k}={v}" for k, v in self.other if k == "b"]
        for t in self.times:
            lines.append(f"t={t}")
        lines += [f"{k}={v}" for k, v in self.other if k in "rzk"]
        lines += [_attr_line(k, v) for k, v in self.attributes]
        for m in self.media:
            count = f"/{m.port_count}" if m.port_count is not None else ""
            lines.append(f"m={m.media} {m.port}{count} {m.proto} {' '.join(m.formats)}")
            lines += [f"{k}={v}" for k, v in m.other if k == "i"]
            if m.connection is not None:
                lines.append(f"c=IN {m.addrtype} {m.connection}")
            lines += [f"{k}={v}" for k, v in m.other if k != "i"]
            lines += [_attr_line(k, v) for k, v in m.attributes]
        return ("\r\n".join(lines) + "\r\n").encode()


def _attr_line(name: str, value: str | None) -> str:
    return f"a={name}" if value is None else f"a={name}:{value}"


# ---------------------------------------------------------------- parsing


def _parse_connection(value: str) -> tuple[str, str]:
    parts = value.split(" ")
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise _bad(f"bad c= line {value[:40]!r}")
    address = parts[2].split("/")[0]
    if not _ADDRESS.match(address):
        raise _bad("bad connection address")
    return parts[1], address


def _parse_attribute(value: str) -> tuple[str, str | None]:
    name, colon, rest = value.partition(":")
    if not _TOKEN.match(name):
        raise _bad(f"bad attribute name {name[:40]!r}")
    return name, rest if colon else None


def parse(data: bytes) -> SessionDescription:
    """Parse an SDP body; raises SdpError and nothing else, whatever the bytes."""
    try:
        return _parse(data)
    except SdpError:
        raise
    except (ValueError, LookupError, ArithmeticError, UnicodeError, RecursionError) as exc:
        raise SdpError(f"SDP: unexpected {type(exc).__name__}", 400, kind=ParseReason.UNEXPECTED) from None


def _parse(data: bytes) -> SessionDescription:
    if len(data) > MAX_SDP:
        raise SdpError("SDP too large", 413)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("not UTF-8") from None
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) > MAX_LINES:
        raise SdpError("SDP has too many lines", 413)
    for line in lines:
        if len(line) < 2 or line[1] != "=" or not ("a" <= line[0] <= "z"):
            raise _bad(f"bad line {line[:40]!r}")
        if any(ord(c) < 32 and c != "\t" for c in line) or "\r" in line:
            raise _bad("control character")
    if len(lines) < 3 or lines[0] != "v=0":
        raise _bad("must start with v=0")
    if not lines[1].startswith("o="):
        raise _bad("o= must follow v=")
    origin = _parse_origin(lines[1][2:])
    if not lines[2].startswith("s=") or lines[2] == "s=":
        raise _bad("s= must follow o= and not be empty")
    sdp = SessionDescription(origin=origin, name=lines[2][2:], times=[])
    current: Media | None = None
    for line in lines[3:]:
        kind, value = line[0], line[2:]
        if kind == "m":
            if len(sdp.media) >= MAX_MEDIA:
                raise SdpError("too many media sections", 413)
            current = _parse_media(value)
            sdp.media.append(current)
        elif kind == "c":
            addrtype, address = _parse_connection(value)
            if current is None:
                if sdp.connection is not None:
                    raise _bad("two session c= lines")
                sdp.connection, sdp.addrtype = address, addrtype
            else:
                current.connection, current.addrtype = address, addrtype
        elif kind == "a":
            (current.attributes if current else sdp.attributes).append(_parse_attribute(value))
        elif current is None and kind == "t":
            if not re.match(r"[0-9]{1,20} [0-9]{1,20}\Z", value):
                raise _bad("bad t= line")
            sdp.times.append(value)
        elif current is None and kind in "iuepbzkr":
            sdp.other.append((kind, value))
        elif current is not None and kind in "ibk":
            current.other.append((kind, value))
        else:
            raise _bad(f"unexpected {kind}= line")
    if not sdp.times:
        raise _bad("no t= line")
    for m in sdp.media:
        if m.connection is None and sdp.connection is None and m.port != 0:
            raise _bad("media without a connection address")
        _validate_media_attributes(m)
    _validate_common(sdp.attributes)
    return sdp


def _parse_origin(value: str) -> Origin:
    parts = value.split(" ")
    if len(parts) != 6 or parts[3] != "IN" or parts[4] not in ("IP4", "IP6"):
        raise _bad("bad o= line")
    version = ascii_number(parts[2], 20)
    if ascii_number(parts[1], 20) is None or version is None:
        raise _bad("bad o= session id or version")
    return Origin(parts[0], parts[1], version, parts[5], parts[4])


def _parse_media(value: str) -> Media:
    parts = value.split(" ")
    if len(parts) < 4:
        raise _bad("m= line needs media, port, proto and formats")
    kind, port_text, proto, formats = parts[0], parts[1], parts[2], parts[3:]
    if not _TOKEN.match(kind) or not re.match(r"[A-Za-z0-9/]+\Z", proto):
        raise _bad("bad m= line")
    port_s, slash, count_s = port_text.partition("/")
    port = ascii_number(port_s, 5)
    count = ascii_number(count_s, 5) if slash else None
    if port is None or port > 65535 or (slash and count is None):
        raise _bad("bad m= port")
    if len(formats) > MAX_FORMATS or any(not _TOKEN.match(f) for f in formats):
        raise _bad("bad m= formats")
    if "RTP" in proto and any((pt := ascii_number(f, 3)) is None or pt > 127 for f in formats):
        raise _bad("RTP payload types must be 0..127")
    return Media(kind, port, proto, formats, count)


def _validate_common(attributes: list[tuple[str, str | None]]) -> None:
    for name, value in attributes:
        if name == "fingerprint" and (value is None or not _FINGERPRINT.match(value)):
            raise _bad("bad fingerprint")  # well-formed but unusable (md5, wrong length) is judged in use
        if name == "setup" and value not in SETUP_ROLES:
            raise _bad("bad setup role")
        # An empty value says nothing (linphonec answers a DTLS-SRTP offer with one); read as no zrtp-hash.
        if name == "zrtp-hash" and value and not _ZRTP_HASH.match(value):
            raise _bad("bad zrtp-hash")
        if name in DIRECTIONS and value is not None:
            raise _bad(f"{name} takes no value")


# RFC 3605 a=rtcp: PORT [IN IP4|IP6 ADDRESS]
_RTCP_ATTR = re.compile(r"([0-9]{1,5})(?: IN (?:IP4 [0-9.]{7,15}|IP6 [0-9A-Fa-f:.]{2,45}))?")


def rtcp_attribute(value: str | None) -> tuple[int, str | None]:
    """The port and (optional) address of an a=rtcp value."""
    match = _RTCP_ATTR.fullmatch(value or "")
    if match is None or not 0 < int(match.group(1)) < 65536:
        raise _bad("bad rtcp attribute")
    parts = (value or "").split()
    return int(match.group(1)), parts[3] if len(parts) == 4 else None


def _validate_media_attributes(m: Media) -> None:
    _validate_common(m.attributes)
    for value in m.attrs("rtcp"):
        rtcp_attribute(value)
    if m.media == "audio" and "RTP" in m.proto:
        m.rtpmap()  # raises on a malformed rtpmap
    if len([k for k, _ in m.attributes if k in DIRECTIONS]) > 1:
        raise _bad("more than one direction attribute")
