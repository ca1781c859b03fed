"""`zcall peers` lists the units on the LAN: by browsing (no phone running in this home), or by asking the
phone that runs in this home."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from tests.support.netns import Lan
from tests.support.zcall_peer import ZcallPeer
from zcall.paths import Paths
from zcall.zrtp.cache import ZrtpCache

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


def test_a_unit_announcing_a_verified_name_is_listed_as_an_impostor(lan2: Lan, tmp_path: Path) -> None:
    a, b = lan2.hosts
    lister = Paths.resolve(tmp_path / "lister")
    lister.ensure_private_dirs()
    real_bob = bytes.fromhex("b0b0" * 6)
    with ZrtpCache(lister.cache_file) as cache:  # the user verified the real bob before
        cache.touch(real_bob, time.time(), name="bob")
        cache.store_new_rs1(real_bob, b"\x01" * 32, 0xFFFFFFFF, time.time())
        cache.set_verified(real_bob, True)
    with ZcallPeer(b, tmp_path / "mallory", name="bob") as mallory:
        ready = mallory.wait_event("ready")
        listing = a.run(
            [sys.executable, "-m", "zcall", "--home", str(tmp_path / "lister"), "--bind", a.ip, "peers",
             "--wait", "3", "--json"],
            cwd=str(Path(__file__).resolve().parents[2]),
        )  # fmt: skip
    assert listing.returncode == 0, listing.stderr
    found = [json.loads(line) for line in listing.stdout.splitlines()]
    assert [(p["name"], p["zid"], p["trust"]) for p in found] == [("bob", ready["zid"], "impostor")]
