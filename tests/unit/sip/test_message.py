"""SIP message parse/serialize: round trips of valid messages and a table of malformed requests."""

from __future__ import annotations

import pytest

from tests.unit.sip.samples import RESPONSE_200, SDP, TORTURE_VALID, invite
from zcall.sip.errors import ParseReason, SipParseError
from zcall.sip.headers import Headers
from zcall.sip.model import Request, Response, build_response
from zcall.sip.parser import MAX_HEADER_BYTES, MalformedRequest, parse
from zcall.sip.uri import parse_name_addr, parse_uri


def test_valid_invite_round_trip() -> None:
    msg = parse(invite())
    assert isinstance(msg, Request)
    assert msg.method == "INVITE" and str(msg.uri) == "sip:bob@192.0.2.20"
    assert msg.body == SDP
    assert msg.cseq.seq == 314159 and msg.cseq.method == "INVITE"
    assert msg.top_via.branch == "z9hG4bK776asdhds" and msg.top_via.port == 5060
    again = parse(msg.serialize())
    assert again.serialize() == msg.serialize()
    assert list(again.headers) == list(msg.headers)


def test_torture_message_folding_compact_and_escapes() -> None:
    msg = parse(TORTURE_VALID)
    assert isinstance(msg, Request)
    assert msg.headers.get("X-Made-Up") == "first part second part"
    assert msg.headers.get("subject") == ""
    assert msg.from_.display == 'Dan \\ "the" Man' and msg.from_.tag == "x77q"
    assert msg.to.tag == "55aa01" and msg.to.uri.user == "carol"
    assert msg.cseq.seq == 12
    assert [v.branch for v in msg.vias] == ["z9hG4bKfold1", "z9hG4bKrel2", "z9hG4bKlast3"]
    assert [v.transport for v in msg.vias] == ["UDP", "TCP", "UDP"]
    (contact,) = msg.contacts
    assert contact.display == 'With "quotes"'
    assert contact.params == {"fresh": "value", "flag": None, "q": "0.5"}
    assert msg.headers.get("Max-Forwards") == "0042"
    out = msg.serialize()
    assert b"\r\nVia: " in out and b"\r\nv:" not in out
    assert parse(out).serialize() == out


def test_response_compact_forms_and_record_route_list() -> None:
    msg = parse(RESPONSE_200)
    assert isinstance(msg, Response)
    assert msg.status == 200 and msg.reason == "OK"
    assert [str(r.uri) for r in msg.record_route] == ["sip:p1.example.com;lr", "sip:p2.example.com;lr"]
    assert msg.contacts[0].uri.transport == "TCP"
    assert msg.top_via.params["received"] == "192.0.2.10"
    assert msg.content_type == "application/sdp"
    assert parse(msg.serialize()).serialize() == msg.serialize()


def test_auth_headers_are_not_split_on_commas() -> None:
    extra = 'Authorization: Digest username="alice", realm="x", nonce="n, comma", uri="sip:b", response="00"'
    msg = parse(invite(extra=extra))
    assert len(msg.headers.get_all("Authorization")) == 1


def test_empty_list_headers_that_may_be_empty() -> None:
    msg = parse(invite(extra="Supported:\nAllow: \nAccept:"))
    assert msg.headers.get_all("Supported") == [""] and msg.headers.get("Allow") == ""
    with pytest.raises(SipParseError):
        parse(invite(extra="Require:"))


def test_datagram_trailing_octets_are_discarded() -> None:
    msg = parse(invite(body=SDP + b"junk", length=len(SDP)))
    assert msg.body == SDP


def test_leading_crlf_is_ignored_and_keepalive_dropped() -> None:
    assert isinstance(parse(b"\r\n\r\n" + invite()), Request)
    with pytest.raises(SipParseError) as info:
        parse(b"\r\n\r\n")
    assert info.value.status is None


def test_lowercase_version_and_tel_in_from_are_accepted() -> None:
    msg = parse(invite(request_line="INVITE sip:bob@192.0.2.20 sip/2.0", extra="X-Note: ok"))
    assert msg.headers.get("x-note") == "ok"
    addr = parse_name_addr("<tel:+15551234;phone-context=x>;tag=9")
    assert addr.uri.scheme == "tel" and addr.tag == "9"


def test_uri_escapes_compare_equal() -> None:
    a = parse_uri("sip:%61lice@EXAMPLE.com;transport=TCP")
    b = parse_uri("sip:alice@example.com;transport=tcp")
    assert a.same_as(b)
    assert not a.same_as(parse_uri("sip:alice@example.com"))
    assert str(parse_uri("sips:bob:pw@[2001:db8::1]:5061;maddr=x?Subject=hi")) == (
        "sips:bob:pw@[2001:db8::1]:5061;maddr=x?Subject=hi"
    )


def test_build_response_copies_and_tags() -> None:
    req = parse(TORTURE_VALID)
    assert isinstance(req, Request)
    resp = build_response(req, 180, to_tag="uas1")
    assert resp.headers.get_all("Via") == req.headers.get_all("Via")
    parsed = parse(resp.serialize())
    assert isinstance(parsed, Response) and parsed.status == 180 and parsed.reason == "Ringing"
    assert parsed.to.tag == "55aa01"  # an existing tag is kept
    fresh = parse(invite())
    assert isinstance(fresh, Request)
    assert parse(build_response(fresh, 200, to_tag="t1").serialize()).to.tag == "t1"
    assert parse(build_response(fresh, 100, to_tag="t1").serialize()).to.tag is None


def test_headers_set_and_remove() -> None:
    h = Headers([("v", "a"), ("X-A", "1"), ("Via", "b"), ("x", "2")])
    assert h.get("session-expires") == "2"  # 'x' is the compact form
    h.set("Via", "c")
    assert list(h) == [("Via", "c"), ("X-A", "1"), ("Session-Expires", "2")]
    h.remove("x-a")
    h.remove("x")
    assert list(h) == [("Via", "c")]


def _many_headers(n: int) -> str:
    return "\n".join(f"X-H{i}: {i}" for i in range(n))


_BOB = b"<sip:bob@192.0.2.20>"
_GOOD_VIA = "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds"
DROP = None

# (name, message bytes, expected status or DROP)
MALFORMED: list[tuple[str, bytes, int | None]] = [
    ("double space in request line", invite(request_line="INVITE  sip:bob@192.0.2.20 SIP/2.0"), 400),
    ("request line without version", invite(request_line="INVITE sip:bob@192.0.2.20"), 400),
    ("version 7.0", invite(request_line="INVITE sip:bob@192.0.2.20 SIP/7.0"), 505),
    ("version 2.1", invite(request_line="INVITE sip:bob@192.0.2.20 SIP/2.1"), 505),
    ("version without minor", invite(request_line="INVITE sip:bob@192.0.2.20 SIP/2"), 400),
    ("version not SIP", invite(request_line="INVITE sip:bob@192.0.2.20 HTTP/1.1"), 400),
    ("http request URI", invite(request_line="INVITE http://example.com/ SIP/2.0"), 416),
    ("tel request URI", invite(request_line="INVITE tel:+15551234 SIP/2.0"), 416),
    ("request URI too long", invite(request_line=f"INVITE sip:{'a' * 2000}@h.example SIP/2.0"), 414),
    ("request URI with headers", invite(request_line="INVITE sip:bob@h.example?Subject=x SIP/2.0"), 400),
    ("request URI without host", invite(request_line="INVITE sip:bob@ SIP/2.0"), 400),
    ("request URI port too big", invite(request_line="INVITE sip:bob@h.example:99999 SIP/2.0"), 400),
    ("request URI port zero", invite(request_line="INVITE sip:bob@h.example:0 SIP/2.0"), 400),
    ("space inside request URI", invite(request_line="INVITE sip:bob @h.example SIP/2.0"), 400),
    ("bad escape in request URI", invite(request_line="INVITE sip:b%zzob@h.example SIP/2.0"), 400),
    ("request URI in angle brackets", invite(request_line="INVITE <sip:bob@h.example> SIP/2.0"), 400),
    ("request URI unterminated IPv6", invite(request_line="INVITE sip:bob@[2001:db8::1 SIP/2.0"), 400),
    ("request URI bad IPv4 octet", invite(request_line="INVITE sip:bob@300.1.1.1 SIP/2.0"), 400),
    ("request URI underscore host", invite(request_line="INVITE sip:bob@ex_ample.com SIP/2.0"), 400),
    ("request URI empty parameter", invite(request_line="INVITE sip:bob@h.example;;lr SIP/2.0"), 400),
    ("method with bad character", invite(request_line="INV@ITE sip:bob@h.example SIP/2.0"), 400),
    ("no Via", invite(via=""), DROP),
    ("unparseable Via", invite(via="Via: garbage"), DROP),
    ("Via with bad port", invite(via="Via: SIP/2.0/UDP 192.0.2.10:70000;branch=z9hG4bK1"), DROP),
    ("Via with SIP/3.0", invite(via="Via: SIP/3.0/UDP 192.0.2.10;branch=z9hG4bK1"), DROP),
    ("Via with no sent-by", invite(via="Via: SIP/2.0/UDP ;branch=z9hG4bK1"), DROP),
    ("second Via broken", invite(extra="Via: SIP/2.0/UDP"), 400),
    ("empty element in Via list", invite(via=_GOOD_VIA + ",,SIP/2.0/UDP h.example"), 400),
    ("Via parameter bad name", invite(via=_GOOD_VIA + ';br"anch=1'), DROP),
    ("missing CSeq", invite(cseq=""), 400),
    ("two CSeq", invite(extra="CSeq: 1 INVITE"), 400),
    ("two Call-ID", invite(extra="i: other@host"), 400),
    ("two From", invite(extra="f: <sip:eve@h.example>;tag=1"), 400),
    ("two To", invite(extra="To: <sip:eve@h.example>"), 400),
    ("two Content-Length", invite(extra="l: 5"), 400),
    ("two Max-Forwards", invite(extra="Max-Forwards: 10"), 400),
    ("CSeq method mismatch", invite(cseq="CSeq: 1 OPTIONS"), 400),
    ("CSeq not numeric", invite(cseq="CSeq: one INVITE"), 400),
    ("CSeq too large", invite(cseq="CSeq: 2147483648 INVITE"), 400),
    ("CSeq negative", invite(cseq="CSeq: -1 INVITE"), 400),
    ("CSeq three parts", invite(cseq="CSeq: 1 INVITE extra"), 400),
    ("CSeq without method", invite(cseq="CSeq: 1"), 400),
    ("Content-Length negative", invite(body=b"", length=-1), 400),
    ("Content-Length larger than body", invite(length=len(SDP) + 10), 400),
    ("Content-Length over the body limit", invite(length=40000), 413),
    ("message over the size limit", invite(body=b"x" * 70000), 413),
    ("Max-Forwards not numeric", invite().replace(b"Forwards: 70", b"Forwards: abc"), 400),
    ("Max-Forwards over 255", invite().replace(b"Max-Forwards: 70", b"Max-Forwards: 300"), 400),
    ("Expires negative", invite(extra="Expires: -1"), 400),
    ("Content-Type without subtype", invite().replace(b"application/sdp", b"application"), 400),
    ("header line without colon", invite(extra="This is not a header"), 400),
    ("space inside header name", invite(extra="X Bad: 1"), 400),
    ("NUL in header value", invite(extra="X-Bad: a\x00b"), 400),
    ("bare LF inside headers", invite(extra="X-A: 1\nX-B: 2").replace(b"X-A: 1\r\n", b"X-A: 1\n"), 400),
    ("header section not UTF-8", invite().replace(b'"Bob"', b'"B\xffb"'), 400),
    ("too many headers", invite(extra=_many_headers(200)), 400),
    ("Require unknown extension", invite(extra="Require: 100rel"), 420),
    ("Contact star mixed with address", invite(extra="Contact: *"), 400),
    ("Contact without angle brackets and comma", invite(extra="Contact: sip:a@h.example;x=1 y"), 400),
    ("From unterminated quote", invite().replace(b'"Alice" <', b'"Alice <'), 400),
    ("From missing closing bracket", invite().replace(b"192.0.2.10>;tag", b"192.0.2.10;tag"), 400),
    ("From display name with stray quote", invite().replace(b'"Alice"', b'"Al"ice"'), 400),
    ("To with bad tag value", invite().replace(_BOB, _BOB + b';tag=a"b'), 400),
    ("To with junk after bracket", invite().replace(_BOB, _BOB + b" junk"), 400),
    ("Call-ID with space", invite().replace(b"Call-ID: a84b4c76e66710", b"Call-ID: a84b 4c76e66710"), 400),
    ("Call-ID empty", invite().replace(b"Call-ID: a84b4c76e66710@pc33.example.com", b"Call-ID: "), 400),
    ("missing Call-ID", invite().replace(b"Call-ID: a84b4c76e66710@pc33.example.com\r\n", b""), 400),
    ("missing From", invite().replace(b'From: "Alice" <sip:alice@192.0.2.10>;tag=1928301774\r\n', b""), 400),
    ("missing To", invite().replace(b'To: "Bob" <sip:bob@192.0.2.20>\r\n', b""), 400),
    ("no blank line after headers", invite(body=b"")[:-4], 400),
    ("continuation line before headers", invite().replace(b"SIP/2.0\r\nVia", b"SIP/2.0\r\n Via"), DROP),
    ("empty datagram", b"", DROP),
    ("only CRLF", b"\r\n", DROP),
    ("header section over the limit", b"INVITE sip:a@b SIP/2.0\r\n" + b"X: " + b"y" * MAX_HEADER_BYTES, DROP),
    ("binary garbage", bytes(range(256)), DROP),
    ("response with bad status code", RESPONSE_200.replace(b"200 OK", b"2000 OK"), DROP),
    ("response with status 700", RESPONSE_200.replace(b"200 OK", b"700 Odd"), DROP),
    ("response with version 3.0", RESPONSE_200.replace(b"SIP/2.0 200", b"SIP/3.0 200"), DROP),
    ("response without Call-ID", RESPONSE_200.replace(b"i: a84b4c76e66710@pc33.example.com\r\n", b""), DROP),
    ("response with two CSeq", RESPONSE_200.replace(b"l: 0", b"CSeq: 2 BYE\r\nl: 0"), DROP),
    # Numbers are ASCII digits only: str.isdigit() takes these too, and int() then fails or reads them.
    ("CSeq with a superscript digit", invite(cseq="CSeq: 1\u00b2 INVITE"), 400),
    ("CSeq in Arabic-Indic digits", invite(cseq="CSeq: \u0661\u0662 INVITE"), 400),
    ("CSeq split by a no-break space", invite(cseq="CSeq: 1\u00a0INVITE"), 400),
    ("Max-Forwards with a superscript digit",
     invite().replace(b"Forwards: 70", "Forwards: 7\u00b2".encode()), 400),
    ("Max-Forwards in Arabic-Indic digits",
     invite().replace(b"Forwards: 70", "Forwards: \u0667".encode()), 400),
    ("Expires with a superscript digit", invite(extra="Expires: \u00b3"), 400),
    ("Content-Length with a superscript digit",
     invite().replace(f"Content-Length: {len(SDP)}".encode(), "Content-Length: \u00b9".encode()), 400),
    ("Via port with a superscript digit",
     invite(via="Via: SIP/2.0/UDP 192.0.2.10:5\u00b2;branch=z9hG4bK1"), DROP),
    ("request URI port with a superscript digit",
     invite(request_line="INVITE sip:bob@h.example:5\u00b2 SIP/2.0"), 400),
    ("request URI IPv4 in Arabic-Indic digits",
     invite(request_line="INVITE sip:bob@\u0661\u0669\u0662.0.2.1 SIP/2.0"), 400),
    ("SIP version in Arabic-Indic digits",
     invite(request_line="INVITE sip:bob@192.0.2.20 SIP/\u0662.\u0660"), 400),
    ("response with an Arabic-Indic status code",
     RESPONSE_200.replace(b"200 OK", "\u0662\u0660\u0660 OK".encode()), DROP),
]


def test_table_is_large_enough() -> None:
    assert len(MALFORMED) >= 50
    assert len({name for name, _, _ in MALFORMED}) == len(MALFORMED)


@pytest.mark.parametrize(("name", "data", "status"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed(name: str, data: bytes, status: int | None) -> None:
    with pytest.raises(SipParseError) as info:
        parse(data)
    err = info.value
    assert err.status == status, f"{name}: {err.reason}"
    assert err.reason
    assert err.kind is not ParseReason.UNEXPECTED, f"{name}: a check is missing ({err.reason})"
    if status is None:
        return
    # Whatever was salvaged must be enough to send the answer back.
    assert isinstance(err, MalformedRequest)
    reply = build_response(err.request, status, err.reason)
    if status == 420:
        reply.headers.add("Unsupported", ", ".join(err.unsupported))
    wire = reply.serialize()
    assert wire.startswith(f"SIP/2.0 {status} ".encode())
    assert reply.top_via.branch == "z9hG4bK776asdhds"
    answer = parse(wire)  # the answer to a broken request is itself well-formed
    assert isinstance(answer, Response) and answer.status == status


def test_require_is_ignored_on_ack_and_honoured_when_supported() -> None:
    ack = invite(request_line="ACK sip:bob@192.0.2.20 SIP/2.0", cseq="CSeq: 314159 ACK", extra="Require: foo")
    assert isinstance(parse(ack), Request)
    assert isinstance(parse(invite(extra="Require: Timer"), supported=frozenset({"timer"})), Request)
    with pytest.raises(SipParseError) as info:
        parse(invite(extra="Require: 100rel, foo"))
    assert info.value.unsupported == ("100rel", "foo")


def test_stream_framing_rules() -> None:
    no_length = invite().replace(f"Content-Length: {len(SDP)}\r\n".encode(), b"")
    assert parse(no_length).body == SDP  # datagrams may omit it
    with pytest.raises(SipParseError) as info:
        parse(no_length, stream=True)
    assert info.value.status == 400
    with pytest.raises(SipParseError):
        parse(invite(body=SDP + b"x", length=len(SDP)), stream=True)


# Legal oddities a parser must take (the kinds RFC 4475 §3.1.1 lists), each as one variation of a good INVITE.
VALID_VARIANTS: list[tuple[str, bytes]] = [
    ("semicolon and escapes in user part",
     invite(request_line="INVITE sip:user;par=u%40example.net@example.com SIP/2.0")),
    ("escaped NUL in user part", invite(request_line="INVITE sip:null-%00-null@example.com SIP/2.0")),
    ("IPv6 everywhere", invite(request_line="INVITE sip:[2001:db8::10]:5070 SIP/2.0",
                               via="Via: SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKv6;received=[::9]")),
    ("display name glued to bracket", invite().replace(b'"Alice" <sip:', b"Alice<sip:")),
    ("token display name with spaces", invite().replace(b'"Alice" <sip:', b"Alice  Liddell <sip:")),
    ("unknown scheme in To", invite().replace(b'"Bob" <sip:bob@192.0.2.20>', b"<im:bob@example.com>")),
    ("unknown transport in Via", invite(via="Via: SIP/2.0/XYZ 192.0.2.10;branch=z9hG4bKxyz")),
    ("unknown header with odd value", invite(extra="X-Odd: ;;,,;;,;\nX-Empty:")),
    ("long header value", invite(extra="X-Long: " + "v" * 4000)),
    ("UTF-8 display name", invite().replace(b'"Alice"', '"Алиса ☎"'.encode())),
    ("multipart body type", invite().replace(b"application/sdp", b'multipart/mixed;boundary="x"')),
    ("two requests in one datagram (second is ignored)", invite(body=b"", length=0) + invite()),
    ("lower-case method-like header names", invite(extra="x-lower: 1\nX-LOWER: 2")),
    ("tabs around colon and in values", invite(extra="X-Tab\t:\tvalue\twith\ttabs")),
    ("Contact with expires and q", invite().replace(b"<sip:alice@192.0.2.10:5060>",
                                                    b"<sip:alice@192.0.2.10:5060>;expires=60;q=0.7")),
]  # fmt: skip


@pytest.mark.parametrize(("name", "data"), VALID_VARIANTS, ids=[v[0] for v in VALID_VARIANTS])
def test_valid_variants_parse_and_round_trip(name: str, data: bytes) -> None:
    msg = parse(data)
    assert isinstance(msg, Request), name
    out = msg.serialize()
    again = parse(out)
    assert again.serialize() == out
    assert list(again.headers) == list(msg.headers)
    assert again.from_.tag == "1928301774"


def test_responses_with_unusual_reason_phrases() -> None:
    for reason in (b"", "Très bien ✓".encode(), b"OK but with   spaces"):
        msg = parse(RESPONSE_200.replace(b"200 OK", b"200 " + reason))
        assert isinstance(msg, Response) and msg.status == 200
        assert msg.reason == (reason.decode() or "OK")
