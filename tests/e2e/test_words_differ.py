"""Words that differ revoke trust (issue 12): two units verified with each other; in a later call one says
the words differ; the secret of that call is rolled back, the device is no longer verified, and the next call
is not reported verified on either end (the other end sees the V flag gone)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.netns import Lan
from tests.support.zcall_peer import ZcallPeer

pytestmark = [pytest.mark.netns, pytest.mark.timeout(180)]


def call(alice: ZcallPeer, bob: ZcallPeer, target: str) -> tuple[dict[str, Any], dict[str, Any]]:
    alice.ctl("call", target)
    return alice.wait_event("secure", timeout=30), bob.wait_event("secure", timeout=30)


def end(alice: ZcallPeer, bob: ZcallPeer) -> None:
    alice.ctl("hangup")
    alice.wait_event("ended", timeout=10)
    bob.wait_event("ended", timeout=10)


@pytest.mark.parametrize("who", ["caller", "callee"])
def test_words_differ_revokes_verified(lan2: Lan, tmp_path: Path, who: str) -> None:
    a, b = lan2.hosts
    alice = ZcallPeer(a, tmp_path / "alice", name="alice", extra=["--no-mdns"])
    bob = ZcallPeer(b, tmp_path / "bob", name="bob", auto_answer=True, extra=["--no-mdns"])
    target = f"sip:zcall@{b.ip}:5060"
    with alice, bob:
        alice.wait_event("ready")
        bob.wait_event("ready")
        first_a, first_b = call(alice, bob, target)
        alice.ctl("verify")
        bob.ctl("verify")
        end(alice, bob)
        second_a, second_b = call(alice, bob, target)
        assert second_a["cache"] == "match" and second_a["verified"] is True and second_b["verified"] is True
        end(alice, bob)

        call(alice, bob, target)
        # Someone is in the middle, says one of them: the caller, or the callee that answered by itself.
        sayer, peer_zid = (alice, first_a["peer_zid"]) if who == "caller" else (bob, first_b["peer_zid"])
        sayer.ctl("verify", "--differ")
        assert sayer.wait_event("alert", timeout=10)["kind"] == "sas_mismatch"
        alice.wait_event("ended", timeout=10)
        bob.wait_event("ended", timeout=10)
        listing = sayer.cli("trust", "list").stdout
        assert peer_zid in listing and "verified" not in listing

        fourth_a, fourth_b = call(alice, bob, target)
        # Alice's rolled-back rs1 still meets Bob's rs2 (one missed update is what rs2 is for): no alarm,
        # but nothing is verified until the words are compared again.
        assert fourth_a["cache"] == "match"
        assert fourth_a["verified"] is False and fourth_b["verified"] is False
        end(alice, bob)
