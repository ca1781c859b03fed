"""SDP (RFC 8866) parse/serialize and offer/answer (RFC 3264) for one Opus audio stream.

Malformed SDP raises SdpError with status 400; an SDP we understand but cannot accept (no audio stream with
Opus over a profile we speak) raises SdpError with status 488. Unknown attributes are kept and written back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Literal

from zcall.dtls.fingerprint import FingerprintParseError, PeerPin
from zcall.sip.errors import ParseReason, SipParseError, ascii_number
from zcall.sip.icesdp import IceDescription, read_ice

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

Mode = Literal["zrtp", "dtls"]


class SdpError(SipParseError):
    """Malformed (400) or unacceptable (488) SDP."""

    default_kind = ParseReason.SDP


def _bad(reason: str) -> SdpError:
    return SdpError(f"SDP: {reason}", 400)


def _unacceptable(reason: str) -> SdpError:
    return SdpError(f"SDP: {reason}", 488)


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


def _rtcp_attribute(value: str | None) -> tuple[int, str | None]:
    """The port and (optional) address of an a=rtcp value."""
    match = _RTCP_ATTR.fullmatch(value or "")
    if match is None or not 0 < int(match.group(1)) < 65536:
        raise _bad("bad rtcp attribute")
    parts = (value or "").split()
    return int(match.group(1)), parts[3] if len(parts) == 4 else None


def _validate_media_attributes(m: Media) -> None:
    _validate_common(m.attributes)
    for value in m.attrs("rtcp"):
        _rtcp_attribute(value)
    if m.media == "audio" and "RTP" in m.proto:
        m.rtpmap()  # raises on a malformed rtpmap
    if len([k for k, _ in m.attributes if k in DIRECTIONS]) > 1:
        raise _bad("more than one direction attribute")


# ---------------------------------------------------------------- offer / answer


@dataclass(frozen=True)
class AudioParams:
    """What one side said about its audio stream, read from its SDP."""

    host: str
    port: int
    proto: str
    payload_type: int
    direction: str
    rtcp_mux: bool  # both sides agreed: RTCP shares the RTP port
    fmtp: dict[str, str]
    zrtp_hash: str | None  # "1.10 <hex>" as sent
    fingerprints: tuple[str, ...]  # "sha-256 AB:CD:…", media level first, then session level
    setup: str | None
    rtcp_host: str = ""  # where RTCP goes without mux: a=rtcp (RFC 3605), else the RTP address, port + 1
    rtcp_port: int = 0
    red_payload_type: int | None = None  # RED over this side's Opus, when its SDP lists it (RFC 2198)
    ice: IceDescription | None = None  # None: the side does not do ICE (reach it on host:port)


@dataclass(frozen=True)
class LocalAudio:
    """Our side of the audio stream, used to build offers and answers."""

    host: str
    port: int
    mode: Mode = "zrtp"
    payload_type: int = 96
    direction: str = "sendrecv"
    zrtp_hash: str | None = None  # "1.10 <hex>"
    fingerprint: str | None = None  # "sha-256 AB:…" (DTLS mode)
    setup: str = "actpass"
    username: str = "zcall"
    rtcp_port: int | None = None  # our RTCP port for a peer that does not multiplex (said with a=rtcp)
    # RED (RFC 2198) offered after Opus with this payload type; None: not offered (nor accepted in answers).
    red_payload_type: int | None = None
    # ICE (RFC 8839): our credentials and candidates; host/port above are then the default candidate.
    ice: IceDescription | None = None


def make_offer(local: LocalAudio, session_id: str, version: int) -> SessionDescription:
    proto = "RTP/AVP" if local.mode == "zrtp" else "UDP/TLS/RTP/SAVPF"
    red_pt = None if local.red_payload_type is None else str(local.red_payload_type)
    media = _local_media(local, proto, str(local.payload_type), local.direction, rtcp_mux=True, offer=True,
                         red_pt=red_pt)
    if local.ice is not None:
        media.attributes += local.ice.attributes()
    if local.mode == "dtls":
        media.attributes.append(("setup", local.setup))
    return _session(local, session_id, version, media)


def answer(offer: SessionDescription, local: LocalAudio, session_id: str, version: int) -> SessionDescription:
    """Accept the first audio stream with Opus over our profile; reject every other stream with port 0."""
    profiles = ZRTP_PROFILES if local.mode == "zrtp" else DTLS_PROFILES
    chosen: Media | None = None
    answers: list[Media] = []
    for m in offer.media:
        pt = m.opus_payload_type() if m.media == "audio" and m.port != 0 else None
        if chosen is None and pt is not None and m.proto in profiles:
            if local.mode == "dtls" and not usable_fingerprints(offer, m):
                raise _unacceptable("DTLS-SRTP offer without a usable fingerprint")
            direction = _answer_direction(m.direction or offer.attr_direction(), local.direction)
            red_pt = m.red_payload_type(pt) if local.red_payload_type is not None else None
            chosen = _local_media(local, m.proto, pt, direction, rtcp_mux=m.has("rtcp-mux"), red_pt=red_pt)
            if local.ice is not None and read_ice(m.attributes, offer.attributes) is not None:
                chosen.attributes += local.ice.attributes()  # RFC 8445 §5.1: only to a peer offering ICE
            if local.mode == "dtls":
                offered = _setup(offer, m, is_answer=False)
                chosen.attributes.append(("setup", "passive" if offered == "active" else "active"))
            answers.append(chosen)
        else:
            answers.append(Media(m.media, 0, m.proto, m.formats[:1] or ["0"]))
    if chosen is None:
        raise _unacceptable("no audio stream with opus/48000/2 over " + " or ".join(profiles))
    return _session(local, session_id, version, *answers)


def _answer_direction(offered: str, ours: str) -> str:
    """RFC 3264 §6.1: the answer's direction is the offered one mirrored, narrowed by our own wish."""
    can_send = offered in ("sendrecv", "recvonly") and ours in ("sendrecv", "sendonly")
    can_recv = offered in ("sendrecv", "sendonly") and ours in ("sendrecv", "recvonly")
    return {(True, True): "sendrecv", (True, False): "sendonly", (False, True): "recvonly"}.get(
        (can_send, can_recv), "inactive"
    )


def _local_media(
    local: LocalAudio, proto: str, pt: str, direction: str, *, rtcp_mux: bool, offer: bool = False,
    red_pt: str | None = None,
) -> Media:
    media = Media("audio", local.port, proto, [pt] if red_pt is None else [pt, red_pt])
    media.attributes += [("rtpmap", f"{pt} opus/48000/2"), ("fmtp", f"{pt} useinbandfec=1")]
    if red_pt is not None:  # after Opus: a peer that does not know RED picks Opus
        media.attributes += [("rtpmap", f"{red_pt} red/48000/2"), ("fmtp", f"{red_pt} {pt}/{pt}")]
    if local.rtcp_port is not None and (offer or not rtcp_mux):
        # RFC 5761 §5.1.1: an offer of mux still says where RTCP goes if the answerer declines it.
        media.attributes.append(("rtcp", str(local.rtcp_port)))
    if rtcp_mux:
        media.attributes.append(("rtcp-mux", None))
    media.attributes.append((direction, None))
    if local.zrtp_hash:  # on the server path too, beside a=fingerprint: zcall units add ZRTP's words there
        media.attributes.append(("zrtp-hash", local.zrtp_hash))
    if local.mode == "dtls" and local.fingerprint:
        media.attributes.append(("fingerprint", local.fingerprint))
    return media


def _session(local: LocalAudio, session_id: str, version: int, *media: Media) -> SessionDescription:
    addrtype = "IP6" if ":" in local.host else "IP4"
    origin = Origin(local.username, session_id, version, local.host, addrtype)
    return SessionDescription(origin, "zcall", local.host, addrtype, ["0 0"], [], [], list(media))


def _zrtp_hash(values: list[str]) -> str | None:
    """The a=zrtp-hash for the ZRTP version we speak, of one per version the peer lists (RFC 6189 §8.1).
    An empty value says nothing (linphonec answers a DTLS-SRTP offer with one): None when all are."""
    given = [value for value in values if value]
    ours = [value for value in given if value.startswith(ZRTP_VERSION + " ")]
    return next(iter(ours or given), None)


def audio_params(sdp: SessionDescription, *, answer_to: SessionDescription | None = None) -> AudioParams:
    """The accepted audio stream of an SDP (offer, or answer when `answer_to` is the offer we sent)."""
    for m in sdp.media:
        if m.media != "audio" or m.port == 0 or m.proto not in KNOWN_PROFILES:
            continue
        pt = m.opus_payload_type()
        if pt is None:
            continue
        host = m.connection or sdp.connection or ""
        fingerprints = _fingerprints(sdp, m)
        if m.proto in DTLS_PROFILES and not usable_fingerprints(sdp, m):
            raise _unacceptable("DTLS-SRTP without a usable fingerprint")
        zrtp = _zrtp_hash(m.attrs("zrtp-hash")) or _zrtp_hash(sdp.attrs("zrtp-hash"))
        rtcp_port, rtcp_host = _rtcp_attribute(m.attr("rtcp")) if m.has("rtcp") else (m.port + 1, None)
        if rtcp_port > 65535:
            raise _unacceptable("no port for RTCP")
        return AudioParams(
            host=host,
            port=m.port,
            proto=m.proto,
            payload_type=int(pt),
            direction=m.direction or sdp.attr_direction(),
            rtcp_mux=m.has("rtcp-mux"),
            fmtp=m.fmtp(pt),
            zrtp_hash=zrtp,
            fingerprints=fingerprints,
            setup=_setup(sdp, m, is_answer=answer_to is not None),
            rtcp_host=rtcp_host or host,
            rtcp_port=rtcp_port,
            red_payload_type=None if (red := m.red_payload_type(pt)) is None else int(red),
            ice=read_ice(m.attributes, sdp.attributes),
        )
    raise _unacceptable("rejected: no usable audio stream" if answer_to else "no audio stream with Opus")


def _setup(sdp: SessionDescription, m: Media, *, is_answer: bool) -> str | None:
    """a=setup, or for DTLS RFC 4145 §4's default (RFC 5763 §5 keeps it): active in an offer, passive in an
    answer. Reading a missing one as actpass made an answer without it an unusable a=setup."""
    value = m.attr("setup") or sdp.attr("setup")
    if value is None and m.proto in DTLS_PROFILES:
        return "passive" if is_answer else "active"
    return value


def _fingerprints(sdp: SessionDescription, m: Media) -> tuple[str, ...]:
    return tuple(m.attrs("fingerprint")) + tuple(v or "" for k, v in sdp.attributes if k == "fingerprint")


def usable_fingerprints(sdp: SessionDescription, m: Media) -> bool:
    """Whether the stream's a=fingerprint values pin a certificate (a hash we trust, the right length)."""
    try:
        PeerPin.from_sdp(_fingerprints(sdp, m))
    except FingerprintParseError:
        return False
    return True


def bump_version(sdp: SessionDescription) -> SessionDescription:
    """A copy with o= version + 1, as every new offer in a session needs (RFC 3264 §8)."""
    return replace(sdp, origin=replace(sdp.origin, version=sdp.origin.version + 1))
