"""Shared fixtures for the test bench. Each tests/support module owns one kind of fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import netns
from tests.support.prereq import require_binary, require_root


@pytest.fixture
def lan2() -> Iterator[netns.Lan]:
    """Two hosts in namespaces joined by one veth."""
    require_root()
    require_binary("ip")
    with netns.lan(2) as lan:
        yield lan


@pytest.fixture
def lan3() -> Iterator[netns.Lan]:
    """Three hosts in namespaces on one bridge."""
    require_root()
    require_binary("ip")
    with netns.lan(3) as lan:
        yield lan


from tests.support import linphone as _linphone  # noqa: E402  (appended fixture block)


@pytest.fixture
def linphonec(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_linphone.LinphonecFactory]:
    """Start linphonec peers: `linphonec(host, "name", **Linphonec kwargs)` returns a started Linphonec
    (home under a fresh temp dir); every one is stopped at teardown. See tests/support/linphone.py."""
    require_binary("linphonec")
    with _linphone.linphonec_factory(tmp_path_factory.mktemp("linphonec")) as factory:
        yield factory


from tests.support import relay as _relay  # noqa: E402  (appended fixture block)


@pytest.fixture
def udp_relay() -> Iterator[_relay.RelayFactory]:
    """Start in-process impairment relays on loopback: `udp_relay(to_a=..., to_b=..., seed=1,
    a_to_b=Impairment(loss=0.1))` returns a started UdpRelay; every one is stopped at teardown.
    See tests/support/relay.py (and its command line for relays inside namespaces)."""
    with _relay.relay_factory() as factory:
        yield factory
