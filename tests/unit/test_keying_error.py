"""A ZRTP exchange that we abort: the call ends only once our Error is acknowledged or its T2 resends run
out (RFC 6189 §6), not at once (which closed the session after a single Error, lost with the first loss)."""

from __future__ import annotations

import os

from zcall.keying import KeyFailed, ZrtpKeying
from zcall.zrtp import messages as m
from zcall.zrtp.errors import ZrtpErrorCode
from zcall.zrtp.packet import encode_packet, parse_packet
from zcall.zrtp.session import ZrtpSession


def _aborting_pair() -> tuple[ZrtpKeying, ZrtpSession]:
    """Our keying and a peer whose Hello carries our own ZID: we answer with Error 0x90 (§5.9)."""
    zid = os.urandom(12)
    ours = ZrtpKeying(zid, 0x1111, "call-1", ("X255",), ("B32",))
    peer = ZrtpSession(zid, ssrc=0x2222)
    peer.start(0.0)
    for datagram in peer.datagrams_to_send(0.0):
        ours.receive(datagram, 0.01)
    return ours, peer


def _errors(datagrams: list[bytes]) -> list[m.Message]:
    messages = [m.parse_message(parse_packet(d).message) for d in datagrams]
    return [msg for msg in messages if isinstance(msg, m.Error)]


def test_the_call_fails_once_the_peer_acknowledges_our_error() -> None:
    ours, _peer = _aborting_pair()
    assert _errors(ours.datagrams_to_send(0.01)) == [m.Error(ZrtpErrorCode.EQUAL_ZID)]
    assert ours.next_event() is None  # the Error is still unanswered: the session goes on resending it
    due = ours.get_timer()
    assert due is not None
    ours.handle_timer(due)
    assert _errors(ours.datagrams_to_send(due)) == [m.Error(ZrtpErrorCode.EQUAL_ZID)]
    assert ours.next_event() is None
    ours.receive(encode_packet(7, 0x2222, m.ErrorAck().encode()), due + 0.05)
    failed = ours.next_event()
    assert isinstance(failed, KeyFailed) and "peer uses our ZID" in failed.reason
    assert ours.next_event() is None and ours.get_timer() is None


def test_the_call_fails_when_the_error_resends_run_out() -> None:
    ours, _peer = _aborting_pair()
    sent, now = len(_errors(ours.datagrams_to_send(0.01))), 0.01
    event = ours.next_event()
    while event is None and (due := ours.get_timer()) is not None:
        now = due
        ours.handle_timer(now)
        sent += len(_errors(ours.datagrams_to_send(now)))
        event = ours.next_event()
    assert isinstance(event, KeyFailed) and "peer uses our ZID" in event.reason
    assert sent > 10 and now < 15.0  # T2's budget (~10.5 s), within the call's 20 s keys deadline
