"""Hostile requests through the real sans-I/O user agent: each gets its 400 (or silence) and a fixed-reason
count, and none of them changes how the next, normal call is served."""

from __future__ import annotations

import pytest

from tests.unit.sip.uanet import Net
from zcall.sip.dialog import CallConfirmed, IncomingCall, UaConfig
from zcall.sip.errors import ParseReason
from zcall.sip.model import Response
from zcall.sip.ua import UserAgent
from zcall.sip.ua_core import Drop

A = ("10.0.0.1", 5060)
B = ("10.0.0.2", 5062)
SDP = b"v=0\r\no=a 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 96\r\n"

# Numeric fields spelled with digits that str.isdigit() accepts and int() refuses (or reads).
HOSTILE_FIELDS = [
    ("CSeq: 1 INVITE", "CSeq: 1\u00b2 INVITE"),
    ("CSeq: 1 INVITE", "CSeq: \u0661 INVITE"),
    ("Max-Forwards: 70", "Max-Forwards: 7\u00b2"),
    ("Max-Forwards: 70", "Max-Forwards: 70\r\nExpires: \u00b3"),
    (f"Content-Length: {len(SDP)}", "Content-Length: \u00b9"),
    (f"Via: SIP/2.0/UDP {A[0]}:{A[1]};", f"Via: SIP/2.0/UDP {A[0]}:5\u00b2;"),
    (f"INVITE sip:bob@{B[0]}:{B[1]} ", f"INVITE sip:bob@{B[0]}:5\u00b2 "),
    ("From: <sip:alice@10.0.0.1>", "From: <sip:alice@10.0.0.1:\u00b2>"),
]


def _invite(n: int, swap: tuple[str, str] | None = None) -> bytes:
    text = "\r\n".join([
        f"INVITE sip:bob@{B[0]}:{B[1]} SIP/2.0",
        f"Via: SIP/2.0/UDP {A[0]}:{A[1]};branch=z9hG4bKhostile{n}",
        "Max-Forwards: 70",
        "From: <sip:alice@10.0.0.1>;tag=a" + str(n),
        f"To: <sip:bob@{B[0]}>",
        f"Call-ID: hostile-{n}@10.0.0.1",
        "CSeq: 1 INVITE",
        f"Contact: <sip:alice@{A[0]}:{A[1]}>",
        "Content-Type: application/sdp",
        f"Content-Length: {len(SDP)}",
    ]) + "\r\n\r\n"  # fmt: skip
    if swap is not None:
        assert swap[0] in text
        text = text.replace(swap[0], swap[1], 1)
    return text.encode() + SDP


def test_forty_hostile_invites_then_a_normal_call_rings_and_is_answered() -> None:
    bob = UserAgent(UaConfig(*B, user="bob"))
    net = Net(UserAgent(UaConfig(*A, user="alice")), bob)
    for n in range(40):
        net.inject(_invite(n, HOSTILE_FIELDS[n % len(HOSTILE_FIELDS)]), A, B)
    replies = [m for _, _, m in net.log if isinstance(m, Response)]
    assert {r.status for r in replies} == {400}  # the Via-port ones are dropped: no usable place to answer
    assert len(replies) == 40 - 5  # one answer per answerable request, not a retransmitted flurry
    assert net.take(B) == [] and bob.calls == {}
    assert set(bob.dropped) <= set(ParseReason) and ParseReason.UNEXPECTED not in bob.dropped
    assert sum(bob.dropped.values()) == 40

    net.inject(_invite(99), A, B)
    (incoming,) = net.take(B)
    assert isinstance(incoming, IncomingCall)
    bob.ringing(incoming.call_id, net.now)
    bob.answer(incoming.call_id, SDP, net.now)
    net.pump()
    assert [m.status for _, _, m in net.log[-3:] if isinstance(m, Response)] == [100, 180, 200]


def test_drop_counter_keys_stay_a_closed_set_under_invented_text() -> None:
    bob = UserAgent(UaConfig(*B, user="bob"))
    for n in range(2000):
        junk = _invite(n, ("Max-Forwards: 70", f"Max-Forwards: 70\r\nX {n} invented: {n}"))
        bob.receive(junk, A, 0.0)
        bob.receive(f"SIP/2.0 {200 + n % 400} Reason {n}\r\n\r\n".encode(), A, 0.0)
        bob.messages_to_send()
    assert set(bob.dropped) <= set(ParseReason) | set(Drop)
    assert len(bob.dropped) <= 3 and sum(bob.dropped.values()) == 4000


@pytest.mark.parametrize("swap", HOSTILE_FIELDS, ids=[s[1][:24] for s in HOSTILE_FIELDS])
def test_the_answer_echoes_nothing_from_the_request_line_or_reason(swap: tuple[str, str]) -> None:
    bob = UserAgent(UaConfig(*B, user="bob"))
    bob.receive(_invite(1, swap), A, 0.0)
    for data, dest in bob.messages_to_send():
        status_line = data.split(b"\r\n", 1)[0]
        assert status_line.startswith(b"SIP/2.0 400 Bad Request (") and dest == A
        assert "\u00b2".encode() not in status_line


def test_confirmed_call_survives_a_hostile_in_dialog_request() -> None:
    alice, bob = UserAgent(UaConfig(*A, user="alice")), UserAgent(UaConfig(*B, user="bob"))
    net = Net(alice, bob)
    call_id = alice.invite(f"sip:bob@{B[0]}:{B[1]}", SDP, net.now)
    net.pump()
    assert isinstance(net.take(B)[0], IncomingCall)
    bob.answer(call_id, SDP, net.now)
    net.pump()
    assert any(isinstance(e, CallConfirmed) for e in net.take(B))
    ok = next(m for _, _, m in reversed(net.log) if isinstance(m, Response) and m.status == 200)
    bye = (
        f"BYE sip:bob@{B[0]}:{B[1]} SIP/2.0\r\nVia: SIP/2.0/UDP {A[0]}:{A[1]};branch=z9hG4bKbye\r\n"
        f"Max-Forwards: 70\r\nFrom: {ok.headers.get('From')}\r\nTo: {ok.headers.get('To')}\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 9\u00b2 BYE\r\nContent-Length: 0\r\n\r\n"
    )
    net.inject(bye.encode(), A, B)
    assert bob.calls[call_id].state == "confirmed"
