"""Calling by name when two units announce it (issue 12): the call does not silently pick one."""

from __future__ import annotations

import pytest

from zcall.discovery.service import PeerUp
from zcall.routing import RouteError, resolve

BOB, MALLORY = bytes([0xB0]) * 12, bytes([0x66]) * 12
PEERS = [
    PeerUp(name="Bob", zid=BOB, address="10.0.0.2", port=5060, sip_port=5060),
    PeerUp(name="Bob", zid=MALLORY, address="10.0.0.66", port=5060, sip_port=5060),
]


def test_a_shared_name_asks_for_the_zid() -> None:
    with pytest.raises(RouteError) as info:
        resolve("Bob", PEERS, None, None)  # type: ignore[arg-type]
    assert BOB.hex() in str(info.value) and MALLORY.hex() in str(info.value)


def test_the_zid_picks_the_unit_and_is_what_the_call_expects() -> None:
    route = resolve(BOB.hex(), PEERS, None, None)  # type: ignore[arg-type]
    assert route.expected_zid == BOB and route.dest == ("10.0.0.2", 5060)
