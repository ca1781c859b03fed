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
