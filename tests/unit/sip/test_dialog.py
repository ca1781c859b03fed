"""Dialog flows between two in-memory user agents on a fake clock."""

from __future__ import annotations

import pytest

from tests.unit.sip.uanet import Net
from zcall.sip.dialog import UaConfig
from zcall.sip.events import (
    CallAnswered,
    CallConfirmed,
    CallEnded,
    CallFailed,
    CallProgress,
    IncomingCall,
    OptionsResult,
    ReInviteReceived,
    ReInviteResult,
)
from zcall.sip.model import Request, Response, build_response
from zcall.sip.parser import parse
from zcall.sip.ua import UserAgent
from zcall.sip.ua_core import CALL_TRANSITIONS, SipCallState

A = ("10.0.0.1", 5060)
B = ("10.0.0.2", 5062)
OFFER = b"v=0\r\no=a 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 96\r\n"
ANSWER = OFFER.replace(b"10.0.0.1", b"10.0.0.2")


@pytest.fixture(params=["UDP", "TCP"])
def net(request: pytest.FixtureRequest) -> Net:
    transport = request.param
    return Net(
        UserAgent(UaConfig(A[0], A[1], transport, user="alice")),
        UserAgent(UaConfig(B[0], B[1], transport, user="bob")),
    )


@pytest.fixture
def udp() -> Net:
    return Net(UserAgent(UaConfig(*A, user="alice")), UserAgent(UaConfig(*B, user="bob")))


def _call(net: Net) -> str:
    """A calls B, B rings and answers; returns the Call-ID of the confirmed call."""
    ua_a, ua_b = net.uas[A], net.uas[B]
    call_id = ua_a.invite(f"sip:bob@{B[0]}:{B[1]}", OFFER, net.now)
    net.pump()
    (incoming,) = net.take(B)
    assert isinstance(incoming, IncomingCall) and incoming.sdp == OFFER
    assert incoming.caller.uri.user == "alice"
    ua_b.ringing(call_id, net.now)
    net.pump()
    ua_b.answer(call_id, ANSWER, net.now)
    net.pump()
    return call_id


def test_invite_ringing_answer_ack_bye(net: Net) -> None:
    call_id = _call(net)
    ev_a = net.take(A)
    assert [type(e) for e in ev_a] == [CallProgress, CallAnswered]
    assert isinstance(ev_a[0], CallProgress) and ev_a[0].status == 180
    assert isinstance(ev_a[1], CallAnswered) and ev_a[1].sdp == ANSWER
    assert net.take(B) == [CallConfirmed(call_id, b"")]
    assert net.methods() == ["INVITE", "180", "200", "ACK"]  # ringing at once: no 100 before it
    _, _, ok = net.log[2]
    assert isinstance(ok, Response) and ok.contacts[0].uri.user == "bob"
    _, _, inv = net.log[0]
    assert "BYE" in inv.headers.get_all("Allow") and inv.headers.get("Max-Forwards") == "70"
    transport = net.uas[A].config.transport
    assert ok.top_via.transport == transport
    net.uas[A].bye(call_id, net.now)
    net.pump()
    assert net.take(B) == [CallEnded(call_id, "bye")]
    assert net.methods()[-2:] == ["BYE", "200"]
    _, _, bye = net.log[-2]
    assert isinstance(bye, Request) and bye.to.tag == ok.to.tag and bye.from_.tag == ok.from_.tag
    assert str(bye.uri) == str(ok.contacts[0].uri)
    # Timers drain and the calls are forgotten.
    net.run_until(200.0)
    assert net.uas[A].get_timer() is None and net.uas[B].get_timer() is None
    assert not net.uas[A].calls and not net.uas[B].calls


def test_cancel_gives_487(net: Net) -> None:
    ua_a, ua_b = net.uas[A], net.uas[B]
    call_id = ua_a.invite(f"sip:bob@{B[0]}:{B[1]}", OFFER, net.now)
    net.pump()
    ua_b.ringing(call_id, net.now)
    net.pump()
    ua_a.cancel(call_id, net.now)
    net.pump()
    assert net.take(B)[-1] == CallEnded(call_id, "cancelled")
    assert net.take(A)[-1] == CallFailed(call_id, 487, "Request Terminated")
    methods = net.methods()
    assert methods[:3] == ["INVITE", "180", "CANCEL"] and methods[-1] == "ACK"
    assert sorted(methods[3:5]) == ["200", "487"]
    _, _, cancel = net.log[2]
    _, _, invite = net.log[0]
    assert isinstance(cancel, Request) and isinstance(invite, Request)
    assert cancel.top_via.branch == invite.top_via.branch and cancel.cseq.seq == invite.cseq.seq


def test_cancel_before_provisional_waits_for_it(udp: Net) -> None:
    ua_a, ua_b = udp.uas[A], udp.uas[B]
    udp.drop = lambda m: isinstance(m, Response) and m.status == 100
    call_id = ua_a.invite(f"sip:bob@{B[0]}:{B[1]}", OFFER, udp.now)
    ua_a.cancel(call_id, udp.now)
    udp.pump()
    assert "CANCEL" not in udp.methods()
    ua_b.ringing(call_id, udp.now)
    udp.pump()
    methods = udp.methods()
    assert methods[-4] == "CANCEL" and sorted(methods[-3:-1]) == ["200", "487"] and methods[-1] == "ACK"


def test_busy_486(net: Net) -> None:
    call_id = net.uas[A].invite(f"sip:bob@{B[0]}:{B[1]}", OFFER, net.now)
    net.pump()
    net.uas[B].reject(call_id, 486, net.now)
    net.pump()
    assert net.take(A) == [CallFailed(call_id, 486, "Busy Here")]
    assert net.methods() == ["INVITE", "486", "ACK"]  # refused at once: one response, no 100 first
    net.run_until(100.0)
    assert net.methods() == ["INVITE", "486", "ACK"]  # the ACK stopped Timer G
    for ua in net.uas.values():  # both sides forget the call and go quiet
        assert not ua.calls and ua.get_timer() is None


def test_not_acceptable_488_with_reason(udp: Net) -> None:
    call_id = udp.uas[A].invite(f"sip:bob@{B[0]}:{B[1]}", OFFER, udp.now)
    udp.pump()
    udp.uas[B].reject(call_id, 488, udp.now, "No Opus offered")
    udp.pump()
    assert udp.take(A)[-1] == CallFailed(call_id, 488, "No Opus offered")


def test_reinvite_hold_and_resume(net: Net) -> None:
    call_id = _call(net)
    net.take(A), net.take(B)
    hold = OFFER.replace(b"t=0 0", b"t=0 0\r\na=sendonly")
    assert net.uas[A].reinvite(call_id, hold, net.now)
    assert not net.uas[A].reinvite(call_id, hold, net.now)  # one at a time
    net.pump()
    assert net.take(B) == [ReInviteReceived(call_id, hold)]
    held = ANSWER.replace(b"t=0 0", b"t=0 0\r\na=recvonly")
    net.uas[B].answer_reinvite(call_id, held, net.now)
    net.pump()
    assert net.take(A) == [ReInviteResult(call_id, 200, held)]
    assert net.methods()[-3:] == ["INVITE", "200", "ACK"]
    net.run_until(10.0)
    assert net.methods()[-1] == "ACK"  # the ACK stopped B's 2xx retransmissions
    # And B can re-INVITE too; CSeq numbers keep rising in each direction.
    assert net.uas[B].reinvite(call_id, ANSWER, net.now)
    net.pump()
    net.uas[A].answer_reinvite(call_id, OFFER, net.now)
    net.pump()
    assert net.take(B) == [ReInviteResult(call_id, 200, OFFER)]


def test_reinvite_refused_keeps_call(udp: Net) -> None:
    call_id = _call(udp)
    assert udp.uas[A].reinvite(call_id, OFFER, udp.now)
    udp.pump()
    udp.uas[B].answer_reinvite(call_id, b"", udp.now, status=488)
    udp.pump()
    assert udp.take(A)[-1] == ReInviteResult(call_id, 488, b"")
    udp.uas[A].bye(call_id, udp.now)
    udp.pump()
    assert udp.take(B)[-1] == CallEnded(call_id, "bye")


def test_reinvite_glare_491(udp: Net) -> None:
    call_id = _call(udp)
    udp.take(A), udp.take(B)
    udp.uas[A].reinvite(call_id, OFFER, udp.now)
    udp.uas[B].reinvite(call_id, ANSWER, udp.now)
    udp.pump()
    results = [e for e in udp.take(A) + udp.take(B) if isinstance(e, ReInviteResult)]
    assert sorted(r.status for r in results) == [491, 491]


def test_bye_for_unknown_dialog_is_481(udp: Net) -> None:
    call_id = _call(udp)
    udp.uas[B].bye(call_id, udp.now)
    udp.pump()
    _, _, bye = udp.log[-2]
    assert isinstance(bye, Request)
    stale = bye.serialize().replace(b"BYE SIP/2.0", b"BYE SIP/2.0", 1)
    stale = stale.replace(f"CSeq: {bye.cseq.seq} BYE".encode(), f"CSeq: {bye.cseq.seq + 1} BYE".encode())
    stale = stale.replace(bye.top_via.branch.encode(), b"z9hG4bKstale1")  # type: ignore[union-attr]
    udp.inject(stale, B, A)
    _, _, reply = udp.log[-1]
    assert isinstance(reply, Response) and reply.status == 481


def test_options_in_and_out_of_dialog(net: Net) -> None:
    token = net.uas[A].options(f"sip:bob@{B[0]}:{B[1]}", net.now)
    net.pump()
    (result,) = net.take(A)
    assert isinstance(result, OptionsResult) and result.token == token and result.status == 200
    assert result.response is not None
    assert "INVITE" in (result.response.headers.get("Allow") or "")
    assert result.response.headers.get("Accept") == "application/sdp"


def test_options_timeout_408(udp: Net) -> None:
    token = udp.uas[A].options("sip:nobody@10.9.9.9", udp.now)
    udp.run_until(40.0)
    assert udp.take(A) == [OptionsResult(token, 408, None)]
    assert len(udp.outside) == 11  # the request and its ten Timer E retransmissions


def test_invite_timeout_408(net: Net) -> None:
    call_id = net.uas[A].invite("sip:nobody@10.9.9.9", OFFER, net.now)
    net.run_until(40.0)
    assert net.take(A) == [CallFailed(call_id, 408, "Request Timeout")]
    expected = 1 if net.uas[A].config.reliable else 7
    assert len(net.outside) == expected


def test_lost_200_is_retransmitted_and_acked(udp: Net) -> None:
    dropped: list[int] = []

    def drop_first_ok(msg: Request | Response) -> bool:
        if isinstance(msg, Response) and msg.status == 200 and not dropped:
            dropped.append(1)
            return True
        return False

    udp.drop = drop_first_ok
    call_id = _call(udp)
    assert not any(isinstance(e, CallAnswered) for e in udp.take(A))
    udp.run_until(1.0)
    assert CallAnswered(call_id, ANSWER) in udp.take(A)
    assert udp.take(B)[-1] == CallConfirmed(call_id, b"")


def test_lost_acks_end_the_call_with_bye(udp: Net) -> None:
    udp.drop = lambda m: isinstance(m, Request) and m.method == "ACK"
    call_id = _call(udp)
    udp.run_until(40.0)
    assert udp.take(B)[-1] == CallEnded(call_id, "no-ack")
    oks = [m for _, _, m in udp.log if isinstance(m, Response) and m.status == 200 and m.cseq.method != "BYE"]
    assert len(oks) == 11  # first 2xx + retransmissions at 0.5, 1.5, 3.5, 7.5, 11.5 … 31.5
    assert "BYE" in udp.methods()
    assert udp.take(A)[-1] == CallEnded(call_id, "bye")


def test_lost_invite_is_retransmitted(udp: Net) -> None:
    seen: list[int] = []

    def drop_first_invite(msg: Request | Response) -> bool:
        if isinstance(msg, Request) and msg.method == "INVITE" and not seen:
            seen.append(1)
            return True
        return False

    udp.drop = drop_first_invite
    udp.uas[A].invite(f"sip:bob@{B[0]}:{B[1]}", OFFER, udp.now)
    udp.run_until(0.6)
    assert isinstance(udp.take(B)[0], IncomingCall)


def _raw_invite(extra: str = "", method: str = "INVITE", require: str = "") -> bytes:
    lines = [
        f"{method} sip:bob@{B[0]}:{B[1]} SIP/2.0",
        f"Via: SIP/2.0/UDP {A[0]}:{A[1]};branch=z9hG4bKraw-{method}-{len(extra)}",
        "Max-Forwards: 70",
        f"From: <sip:alice@{A[0]}>;tag=abc",
        f"To: <sip:bob@{B[0]}>",
        "Call-ID: raw-1@10.0.0.1",
        f"CSeq: 1 {method}",
        f"Contact: <sip:alice@{A[0]}:{A[1]}>",
    ]
    if extra:
        lines += extra.split("\n")
    if require:
        lines.append(f"Require: {require}")
    return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()


def test_record_route_becomes_the_route_set(udp: Net) -> None:
    rr = "Record-Route: <sip:10.0.0.9:5070;lr>, <sip:10.0.0.8;lr>"
    udp.inject(_raw_invite(rr), A, B)
    (incoming,) = udp.take(B)
    assert isinstance(incoming, IncomingCall)
    udp.uas[B].answer(incoming.call_id, ANSWER, udp.now)
    udp.pump()
    _, _, ok = udp.log[-1]
    assert isinstance(ok, Response) and len(ok.record_route) == 2
    to = b"To: <sip:bob@10.0.0.2>"
    ack = _raw_invite(method="ACK").replace(to, to + f";tag={ok.to.tag}".encode())
    udp.inject(ack, A, B)
    udp.uas[B].bye(incoming.call_id, udp.now)
    udp.pump()
    data, dest = udp.outside[-1]
    bye = parse(data)
    assert isinstance(bye, Request) and bye.method == "BYE"
    assert dest == ("10.0.0.9", 5070)  # the first Route, loose routing
    assert [str(r.uri) for r in bye.routes] == ["sip:10.0.0.9:5070;lr", "sip:10.0.0.8;lr"]
    assert str(bye.uri) == f"sip:alice@{A[0]}:{A[1]}"


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (_raw_invite(require="100rel"), 420),
        (_raw_invite(method="SUBSCRIBE"), 405),
        (_raw_invite(method="BYE"), 481),
        (_raw_invite("Content-Type: text/plain").replace(b"Length: 0\r\n\r\n", b"Length: 2\r\n\r\nhi"), 415),
        (_raw_invite().replace(b"CSeq: 1 INVITE", b"CSeq: 1 BYE"), 400),
        (_raw_invite().replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1), 505),
    ],
)
def test_core_answers_what_it_cannot_do(udp: Net, data: bytes, status: int) -> None:
    udp.inject(data, A, B)
    _, _, reply = udp.log[-1]
    assert isinstance(reply, Response) and reply.status == status
    assert reply.to.tag  # a final response always carries a To tag
    if status == 420:
        assert reply.headers.get("Unsupported") == "100rel"
    if status == 405:
        assert "INVITE" in (reply.headers.get("Allow") or "")


def test_retransmitted_invite_gets_the_same_provisional(udp: Net) -> None:
    data = _raw_invite()
    udp.inject(data, A, B)
    (incoming,) = udp.take(B)
    assert isinstance(incoming, IncomingCall)
    udp.uas[B].ringing(incoming.call_id, udp.now)
    udp.pump()
    udp.inject(data, A, B)
    assert udp.take(B) == []
    _, _, again = udp.log[-1]
    assert isinstance(again, Response) and again.status == 180


def test_second_fork_2xx_is_acked_and_ended(udp: Net) -> None:
    call_id = _call(udp)
    _, _, invite = udp.log[0]
    assert isinstance(invite, Request)
    fork = build_response(invite, 200, to_tag="fork2")
    fork.headers.add("Contact", "<sip:bob@10.0.0.7:5060>")
    udp.inject(fork.serialize(), ("10.0.0.7", 5060), A)
    udp.inject(fork.serialize(), ("10.0.0.7", 5060), A)  # a retransmission changes nothing
    sent = [parse(d) for d, _ in udp.outside]
    assert [m.method for m in sent if isinstance(m, Request)] == ["ACK", "BYE"]
    assert all(m.to.tag == "fork2" for m in sent) and udp.outside[0][1] == ("10.0.0.7", 5060)
    assert not any(isinstance(e, CallEnded) for e in udp.take(A))
    udp.uas[A].bye(call_id, udp.now)  # the first dialog is untouched
    udp.pump()
    assert udp.take(B)[-1] == CallEnded(call_id, "bye")


def test_callee_hanging_up_before_ack_waits_for_it(udp: Net) -> None:
    held: list[bytes] = []

    def hold_ack(msg: Request | Response) -> bool:
        if isinstance(msg, Request) and msg.method == "ACK" and not held:
            held.append(msg.serialize())
            return True
        return False

    udp.drop = hold_ack
    call_id = _call(udp)
    udp.uas[B].bye(call_id, udp.now)
    udp.pump()
    assert "BYE" not in udp.methods()
    udp.inject(held[0], A, B)
    assert udp.methods()[-2:] == ["BYE", "200"]
    assert udp.take(A)[-1] == CallEnded(call_id, "bye")
    assert not any(isinstance(e, CallConfirmed) for e in udp.take(B))


def test_ringing_longer_than_timer_b_is_not_a_timeout(udp: Net) -> None:
    call_id = udp.uas[A].invite(f"sip:bob@{B[0]}:{B[1]}", OFFER, udp.now)
    udp.pump()
    udp.uas[B].ringing(call_id, udp.now)
    udp.run_until(120.0)
    assert not any(isinstance(e, CallFailed) for e in udp.take(A))
    udp.uas[B].answer(call_id, ANSWER, udp.now)
    udp.pump()
    assert CallAnswered(call_id, ANSWER) in udp.take(A)


def test_rfc2543_peer_without_magic_cookie(udp: Net) -> None:
    """An old peer's INVITE (no z9hG4bK branch): answered, retransmission absorbed, CANCEL matched."""
    old = _raw_invite().replace(b"branch=z9hG4bKraw-INVITE-0", b"branch=old1")
    udp.inject(old, A, B)
    (incoming,) = udp.take(B)
    assert isinstance(incoming, IncomingCall)
    udp.inject(old, A, B)  # retransmission before any answer: a 100 to stop it, no second call
    assert udp.take(B) == [] and udp.methods() == ["100"]
    cancel = old.replace(b"INVITE sip:", b"CANCEL sip:").replace(b"CSeq: 1 INVITE", b"CSeq: 1 CANCEL")
    udp.inject(cancel, A, B)
    assert udp.take(B) == [CallEnded(incoming.call_id, "cancelled")]
    assert sorted(udp.methods()[-2:]) == ["200", "487"]


def test_a_flood_gets_503_and_leaves_no_state() -> None:
    b = UserAgent(UaConfig(*B, user="bob", max_calls=3, max_server_transactions=4))
    net = Net(UserAgent(UaConfig(*A, user="alice")), b)
    for i in range(3):
        net.inject(_raw_invite().replace(b"raw-1@", f"raw-{i + 10}@".encode())
                   .replace(b"raw-INVITE-0", f"flood{i}".encode()), A, B)
    assert len(b.calls) == 3
    net.inject(_raw_invite().replace(b"raw-1@", b"raw-99@").replace(b"raw-INVITE-0", b"flood99"), A, B)
    _, _, reply = net.log[-1]
    assert isinstance(reply, Response) and reply.status == 503 and reply.headers.get("Retry-After") == "5"
    assert len(b.calls) == 3
    for i in range(5):  # answered OPTIONS fill the table's last place, each making way for the next
        net.inject(_raw_invite(method="OPTIONS").replace(b"raw-OPTIONS-0", f"opt{i}".encode()), A, B)
        assert len(b._server) == 4
    statuses = [m.status for _, _, m in net.log[-5:] if isinstance(m, Response)]
    assert statuses == [200] * 5
    full = UserAgent(UaConfig(*B, user="bob", max_server_transactions=2))  # full of INVITEs owing an answer
    net = Net(UserAgent(UaConfig(*A, user="alice")), full)
    for i in range(2):
        net.inject(_raw_invite().replace(b"raw-1@", f"raw-{i + 10}@".encode())
                   .replace(b"raw-INVITE-0", f"full{i}".encode()), A, B)  # fmt: skip
    net.inject(_raw_invite(method="OPTIONS"), A, B)
    _, _, reply = net.log[-1]
    assert isinstance(reply, Response) and reply.status == 503 and len(full._server) == 2


def test_call_states_follow_the_table_and_refuse_other_moves(udp: Net) -> None:
    assert all(t in CALL_TRANSITIONS for targets in CALL_TRANSITIONS.values() for t in targets)
    assert CALL_TRANSITIONS[SipCallState.ENDED] == frozenset()
    call_id = _call(udp)
    caller, callee = udp.uas[A].calls[call_id], udp.uas[B].calls[call_id]
    assert caller.state is SipCallState.CONFIRMED and callee.state is SipCallState.CONFIRMED
    with pytest.raises(RuntimeError, match="confirmed -> early is no transition"):
        caller.move(SipCallState.EARLY)
    udp.uas[A].bye(call_id, udp.now)
    udp.pump()
    assert caller.state is SipCallState.ENDED and callee.state is SipCallState.ENDED
    with pytest.raises(RuntimeError, match="ended -> confirmed"):
        callee.move(SipCallState.CONFIRMED)
