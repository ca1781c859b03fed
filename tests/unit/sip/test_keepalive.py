"""RFC 5626 keep-alive policy on a fake clock: ping timing, pong deadline, death."""

from __future__ import annotations

import random

import pytest

from zcall.sip.keepalive import PONG_TIMEOUT_S, Due, KeepAlive


def test_pings_while_pongs_come_back() -> None:
    flow = KeepAlive(0.0, 25.0, rng=random.Random(1))
    first = flow.get_timer()
    assert first is not None and 20.0 <= first <= 25.0  # 80-100 % of the interval
    assert flow.handle_timer(first - 0.1) is None
    assert flow.handle_timer(first) is Due.PING and flow.waiting
    assert flow.get_timer() == first + PONG_TIMEOUT_S
    flow.alive(first + 0.05)
    assert not flow.waiting and flow.pongs == 1
    second = flow.get_timer()
    assert second is not None and first + 20.0 <= second <= first + 25.1
    assert flow.handle_timer(first + PONG_TIMEOUT_S) is None  # the old deadline means nothing now


def test_a_missing_pong_kills_the_flow_once() -> None:
    flow = KeepAlive(0.0, 5.0, rng=random.Random(2))
    ping_at = flow.get_timer()
    assert ping_at is not None and flow.handle_timer(ping_at) is Due.PING
    assert flow.handle_timer(ping_at + PONG_TIMEOUT_S - 0.01) is None
    assert flow.handle_timer(ping_at + PONG_TIMEOUT_S) is Due.DEAD
    assert flow.get_timer() is None and flow.handle_timer(1e6) is None
    flow.alive(1e6)  # too late: a dead flow stays dead (the owner reconnects)
    assert flow.get_timer() is None


def test_traffic_postpones_the_ping() -> None:
    flow = KeepAlive(0.0, 10.0, rng=random.Random(3))
    flow.alive(7.0)  # a SIP message arrived
    due = flow.get_timer()
    assert due is not None and due >= 15.0 and flow.pongs == 0


def test_nonsense_intervals_are_refused() -> None:
    with pytest.raises(ValueError):
        KeepAlive(0.0, 0.0)
