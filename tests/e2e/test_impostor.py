"""An impostor unit on the LAN advertising the name of a device the user verified (issue 12).

Alice and Bob compare words once (both `trust verify`). Bob goes away; Mallory, a fresh unit, announces the
name "bob". Alice calls "bob": the call must say this is not the device she chose (alert identity_mismatch),
stay muted, and never be reported verified.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.netns import Lan
from tests.support.zcall_peer import ZcallPeer

pytestmark = [pytest.mark.netns, pytest.mark.timeout(180)]


def test_impostor_with_a_verified_name_is_called_out(lan3: Lan, tmp_path: Path) -> None:
    a, b, c = lan3.hosts
    alice = ZcallPeer(a, tmp_path / "alice", name="alice", audio_in="tone:440")
    bob = ZcallPeer(b, tmp_path / "bob", name="bob", audio_in="tone:660", auto_answer=True)
    with alice:
        alice.wait_event("ready")
        with bob:
            bob_zid = bob.wait_event("ready")["zid"]
            alice.wait_event("peer", action="up", name="bob", timeout=15)
            alice.ctl("call", "bob")
            secure = alice.wait_event("secure", timeout=30)
            bob.wait_event("secure", timeout=30)
            assert secure["peer_zid"] == bob_zid
            alice.ctl("hangup")
            alice.wait_event("ended", timeout=10)
            assert alice.cli("trust", "rename", bob_zid, "bob").returncode == 0
            assert alice.cli("trust", "verify", bob_zid).returncode == 0
        alice.wait_event("peer", action="down", name="bob", timeout=15)

        mallory = ZcallPeer(c, tmp_path / "mallory", name="bob", audio_in="tone:880", auto_answer=True)
        with mallory:
            mallory_zid = mallory.wait_event("ready")["zid"]
            assert mallory_zid != bob_zid
            alice.wait_event("peer", action="up", name="bob", zid=mallory_zid, timeout=15)
            mark = alice.mark()
            alice.ctl("call", "bob")
            alert = alice.wait_event("alert", since=mark, timeout=30)
            assert alert["kind"] == "identity_mismatch"
            secure = alice.wait_event("secure", since=mark, timeout=30)
            assert secure["verified"] is False and secure["peer_zid"] == mallory_zid
            (call,) = alice.ctl("status")["calls"]
            assert call["muted"] is True
            alice.ctl("hangup")
