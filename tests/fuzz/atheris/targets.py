"""Coverage-guided fuzz targets (atheris): every wire parser (STUN as far as zcall reads it, by the demux;
RED inside RTP), and the SIP, ZRTP and DTLS cores fed whole sequences of packets. A target raises only when
the code under test breaks its contract: a parser that raises anything but its own error (or a SIP/SDP error
counted as UNEXPECTED, a check that is missing), or a core that raises at all. Seeds come from real exchanges
so that mutation starts deep in each protocol.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterator
from functools import cache

SEPARATOR = b"\n--8<--\n"  # splits one fuzz input into a packet sequence for the core targets
MAX_PACKETS = 24


def packets(data: bytes) -> list[bytes]:
    return data.split(SEPARATOR)[:MAX_PACKETS]


def _no_unexpected(exc: Exception) -> None:
    from zcall.sip.errors import ParseReason, SipParseError

    if isinstance(exc, SipParseError) and exc.kind is ParseReason.UNEXPECTED:
        raise AssertionError(f"a parser check is missing: {exc.reason}") from exc


# ---------------------------------------------------------------- parsers


def sip_message(data: bytes) -> None:
    from zcall.sip.errors import SipParseError
    from zcall.sip.model import Request
    from zcall.sip.parser import parse

    for stream in (False, True):
        try:
            message = parse(data, stream=stream)
        except SipParseError as exc:
            _no_unexpected(exc)
            continue
        wire = message.serialize()  # what we parsed we can write, and read back the same
        again = parse(wire)
        assert type(again) is type(message)
        if isinstance(message, Request) and isinstance(again, Request):
            assert again.method == message.method and again.cseq == message.cseq


def sdp(data: bytes) -> None:
    from zcall.sip import offeranswer as oa_mod
    from zcall.sip import sdp as sdp_mod
    from zcall.sip.errors import SipParseError

    try:
        parsed = sdp_mod.parse(data)
    except SipParseError as exc:
        _no_unexpected(exc)
        return
    sdp_mod.parse(parsed.serialize())
    for mode in ("zrtp", "dtls"):
        fingerprint = "sha-256 " + ":".join(["AB"] * 32)
        local = oa_mod.LocalAudio("10.0.0.1", 4000, mode=mode, fingerprint=fingerprint)
        try:
            oa_mod.audio_params(parsed)
            oa_mod.answer(parsed, local, "1", 1)
        except SipParseError as exc:
            _no_unexpected(exc)


def sip_text(data: bytes) -> None:
    """URIs, name-addrs, Via, CSeq and digest challenges: the header-value parsers on their own."""
    from zcall.sip.digest import parse_challenge
    from zcall.sip.errors import SipParseError
    from zcall.sip.headers import parse_cseq, parse_via
    from zcall.sip.uri import parse_name_addr, parse_uri

    text = data.decode("utf-8", "replace")
    parser: Callable[[str], object]
    for parser in (parse_uri, parse_name_addr, parse_via, parse_cseq, parse_challenge):
        try:
            parser(text)
        except SipParseError as exc:
            _no_unexpected(exc)


def zrtp_packet(data: bytes) -> None:
    from zcall.zrtp.messages import parse_message
    from zcall.zrtp.packet import ParseError, parse_packet

    try:
        parse_packet(data)
    except ParseError:
        pass
    try:
        parse_message(data[12:])
    except ParseError:
        pass


def rtp(data: bytes) -> None:
    from zcall.media import red
    from zcall.media.demux import classify_with_reason  # STUN, ZRTP, DTLS, RTP/RTCP demultiplexing
    from zcall.media.rtp import RtpPacket, RtpParseError, parse_rtcp_compound

    classify_with_reason(data)
    try:
        packet = RtpPacket.parse(data)
        assert RtpPacket.parse(packet.serialize()) == packet
        blocks = red.parse(packet.payload, packet.payload_type)  # as if the packet's type were RED's
        assert sum(len(b.payload) for b in blocks) <= len(packet.payload)
        assert all(b.payload_type != packet.payload_type for b in blocks)
    except (RtpParseError, red.RedError):
        pass
    try:
        parse_rtcp_compound(data)
    except RtpParseError:
        pass


def discovery_txt(data: bytes) -> None:
    from zcall.discovery.service import TxtError, decode_txt

    try:
        decode_txt(data)
    except TxtError:
        pass


def dtls_text(data: bytes) -> None:
    from zcall.dtls.fingerprint import Fingerprint, FingerprintParseError, PeerPin
    from zcall.dtls.records import RecordError, split_records

    text = data.decode("utf-8", "replace")
    try:
        Fingerprint.parse(text)
    except FingerprintParseError:
        pass
    try:
        PeerPin.from_sdp(text.split("\n"))
    except FingerprintParseError:
        pass
    try:
        split_records(data)
    except RecordError:
        pass


def config(data: bytes) -> None:
    from zcall.config import ConfigError, from_mapping

    try:
        mapping = tomllib.loads(data.decode("utf-8", "replace"))
    except tomllib.TOMLDecodeError:
        return
    try:
        from_mapping(mapping)
    except ConfigError:
        pass


# ---------------------------------------------------------------- cores fed packet sequences


def sip_core(data: bytes) -> None:
    """A UserAgent answering whatever arrives: rings and answers every call, on a clock that moves on."""
    from zcall.sip.dialog import UaConfig
    from zcall.sip.events import IncomingCall
    from zcall.sip.ua import UserAgent

    transport = "UDP" if not data[:1] or data[0] % 2 == 0 else "TLS"
    ua = UserAgent(UaConfig("10.0.0.2", 5060, transport, user="bob"))
    now = 0.0
    for packet in packets(data):
        ua.receive(packet, ("10.0.0.1", 5060), now, stream=transport != "UDP")
        while (event := ua.next_event()) is not None:
            if isinstance(event, IncomingCall):
                ua.ringing(event.call_id, now)
                ua.answer(event.call_id, _SDP_ANSWER, now)
        ua.datagrams_to_send(now)
        now += 0.7
        timer = ua.get_timer()
        if timer is not None and timer <= now:
            ua.handle_timer(now)
    ua.handle_timer(now + 3600.0)
    ua.datagrams_to_send(now)


_SDP_ANSWER = (
    b"v=0\r\no=- 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=audio 4000 RTP/AVP 96\r\n"
)


def zrtp_core(data: bytes) -> None:
    """A responder-side ZRTP session fed what an initiator (or anyone) sends it."""
    from tests.unit.zrtp.harness import make

    session = make(2)
    session.start(0.0)
    now = 0.0
    for packet in packets(data):
        session.receive(packet, now)
        session.datagrams_to_send(now)
        while session.next_event() is not None:
            pass
        now += 0.05
        timer = session.get_timer()
        if timer is not None and timer <= now:
            session.handle_timer(now)
    session.handle_timer(now + 3600.0)


def dtls_core(data: bytes) -> None:
    """A DTLS-SRTP server session fed a client's flights, mutated."""
    from tests.unit.dtls.harness import session

    alice, bob = _dtls_creds()
    server = session("server", bob, alice)
    now = 1.0
    for packet in packets(data):
        server.receive(packet, now)
        server.datagrams_to_send(now)
        while server.next_event() is not None:
            pass
        now += 0.1
    server.handle_timer(1e9)


@cache
def _dtls_creds() -> tuple[object, object]:
    from tests.unit.dtls.harness import make_cred

    return make_cred("alice"), make_cred("bob")


TARGETS: dict[str, Callable[[bytes], None]] = {
    "sip_message": sip_message,
    "sdp": sdp,
    "sip_text": sip_text,
    "zrtp_packet": zrtp_packet,
    "rtp": rtp,
    "discovery_txt": discovery_txt,
    "dtls_text": dtls_text,
    "config": config,
    "sip_core": sip_core,
    "zrtp_core": zrtp_core,
    "dtls_core": dtls_core,
}


# ---------------------------------------------------------------- seeds


def seeds(name: str) -> Iterator[bytes]:
    """Valid inputs from the unit tests' samples and from live exchanges: where mutation starts."""
    from tests.unit.sip import samples

    if name == "sip_message":
        yield samples.invite()
        yield samples.RESPONSE_200
        yield samples.TORTURE_VALID
    elif name == "sdp":
        yield samples.SDP
        yield samples.LINPHONE_OFFER
        yield samples.DTLS_OFFER
        yield _with_ice(samples.DTLS_OFFER)
    elif name == "sip_text":
        yield b'"Alice" <sip:alice@192.0.2.10:5060;transport=tls>;tag=1928301774'
        yield b"SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport;received=10.0.0.1"
        yield b'Digest realm="sip.test", nonce="n1", qop="auth,auth-int", algorithm=SHA-256, opaque="o"'
        yield b"314159 INVITE"
    elif name in ("zrtp_packet", "zrtp_core"):
        transcript = _zrtp_transcript()
        if name == "zrtp_packet":
            yield from transcript
        else:
            yield SEPARATOR.join(transcript)
    elif name == "rtp":
        from zcall.media import red
        from zcall.media.rtp import RtpPacket

        yield RtpPacket(96, 1, 960, 0x1234, b"\x01" * 40).serialize()
        encoder = red.RedEncoder(96, distance=2)
        for n in range(3):
            payload = encoder.encode(bytes([n]) * 30, 960 * n)
        yield RtpPacket(97, 3, 1920, 0x1234, payload).serialize()  # RED: two earlier frames and the primary
        yield bytes.fromhex("81c8000c00001234") + bytes(44)  # an RTCP sender report
    elif name == "discovery_txt":
        from zcall.discovery.service import encode_txt

        props = encode_txt(b"\x01" * 12, 5060, "Reception desk", "0.1", "alice@sip.example")
        yield b"".join(bytes([len(e)]) + e for e in (f"{k}={v}".encode() for k, v in props.items()))
    elif name == "dtls_text":
        yield ("sha-256 " + ":".join(["AB"] * 32)).encode()
    elif name == "config":
        yield b'[unit]\nname = "desk"\n[network]\nsip_port = 5060\n[server]\nuri = "sips:alice@sip.example"\n'
    elif name == "sip_core":
        invite = samples.invite()
        cancel = invite.replace(b"INVITE sip:", b"CANCEL sip:", 1).replace(b"314159 INVITE", b"314159 CANCEL")
        yield SEPARATOR.join([invite, invite, cancel])
        yield b"\x01" + SEPARATOR.join([invite, samples.RESPONSE_200])
    elif name == "dtls_core":
        yield SEPARATOR.join(_dtls_transcript())


def _with_ice(offer: bytes) -> bytes:
    """An offer with ICE credentials and a host and a relay candidate (RFC 8839), for the candidate parser."""
    from tests.unit.sip.test_icesdp import HOST, PWD, RELAY, UFRAG

    ice = [f"a=ice-ufrag:{UFRAG}", f"a=ice-pwd:{PWD}"] + [f"a=candidate:{c.to_sdp()}" for c in (HOST, RELAY)]
    return offer + ("\r\n".join(ice) + "\r\n").encode()


def _zrtp_transcript() -> list[bytes]:
    from tests.unit.zrtp.harness import make, run_pair

    run = run_pair(make(1), make(2))
    return list(run.sent["a"])


def _dtls_transcript() -> list[bytes]:
    from tests.unit.dtls.harness import Pair, session

    alice, bob = _dtls_creds()
    pair = Pair(session("client", alice, bob, mtu=400), session("server", bob, alice, mtu=400))
    pair.client.start(0.0)
    pair.settle(0.0)
    pair.secure()
    return list(pair.sent["c2s"])
