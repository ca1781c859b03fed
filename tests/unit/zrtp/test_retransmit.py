"""retransmit.py: the T1/T2 schedules of §6 and the outbox that numbers and resends packets."""

from __future__ import annotations

import pytest

from zcall.zrtp import messages as m
from zcall.zrtp.packet import Packet, parse_packet
from zcall.zrtp.retransmit import T1_RETRIES, T2_RETRIES, Outbox, Retransmit


def _schedule(retx: Retransmit) -> list[float]:
    """Fire at each due time until the budget runs out; return the intervals between sends."""
    intervals = []
    now = retx.due
    while retx.fire(now) is not None:
        intervals.append(round(retx.due - now, 6))
        now = retx.due
    return intervals


def test_t1_doubles_from_50ms_to_a_200ms_cap() -> None:
    retx = Retransmit.t1("Hello", b"x", 10.0)
    assert retx.due == pytest.approx(10.05)
    intervals = _schedule(retx)
    assert len(intervals) == T1_RETRIES == 20
    assert intervals[:4] == [0.1, 0.2, 0.2, 0.2] and set(intervals[2:]) == {0.2}


def test_t2_doubles_from_150ms_to_a_400ms_cap_with_the_patience_of_rfc_6189() -> None:
    retx = Retransmit.t2("Commit", b"x", 0.0)
    assert retx.due == pytest.approx(0.15)
    intervals = _schedule(retx)
    assert len(intervals) == T2_RETRIES == 26
    assert intervals[:3] == [0.3, 0.4, 0.4] and set(intervals[1:]) == {0.4}
    assert max(intervals) <= 1.2  # never slower than §6's cap
    rfc_span = 0.15 + sum(min(0.15 * 2 ** (n + 1), 1.2) for n in range(10))  # §6: to 1200 ms, 10 resends
    assert abs(0.15 + sum(intervals) - rfc_span) < 0.5  # gives up about when §6 would
    assert retx.fire(100.0) is None and retx.left == 0  # exhausted stays exhausted


def _sent(outbox: Outbox) -> list[Packet]:
    return [parse_packet(p) for p in outbox.take()]


def test_outbox_numbers_packets_in_order_from_the_lower_half() -> None:
    outbox = Outbox(0xDEADBEEF)
    for _ in range(3):
        outbox.send(m.HelloAck().encode())
    packets = _sent(outbox)
    first = packets[0].sequence
    assert first < 0x8000
    assert [p.sequence for p in packets] == [first, first + 1, first + 2]
    assert {p.ssrc for p in packets} == {0xDEADBEEF}
    assert all(m.parse_message(p.message) == m.HelloAck() for p in packets)
    assert outbox.take() == []


def test_outbox_resends_when_due_and_reports_exhaustion() -> None:
    outbox = Outbox(7)
    commit = m.Error(0x10).encode()
    outbox.start("Error", commit, 1.0)
    assert len(_sent(outbox)) == 1 and outbox.retx is not None and outbox.retx.kind == "Error"
    retx = outbox.retx
    assert not outbox.expired(retx, 1.149) and outbox.take() == []  # not due yet: nothing sent
    resends = 0
    now = retx.due
    while not outbox.expired(retx, now):
        (packet,) = _sent(outbox)
        assert packet.message == commit
        resends += 1
        now = retx.due
    assert resends == T2_RETRIES and outbox.take() == []


def test_outbox_hello_slot_and_clear() -> None:
    outbox = Outbox(1)
    outbox.start_hello(b"hello-bytes-aligned-", 0.0)
    outbox.start("Commit", b"commit-bytes", 0.0)
    assert outbox.hello is not None and outbox.hello.kind == "Hello" and outbox.retx is not None
    outbox.clear()
    assert outbox.hello is None and outbox.retx is None and outbox.take() == []
