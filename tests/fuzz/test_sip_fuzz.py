"""Hypothesis fuzz of the SIP, SDP and digest parsers: only their parse error type may escape."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.sip.samples import DTLS_OFFER, LINPHONE_OFFER, RESPONSE_200, TORTURE_VALID, invite
from tests.unit.sip.uanet import Net
from zcall.sip import digest, offeranswer, sdp
from zcall.sip.dialog import UaConfig
from zcall.sip.digest import DigestParseError
from zcall.sip.errors import SipParseError
from zcall.sip.events import IncomingCall, ReInviteReceived
from zcall.sip.headers import parse_cseq, parse_via
from zcall.sip.parser import parse
from zcall.sip.sdp import SdpError
from zcall.sip.transport import FramingError, StreamFramer
from zcall.sip.ua import UserAgent
from zcall.sip.uri import parse_name_addr, parse_uri, split_outside_quotes

# ZCALL_FUZZ_EXAMPLES raises the budget for a long local run; the suite default stays quick.
FUZZ = settings(
    max_examples=int(os.environ.get("ZCALL_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
_SPECIALS = [b",", b";", b"\r\n", b" ", b'"', b"<", b">", b":", b"%", b"\x00", b"=", b"\r\n "]
SEEDS = [invite(), TORTURE_VALID, RESPONSE_200]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.integers(0, 3))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == 0 and data:
            data[pos] = draw(st.integers(0, 255))
        elif kind == 1:
            data[pos:pos] = draw(st.sampled_from(_SPECIALS))
        elif kind == 2:
            del data[pos : pos + draw(st.integers(1, 20))]
        else:
            data = data[:pos]
    return bytes(data)


def _check_sip(data: bytes) -> None:
    try:
        msg = parse(data)
    except SipParseError as exc:
        assert exc.status in (None, 400, 413, 414, 416, 420, 505)
        return
    # Whatever parses must serialize to something that parses to the same thing.
    out = msg.serialize()
    assert parse(out).serialize() == out


@FUZZ
@given(st.binary(max_size=2000))
def test_sip_random_bytes(data: bytes) -> None:
    _check_sip(data)


@FUZZ
@given(mutated(SEEDS))
def test_sip_mutated_messages(data: bytes) -> None:
    _check_sip(data)


def _check_sdp(data: bytes) -> None:
    try:
        desc = sdp.parse(data)
    except SdpError as exc:
        assert exc.status in (400, 413)
        return
    out = desc.serialize()
    assert sdp.parse(out).serialize() == out
    try:
        local = offeranswer.LocalAudio("10.0.0.1", 4000, zrtp_hash="1.10 " + "00" * 32)
        offeranswer.answer(desc, local, "1", 1)
    except SdpError as exc:
        assert exc.status in (400, 488)


@FUZZ
@given(st.binary(max_size=1500))
def test_sdp_random_bytes(data: bytes) -> None:
    _check_sdp(data)


@FUZZ
@given(mutated([LINPHONE_OFFER, DTLS_OFFER]))
def test_sdp_mutated(data: bytes) -> None:
    _check_sdp(data)


_CHALLENGE = (
    'Digest realm="sip.test", nonce="a\\"b", qop="auth,auth-int", algorithm=SHA-256, opaque="o", stale=1'
)


@FUZZ
@given(st.one_of(st.text(max_size=600), mutated([_CHALLENGE.encode()]).map(lambda b: b.decode("latin-1"))))
def test_digest_challenge_parser(text: str) -> None:
    try:
        challenge = digest.parse_challenge(text)
    except DigestParseError:
        return
    value = digest.DigestClient("u", "p").header_value(challenge, method="INVITE", uri="sip:a@b")
    assert value.startswith("Digest ")


def _call_log() -> list[bytes]:
    """Every message of a real exchange between two agents: INVITE … BYE, OPTIONS, re-INVITE, CANCEL."""
    a, b = UserAgent(UaConfig("10.0.0.1", 5060, user="a")), UserAgent(UaConfig("10.0.0.2", 5060, user="b"))
    net = Net(a, b)
    call_id = a.invite("sip:b@10.0.0.2", LINPHONE_OFFER, 0.0)
    net.pump()
    b.ringing(call_id, 0.0)
    b.answer(call_id, DTLS_OFFER, 0.0)
    net.pump()
    a.reinvite(call_id, LINPHONE_OFFER, 0.0)
    net.pump()
    b.answer_reinvite(call_id, LINPHONE_OFFER, 0.0)
    a.options("sip:b@10.0.0.2", 0.0)
    net.pump()
    a.bye(call_id, 0.0)
    other = a.invite("sip:b@10.0.0.2", b"", 0.0)
    net.pump()
    b.ringing(other, 0.0)
    net.pump()
    a.cancel(other, 0.0)
    net.pump()
    return [m.serialize() for _, _, m in net.log]


_LOG = _call_log()


@settings(FUZZ, max_examples=max(40, FUZZ.max_examples // 4))  # each example is a whole exchange
@given(st.lists(st.one_of(st.sampled_from(_LOG), mutated(_LOG)), min_size=1, max_size=12),
       st.integers(0, 3))
def test_user_agent_survives_any_message_sequence(messages: list[bytes], stage: int) -> None:
    """Whatever arrives, the core answers or drops it; it never raises and its timers stay sane."""
    ua = UserAgent(UaConfig("10.0.0.2", 5060, user="b"))
    now = 0.0
    for data in messages:
        ua.receive(data, ("10.0.0.1", 5060), now)
        while (ev := ua.next_event()) is not None:
            if isinstance(ev, IncomingCall):
                if stage == 0:
                    ua.ringing(ev.call_id, now)
                elif stage == 1:
                    ua.answer(ev.call_id, b"", now)
                elif stage == 2:
                    ua.reject(ev.call_id, 486, now)
            elif isinstance(ev, ReInviteReceived):
                ua.answer_reinvite(ev.call_id, b"", now)
        for out, _ in ua.datagrams_to_send(now):
            parse(out)  # whatever we send must itself parse
        now += 0.3
        timer = ua.get_timer()
        if timer is not None:
            assert timer >= 0
            ua.handle_timer(max(now, timer))
            ua.datagrams_to_send(now)


def _split_reference(text: str, sep: str) -> list[str] | None:
    """Character-by-character splitter to check the fast one against (None: malformed)."""
    out, cur, depth, quoted, i = [], "", 0, False, 0
    while i < len(text):
        ch = text[i]
        if quoted and ch == "\\" and i + 1 < len(text):
            cur += text[i : i + 2]
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth -= 1
            if depth < 0:
                return None
        elif not quoted and ch == sep and depth == 0:
            out.append(cur)
            cur = ""
            i += 1
            continue
        cur += ch
        i += 1
    if quoted or depth:
        return None
    return [*out, cur]


@FUZZ
@given(st.text(alphabet='ab,;<>"\\ ', max_size=40), st.sampled_from([",", ";"]))
def test_split_outside_quotes_matches_reference(text: str, sep: str) -> None:
    expected = _split_reference(text, sep)
    try:
        got = split_outside_quotes(text, sep)
    except SipParseError:
        got = None
    assert got == expected


@FUZZ
@given(st.lists(st.binary(max_size=300), max_size=20))
def test_stream_framer_random_chunks(chunks: list[bytes]) -> None:
    framer = StreamFramer()
    try:
        for chunk in chunks:
            for message in framer.feed(chunk):
                assert b"\r\n\r\n" in message
    except FramingError:
        pass


@FUZZ
@given(st.lists(st.sampled_from([*SEEDS, b"\r\n\r\n"]), min_size=1, max_size=6), st.data())
def test_stream_framer_any_split_gives_the_same_messages(parts: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(parts)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    framer = StreamFramer()
    got: list[bytes] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        got += framer.feed(stream[start:end])
    assert got == [p for p in parts if p != b"\r\n\r\n"]
    assert framer.pings == parts.count(b"\r\n\r\n")


_URI_PIECES = [*'sip:@;=?&%<>"\\ ,.-_[]:0123456789abcdefABCDEF', "sips:", "tel:", "%2", "\t"]
_URI_ALPHABET = st.sampled_from(_URI_PIECES)


@FUZZ
@given(st.one_of(st.text(max_size=80), st.lists(_URI_ALPHABET, max_size=40).map("".join)))
def test_uri_and_header_value_parsers(text: str) -> None:
    for parser in (parse_uri, parse_name_addr, parse_via, parse_cseq):
        try:
            value = parser(text)
        except SipParseError:
            continue
        if parser is parse_uri:
            again = parse_uri(str(value))
            assert str(again) == str(value)
        if parser is parse_name_addr:
            assert str(parse_name_addr(str(value))) == str(value)


# Characters str.isdigit() accepts (superscripts, other scripts' digits, circled numbers): a byte-level
# mutator almost never builds their multi-byte UTF-8, so they get a strategy of their own.
_UNICODE_DIGITS = st.characters(categories=["Nd", "No"]).filter(lambda c: not c.isascii())
_NUMERIC_SPOTS = [b"314159", b"70", b"5060", b"192.0.2.10", b"1 IN IP4", b"49170", b"0 0"]


@FUZZ
@given(st.sampled_from([*SEEDS, invite(body=LINPHONE_OFFER)]), st.sampled_from(_NUMERIC_SPOTS),
       st.integers(0, 8), _UNICODE_DIGITS)  # fmt: skip
def test_unicode_digits_in_numeric_fields_are_refused(seed: bytes, spot: bytes, at: int, digit: str) -> None:
    if spot not in seed:
        return
    i = seed.index(spot) + at % len(spot)
    data = seed[:i] + digit.encode() + seed[i + 1 :]
    try:
        message = parse(data)
    except SipParseError as exc:
        assert exc.kind.value != "unexpected", exc.reason
        return
    try:
        sdp.parse(message.body)
    except SdpError as exc:
        assert exc.kind.value != "unexpected", exc.reason
