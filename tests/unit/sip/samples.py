"""Hand-written SIP messages for tests, modelled on the kinds of cases RFC 4475 describes."""

from __future__ import annotations

SDP = (
    b"v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
    b"m=audio 49170 RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\n"
)


def invite(*, extra: str = "", body: bytes = SDP, request_line: str = "INVITE sip:bob@192.0.2.20 SIP/2.0",
           via: str = "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds",
           cseq: str = "CSeq: 314159 INVITE", length: int | None = None) -> bytes:
    """A valid INVITE; keyword arguments replace one piece to make a malformed variant."""
    lines = [request_line]
    if via:
        lines.append(via)
    lines += [
        "Max-Forwards: 70",
        'To: "Bob" <sip:bob@192.0.2.20>',
        'From: "Alice" <sip:alice@192.0.2.10>;tag=1928301774',
        "Call-ID: a84b4c76e66710@pc33.example.com",
    ]
    if cseq:
        lines.append(cseq)
    lines += ["Contact: <sip:alice@192.0.2.10:5060>", "Content-Type: application/sdp"]
    if extra:
        lines += extra.split("\n")
    n = len(body) if length is None else length
    head = "\r\n".join([*lines, f"Content-Length: {n}"]) + "\r\n\r\n"
    return head.encode() + body


# Compact forms, folding, odd but legal whitespace and escapes (the kind of case RFC 4475 §3.1.1.1 covers).
TORTURE_VALID = (
    b"INVITE sip:carol@desk.example.org;oddparam SIP/2.0\r\n"
    b"tO :\r\n sip:carol@desk.example.org ;   tag    = 55aa01\r\n"
    b"FROM   : \"Dan \\\\ \\\"the\\\" Man\"       <sip:dan@example.net>\r\n  ;\r\n  tag = x77q\r\n"
    b"max-FORWARDS: 0042\r\n"
    b"Call-ID: torture-one.k2j3@198.51.100.7\r\n"
    b"Content-Length   : 0\r\n"
    b"cSeQ: 0012\r\n  INVITE\r\n"
    b"Via  : SIP  /   2.0\r\n /UDP\r\n    198.51.100.8;branch=z9hG4bKfold1\r\n"
    b"s :\r\n"
    b"X-Made-Up:   first part\r\n second part\r\n"
    b"X-Punctuation: ;;,,;;,;\r\n"
    b"v:  SIP/2.0/TCP     relay.example.net   ;\r\n  branch  =   z9hG4bKrel2  ,\r\n"
    b" SIP  /    2.0   / UDP  10.1.2.3   ; branch=\r\n z9hG4bKlast3\r\n"
    b"m:\"With \\\"quotes\\\"\" <sip:dan@example.net> ; fresh =\r\n      value ;\r\n"
    b"  flag ; q = 0.5\r\n"
    b"\r\n"
)

# A response using compact headers and several Record-Route values on one line.
RESPONSE_200 = (
    b"SIP/2.0 200 OK\r\n"
    b"v: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;received=192.0.2.10;rport=5060\r\n"
    b"Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n"
    b"t: Bob <sip:bob@192.0.2.20>;tag=a6c85cf\r\n"
    b"f: Alice <sip:alice@192.0.2.10>;tag=1928301774\r\n"
    b"i: a84b4c76e66710@pc33.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"m: <sip:bob@192.0.2.20:5062;transport=tcp>\r\n"
    b"c: application/sdp\r\n"
    b"l: 0\r\n"
    b"\r\n"
)

HASH = "1.10 " + "ab" * 32
FP = "sha-256 " + ":".join(["4F"] * 32)

# Shaped like what linphonec sends for a ZRTP call: RTP/AVP, Opus on a dynamic type, several other codecs.
LINPHONE_OFFER = (
    "v=0\r\n"
    "o=bob 1203 3017 IN IP4 10.20.0.2\r\n"
    "s=Talk\r\n"
    "c=IN IP4 10.20.0.2\r\n"
    "t=0 0\r\n"
    "a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics\r\n"
    "m=audio 7078 RTP/AVP 111 9 0 8 101\r\n"
    "a=rtpmap:111 opus/48000/2\r\n"
    "a=fmtp:111 useinbandfec=1\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    f"a=zrtp-hash:{HASH}\r\n"
    "a=rtcp-fb:* trr-int 1000\r\n"
    "a=rtcp-mux\r\n"
    "m=video 9078 RTP/AVP 96\r\n"
    "a=rtpmap:96 VP8/90000\r\n"
).encode()

# Shaped like baresip with DTLS-SRTP: session-level fingerprint and setup, no rtcp-mux.
DTLS_OFFER = (
    "v=0\r\n"
    "o=- 77 1 IN IP4 10.30.0.5\r\n"
    "s=-\r\n"
    "c=IN IP4 10.30.0.5\r\n"
    "t=0 0\r\n"
    f"a=fingerprint:{FP}\r\n"
    "a=setup:actpass\r\n"
    "m=audio 10000 UDP/TLS/RTP/SAVP 98 0\r\n"
    "a=rtpmap:98 opus/48000/2\r\n"
    "a=sendrecv\r\n"
).encode()
