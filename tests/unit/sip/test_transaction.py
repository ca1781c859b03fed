"""Transaction timers on a fake clock: A/E/G doubling, B/F/H timeouts, D/I/J/K absorbing, reliable mode."""

from __future__ import annotations

import pytest

from tests.unit.sip.samples import invite
from zcall.sip.model import Request, Response, build_response
from zcall.sip.parser import parse
from zcall.sip.transaction import (
    INVITE_CLIENT,
    INVITE_SERVER,
    NON_INVITE_CLIENT,
    NON_INVITE_SERVER,
    ClientTransaction,
    ServerTransaction,
    TxResponse,
    TxState,
    TxTimeout,
    server_key,
)

DEST = ("192.0.2.20", 5060)


def _request(method: str = "INVITE") -> Request:
    data = invite(request_line=f"{method} sip:bob@192.0.2.20 SIP/2.0", cseq=f"CSeq: 314159 {method}")
    req = parse(data)
    assert isinstance(req, Request)
    return req


def _run(tx: ClientTransaction | ServerTransaction, until: float) -> tuple[list[float], float]:
    """Fire timers up to `until`; returns the times something was sent and the time the clock stopped."""
    sent: list[float] = []
    now = 0.0
    while (when := tx.get_timer()) is not None and when <= until:
        now = when
        tx.handle_timer(now)
        sent += [now] * len(tx.datagrams_to_send(now))
    return sent, now


def _events(tx: ClientTransaction | ServerTransaction) -> list[object]:
    out: list[object] = []
    while (ev := tx.next_event()) is not None:
        out.append(ev)
    return out


def test_invite_client_timer_a_doubles_until_b() -> None:
    tx = ClientTransaction(_request(), DEST, 0.0, reliable=False)
    assert len(tx.datagrams_to_send(0.0)) == 1
    sent, now = _run(tx, 100.0)
    assert sent == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert now == 32.0 and tx.terminated
    assert _events(tx) == [TxTimeout("B")]


def test_non_invite_client_timer_e_caps_at_t2_until_f() -> None:
    tx = ClientTransaction(_request("OPTIONS"), DEST, 0.0, reliable=False)
    tx.datagrams_to_send(0.0)
    sent, now = _run(tx, 100.0)
    assert sent == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert now == 32.0 and _events(tx) == [TxTimeout("F")]


def test_non_invite_proceeding_retransmits_every_t2() -> None:
    req = _request("BYE")
    tx = ClientTransaction(req, DEST, 0.0, reliable=False)
    tx.datagrams_to_send(0.0)
    tx.handle_timer(0.5)
    tx.datagrams_to_send(0.5)
    tx.receive(build_response(req, 100), 0.6)
    assert tx.state is TxState.PROCEEDING
    sent: list[float] = []
    while (when := tx.get_timer()) is not None and when < 20:
        tx.handle_timer(when)
        sent += [when] * len(tx.datagrams_to_send(when))
    assert sent == [1.5, 5.5, 9.5, 13.5, 17.5]  # E was already armed for 1.5, then T2 apart


def test_reliable_transport_never_retransmits() -> None:
    for method, timeout in (("INVITE", "B"), ("OPTIONS", "F")):
        tx = ClientTransaction(_request(method), DEST, 0.0, reliable=True)
        tx.datagrams_to_send(0.0)
        sent, now = _run(tx, 100.0)
        assert sent == [] and now == 32.0
        assert _events(tx) == [TxTimeout(timeout)]


def test_invite_client_non_2xx_acks_and_absorbs_retransmissions_for_d() -> None:
    req = _request()
    tx = ClientTransaction(req, DEST, 0.0, reliable=False)
    tx.datagrams_to_send(0.0)
    tx.receive(build_response(req, 180, to_tag="x"), 0.2)
    assert tx.state is TxState.PROCEEDING and tx.get_timer() is None  # A and B stopped: ringing may last
    busy = build_response(req, 486, to_tag="x")
    tx.receive(busy, 1.0)
    (ack_wire, addr), = tx.datagrams_to_send(1.0)
    ack = parse(ack_wire)
    assert isinstance(ack, Request) and ack.method == "ACK" and addr == DEST
    assert ack.top_via.branch == req.top_via.branch and ack.to.tag == "x" and str(ack.cseq) == "314159 ACK"
    assert [type(e) for e in _events(tx)] == [TxResponse, TxResponse]
    tx.receive(busy, 2.0)  # retransmitted 486: ACK again, nothing for the TU
    assert len(tx.datagrams_to_send(2.0)) == 1 and _events(tx) == []
    assert tx.get_timer() == 33.0
    tx.handle_timer(33.0)
    assert tx.terminated


def test_invite_client_2xx_goes_to_accepted_and_passes_retransmissions_up() -> None:
    req = _request()
    tx = ClientTransaction(req, DEST, 0.0, reliable=True)
    ok = build_response(req, 200, to_tag="y")
    tx.receive(ok, 0.1)
    tx.receive(ok, 0.6)
    assert tx.state is TxState.ACCEPTED and len(_events(tx)) == 2
    assert tx.get_timer() == pytest.approx(32.1)
    tx.handle_timer(32.1)
    assert tx.terminated and _events(tx) == []


def test_non_invite_client_timer_k() -> None:
    req = _request("OPTIONS")
    for reliable, k in ((False, 5.0), (True, 0.0)):
        tx = ClientTransaction(req, DEST, 0.0, reliable=reliable)
        tx.receive(build_response(req, 200, to_tag="z"), 1.0)
        assert tx.state is TxState.COMPLETED and tx.get_timer() == 1.0 + k
        tx.receive(build_response(req, 200, to_tag="z"), 1.1)  # absorbed
        assert len(_events(tx)) == 1
        tx.handle_timer(1.0 + k)
        assert tx.terminated


def test_invite_server_sends_trying_and_repeats_last_response() -> None:
    req = _request()
    tx = ServerTransaction(req, ("192.0.2.10", 5060), 0.0, reliable=False)
    assert tx.datagrams_to_send(0.0) == []  # the TU has 200 ms to answer before a 100 is due
    assert tx.get_timer() == 0.2
    tx.handle_timer(0.2)
    (wire, _), = tx.datagrams_to_send(0.2)
    trying = parse(wire)
    assert isinstance(trying, Response) and trying.status == 100
    tx.respond(build_response(req, 180, to_tag="t"), 0.3)
    tx.datagrams_to_send(0.3)
    tx.receive(req, 0.5)
    (again, _), = tx.datagrams_to_send(0.5)
    assert parse(again).status == 180  # type: ignore[union-attr]


def test_invite_server_timer_g_doubles_caps_and_h_times_out() -> None:
    req = _request()
    tx = ServerTransaction(req, ("192.0.2.10", 5060), 0.0, reliable=False, send_trying=False)
    tx.respond(build_response(req, 486, to_tag="t"), 0.0)
    tx.datagrams_to_send(0.0)
    sent, now = _run(tx, 100.0)
    assert sent == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert now == 32.0 and _events(tx) == [TxTimeout("H")]


def test_invite_server_ack_stops_g_and_i_absorbs() -> None:
    req = _request()
    ack = parse(invite(request_line="ACK sip:bob@192.0.2.20 SIP/2.0", cseq="CSeq: 314159 ACK", body=b""))
    assert isinstance(ack, Request) and server_key(ack) == server_key(req)
    for reliable, t_i in ((False, 5.0), (True, 0.0)):
        tx = ServerTransaction(req, ("192.0.2.10", 5060), 0.0, reliable=reliable, send_trying=False)
        tx.respond(build_response(req, 603, to_tag="t"), 0.0)
        tx.datagrams_to_send(0.0)
        tx.receive(ack, 0.7)
        assert tx.state is TxState.CONFIRMED and tx.get_timer() == pytest.approx(0.7 + t_i)
        tx.receive(ack, 0.8)
        tx.receive(req, 0.9)  # retransmitted INVITE in Confirmed: absorbed
        assert tx.datagrams_to_send(0.9) == []
        tx.handle_timer(0.7 + t_i)
        assert tx.terminated and _events(tx) == []


def test_invite_server_2xx_accepted_until_l() -> None:
    req = _request()
    tx = ServerTransaction(req, ("192.0.2.10", 5060), 0.0, reliable=False, send_trying=False)
    tx.respond(build_response(req, 200, to_tag="t"), 0.0)
    tx.datagrams_to_send(0.0)
    tx.receive(req, 1.0)  # the TU, not the transaction, retransmits 2xx
    assert tx.datagrams_to_send(1.0) == [] and tx.state is TxState.ACCEPTED
    tx.handle_timer(32.0)
    assert tx.terminated


def test_non_invite_server_timer_j_and_retransmits() -> None:
    req = _request("OPTIONS")
    for reliable, j in ((False, 32.0), (True, 0.0)):
        tx = ServerTransaction(req, ("192.0.2.10", 5060), 0.0, reliable=reliable)
        assert tx.datagrams_to_send(0.0) == []  # no 100 Trying for non-INVITE
        tx.receive(req, 0.1)  # retransmission while Trying: nothing to repeat yet
        assert tx.datagrams_to_send(0.1) == []
        tx.respond(build_response(req, 200, to_tag="t"), 0.2)
        tx.datagrams_to_send(0.2)
        tx.receive(req, 0.3)
        assert len(tx.datagrams_to_send(0.3)) == 1
        tx.respond(build_response(req, 500), 0.4)  # a second final response is ignored
        assert tx.datagrams_to_send(0.4) == []
        assert tx.get_timer() == pytest.approx(0.2 + j)
        tx.handle_timer(0.2 + j)
        assert tx.terminated


@pytest.mark.parametrize("table", [INVITE_CLIENT, NON_INVITE_CLIENT, INVITE_SERVER, NON_INVITE_SERVER])
def test_transition_tables_are_closed_and_end_in_terminated(table: dict[TxState, frozenset[TxState]]) -> None:
    assert all(target in table for targets in table.values() for target in targets)
    assert table[TxState.TERMINATED] == frozenset()
    assert TxState.TERMINATED in table[TxState.COMPLETED]


def test_a_move_outside_the_table_is_refused() -> None:
    tx = ClientTransaction(_request(), DEST, 0.0, reliable=False)
    tx.receive(build_response(_request(), 486, to_tag="x"), 0.1)
    assert tx.state is TxState.COMPLETED
    with pytest.raises(RuntimeError, match="completed -> proceeding"):
        tx.move(TxState.PROCEEDING)
    server = ServerTransaction(_request("OPTIONS"), DEST, 0.0, reliable=False)
    with pytest.raises(RuntimeError, match="trying -> confirmed"):
        server.move(TxState.CONFIRMED)
