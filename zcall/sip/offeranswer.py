"""SDP offer/answer (RFC 3264) for one Opus audio stream: the offer we make, our answer to an offer, and
what we read of the peer's audio stream (AudioParams).

An SDP we understand but cannot accept (no audio stream with Opus over a profile we speak, DTLS-SRTP
without a usable fingerprint) raises SdpError with status 488.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from zcall.dtls.fingerprint import FingerprintParseError, PeerPin
from zcall.sip.icesdp import IceDescription, read_ice
from zcall.sip.sdp import (
    DTLS_PROFILES,
    KNOWN_PROFILES,
    ZRTP_PROFILES,
    ZRTP_VERSION,
    Media,
    Origin,
    SdpError,
    SessionDescription,
    rtcp_attribute,
)  # fmt: skip

Mode = Literal["zrtp", "dtls"]


def _unacceptable(reason: str) -> SdpError:
    return SdpError(f"SDP: {reason}", 488)


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
        rtcp_port, rtcp_host = rtcp_attribute(m.attr("rtcp")) if m.has("rtcp") else (m.port + 1, None)
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
