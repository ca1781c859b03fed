"""Hostile requests through the real sans-I/O user agent: each gets its 400 (or silence) and a fixed-reason
count, and none of them changes how the next, normal call is served."""

from __future__ import annotations

import pytest

from tests.unit.sip.uanet import Net
from zcall.sip.dialog import UaConfig
from zcall.sip.errors import ParseReason
from zcall.sip.events import CallConfirmed, IncomingCall
from zcall.sip.model import Response
from zcall.sip.ua import UserAgent
from zcall.sip.ua_core import Drop, SipCallState

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
    assert [m.status for _, _, m in net.log[-2:] if isinstance(m, Response)] == [180, 200]


def test_drop_counter_keys_stay_a_closed_set_under_invented_text() -> None:
    bob = UserAgent(UaConfig(*B, user="bob"))
    for n in range(2000):
        junk = _invite(n, ("Max-Forwards: 70", f"Max-Forwards: 70\r\nX {n} invented: {n}"))
        bob.receive(junk, A, 0.0)
        bob.receive(f"SIP/2.0 {200 + n % 400} Reason {n}\r\n\r\n".encode(), A, 0.0)
        bob.datagrams_to_send(0.0)
    assert set(bob.dropped) <= set(ParseReason) | set(Drop)
    assert len(bob.dropped) <= 4 and sum(n for r, n in bob.dropped.items() if r in ParseReason) == 4000
    assert bob.dropped[Drop.RATE_LIMITED] == 2000 - 100  # answers past the source's burst are not sent


@pytest.mark.parametrize("swap", HOSTILE_FIELDS, ids=[s[1][:24] for s in HOSTILE_FIELDS])
def test_the_answer_echoes_nothing_from_the_request_line_or_reason(swap: tuple[str, str]) -> None:
    bob = UserAgent(UaConfig(*B, user="bob"))
    bob.receive(_invite(1, swap), A, 0.0)
    for data, dest in bob.datagrams_to_send(0.0):
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
    assert bob.calls[call_id].state is SipCallState.CONFIRMED


def _cancelled_call(udp_drop_100: bool) -> tuple[Net, str]:
    alice, bob = UserAgent(UaConfig(*A, user="alice")), UserAgent(UaConfig(*B, user="bob"))
    net = Net(alice, bob)
    if udp_drop_100:
        net.drop = lambda m: isinstance(m, Response) and m.status == 100
    call_id = alice.invite(f"sip:bob@{B[0]}:{B[1]}", SDP, net.now)
    alice.cancel(call_id, net.now)  # hung up while dialing: nothing heard yet, so the CANCEL waits
    return net, call_id


def test_a_pending_cancel_goes_out_on_a_100_trying() -> None:
    net, _ = _cancelled_call(udp_drop_100=False)
    net.run_until(0.3)  # bob's 100 Trying, 200 ms on (RFC 3261 §9.1: a CANCEL may follow any provisional)
    assert net.methods()[:3] == ["INVITE", "100", "CANCEL"]
    assert sorted(net.methods()[3:5]) == ["200", "487"]


def test_a_2xx_after_a_local_hang_up_gets_ack_and_bye() -> None:
    net, call_id = _cancelled_call(udp_drop_100=True)
    net.pump()
    assert "CANCEL" not in net.methods()
    bob = net.uas[B]
    bob.answer(call_id, SDP, net.now)  # the callee answered before anything reached us
    net.pump()
    methods = net.methods()
    assert methods[methods.index("200"):][:2] == ["200", "ACK"]
    assert "BYE" in methods and bob.calls[call_id].state is SipCallState.ENDED


def test_a_flooding_source_is_throttled_while_others_still_get_through() -> None:
    bob = UserAgent(UaConfig(*B, user="bob"))
    mallory = ("10.0.0.66", 5060)
    answered = 0
    for n in range(1000):  # all at one instant: only the source's burst is served
        bob.receive(_invite(n).replace(b"hostile", b"flood"), mallory, 1.0)
        answered += sum(1 for _, dest in bob.datagrams_to_send(1.0) if dest == mallory)
        while bob.next_event() is not None:
            pass
    for call_id in list(bob.calls):
        bob.reject(call_id, 486, 1.0)
    bob.datagrams_to_send(1.0)
    assert answered <= UaConfig.new_requests_source_burst
    assert bob.dropped[Drop.RATE_LIMITED] >= 1000 - UaConfig.new_requests_source_burst
    bob.receive(_invite(5000), A, 1.0)  # someone else, same instant
    assert [e for e in iter(bob.next_event, None) if isinstance(e, IncomingCall)]
    bob.receive(_invite(5001).replace(b"hostile", b"flood"), mallory, 1.0 + 5.0)  # refilled after a pause
    bob.handle_timer(1.0 + 5.3)  # its 100 Trying
    assert any(dest == mallory for _, dest in bob.datagrams_to_send(1.0 + 5.3))


def test_unanswered_incoming_invites_are_capped() -> None:
    bob = UserAgent(UaConfig(*B, user="bob", max_pending_invites=2))
    statuses = []
    for n in range(4):
        bob.receive(_invite(n), A, 0.0)
        statuses += [int(d.split(b" ", 2)[1]) for d, _ in bob.datagrams_to_send(0.0)]
    assert statuses == [503, 503] and bob.dropped[Drop.PENDING_INVITES] == 2


def test_a_cancel_ends_only_the_invite_its_transaction_matches() -> None:
    bob = UserAgent(UaConfig(*B, user="bob"))
    bob.receive(_invite(1), A, 0.0)
    bob.receive(_invite(2), A, 0.0)
    bob.datagrams_to_send(0.0)
    calls = [e.call_id for e in iter(bob.next_event, None) if isinstance(e, IncomingCall)]
    # CANCEL carrying call 1's branch but call 2's Call-ID: it is call 1's INVITE transaction that it names.
    cancel = _invite(1).replace(b"INVITE sip:", b"CANCEL sip:", 1).replace(b"1 INVITE", b"1 CANCEL")
    cancel = cancel.replace(b"hostile-1@", b"hostile-2@")
    bob.receive(cancel, A, 0.1)
    assert bob.calls[calls[1]].state != "ended"


def test_contact_uri_headers_never_reach_our_requests() -> None:
    alice, bob = UserAgent(UaConfig(*A, user="alice")), UserAgent(UaConfig(*B, user="bob"))
    net = Net(alice, bob)
    contact = f"Contact: <sip:alice@{A[0]}:{A[1]}?Subject=phish&Call-Info=evil>"
    net.inject(_invite(7, (f"Contact: <sip:alice@{A[0]}:{A[1]}>", contact)), A, B)
    (incoming,) = [e for e in net.take(B) if isinstance(e, IncomingCall)]
    bob.answer(incoming.call_id, SDP, net.now)
    net.pump()
    ok = next(m for _, _, m in net.log if isinstance(m, Response) and m.status == 200)
    ack = _invite(7).replace(b"INVITE sip:", b"ACK sip:", 1).replace(b"CSeq: 1 INVITE", b"CSeq: 1 ACK")
    to = f"To: <sip:bob@{B[0]}>"
    net.inject(ack.replace(to.encode(), f"{to};tag={ok.to.tag}".encode()), A, B)
    bob.bye(incoming.call_id, net.now)
    net.pump()
    bye = next(m for _, _, m in net.log if getattr(m, "method", "") == "BYE")
    assert "?" not in str(bye.uri) and bye.headers.get("Subject") is None


def test_in_dialog_requests_never_look_up_a_host_name_the_peer_chose() -> None:
    """A Contact naming a host (whose lookup would block, and which the peer picks) is not dialled: the BYE
    goes where the dialog's messages came from."""
    alice, bob = UserAgent(UaConfig(*A, user="alice")), UserAgent(UaConfig(*B, user="bob"))
    net = Net(alice, bob)
    contact = "Contact: <sip:alice@slow-dns.attacker.example:5060>"
    net.inject(_invite(8, (f"Contact: <sip:alice@{A[0]}:{A[1]}>", contact)), A, B)
    (incoming,) = [e for e in net.take(B) if isinstance(e, IncomingCall)]
    bob.answer(incoming.call_id, SDP, net.now)
    net.pump()
    ok = next(m for _, _, m in net.log if isinstance(m, Response) and m.status == 200)
    ack = _invite(8).replace(b"INVITE sip:", b"ACK sip:", 1).replace(b"CSeq: 1 INVITE", b"CSeq: 1 ACK")
    to = f"To: <sip:bob@{B[0]}>"
    net.inject(ack.replace(to.encode(), f"{to};tag={ok.to.tag}".encode()), A, B)
    bob.bye(incoming.call_id, net.now)
    net.pump()
    (bye_to,) = [dst for _, dst, m in net.log if getattr(m, "method", "") == "BYE"]
    assert bye_to == A and not net.outside


def test_a_reason_phrase_from_the_application_cannot_inject_headers() -> None:
    bob = UserAgent(UaConfig(*B, user="bob"))
    bob.receive(_invite(3), A, 0.0)
    (incoming,) = [e for e in iter(bob.next_event, None) if isinstance(e, IncomingCall)]
    bob.datagrams_to_send(0.0)
    bob.reject(incoming.call_id, 488, 0.0, "incompatible offer: x\r\nContact: <sip:evil@x>\r\n" + "y" * 500)
    ((data, _),) = bob.datagrams_to_send(0.0)
    status_line, rest = data.split(b"\r\n", 1)
    assert status_line.startswith(b"SIP/2.0 488 incompatible offer: xContact") and len(status_line) < 100
    assert b"evil" not in rest


def test_a_refused_invite_gets_one_response_and_only_the_rfcs_retransmissions() -> None:
    """A spoofed INVITE refused at once: one 486 (no 100 before it), repeated only by Timer G until H ends it,
    and only to where the INVITE came from."""
    bob = UserAgent(UaConfig(*B, user="bob"))
    bob.receive(_invite(4), A, 0.0)
    (incoming,) = [e for e in iter(bob.next_event, None) if isinstance(e, IncomingCall)]
    bob.reject(incoming.call_id, 486, 0.0)
    sent = bob.datagrams_to_send(0.0)
    while (due := bob.get_timer()) is not None and due < 100.0:
        bob.handle_timer(due)
        sent += bob.datagrams_to_send(due)
    assert {d.split(b" ", 2)[1] for d, _ in sent} == {b"486"} and {dest for _, dest in sent} == {A}
    assert len(sent) == 11  # the 486, then Timer G: 0.5, 1, 2, 4 s doubling, capped at T2, until 32 s


def _options(n: int) -> bytes:
    return "\r\n".join([
        f"OPTIONS sip:bob@{B[0]}:{B[1]} SIP/2.0",
        f"Via: SIP/2.0/UDP 10.0.0.66:5060;branch=z9hG4bKpoll{n}",
        "Max-Forwards: 70",
        f"From: <sip:m@10.0.0.66>;tag=m{n}",
        f"To: <sip:bob@{B[0]}>",
        f"Call-ID: poll-{n}@10.0.0.66",
        "CSeq: 1 OPTIONS",
        "Content-Length: 0",
    ]).encode() + b"\r\n\r\n"  # fmt: skip


def test_answered_transactions_cannot_crowd_out_a_call() -> None:
    """One host polling at half its rate limit leaves ~320 answered transactions absorbing retransmissions
    (Timer J, 32 s) at any time: more than the table holds. The oldest answered ones make room, so calls
    are still answered and the table stays within its bound (it once answered every INVITE 503)."""
    bob = UserAgent(UaConfig(*B, user="bob"))
    mallory = ("10.0.0.66", 5060)
    statuses: list[int] = []
    now = 0.0
    for n in range(600):  # 10 a second for a minute, each answered once
        now = n / 10
        bob.handle_timer(now)
        bob.receive(_options(n), mallory, now)
        statuses += [int(d.split(b" ", 2)[1]) for d, _ in bob.datagrams_to_send(now)]
        assert len(bob._server) <= bob.config.max_server_transactions
    assert statuses == [200] * 600
    bob.receive(_invite(1), A, now)
    assert [e for e in iter(bob.next_event, None) if isinstance(e, IncomingCall)]
    assert bob.dropped[Drop.OVERLOADED] == 0
