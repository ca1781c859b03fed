"""`zcall peers` lists the units on the LAN: by browsing (no phone running in this home), or by asking the
phone that runs in this home."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.support.netns import Lan
from tests.support.zcall_peer import ZcallPeer

pytestmark = [pytest.mark.netns, pytest.mark.timeout(90)]


def test_peers_by_browsing_and_from_the_running_phone(lan2: Lan, tmp_path: Path) -> None:
    a, b = lan2.hosts
    with ZcallPeer(b, tmp_path / "bob", name="bob") as bob:
        ready = bob.wait_event("ready")
        listing = a.run(
            [sys.executable, "-m", "zcall", "--home", str(tmp_path / "lister"), "--bind", a.ip, "peers",
             "--wait", "3", "--json"],
            cwd=str(Path(__file__).resolve().parents[2]),
        )  # fmt: skip
        assert listing.returncode == 0, listing.stderr
        found = [json.loads(line) for line in listing.stdout.splitlines()]
        assert [(p["name"], p["zid"], p["address"]) for p in found] == [("bob", ready["zid"], b.ip)]
        with ZcallPeer(a, tmp_path / "alice", name="alice") as alice:
            alice.wait_event("peer", action="up", name="bob", timeout=10)
            from_phone = alice.cli("peers", "--json")
            assert from_phone.returncode == 0, from_phone.stderr
            assert [json.loads(line)["name"] for line in from_phone.stdout.splitlines()] == ["bob"]
