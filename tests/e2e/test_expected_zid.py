"""`zcall ctl call TARGET --zid ZID`: a script calls a known device at a URI and holds the call to its ZID, as
the TUI does for a trust or history entry. Real zcall processes on loopback; the unit that answers is not the
one named, so the call raises identity_mismatch and stays muted."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.zcall_peer import ZcallPeer
from zcall.exitcodes import ExitCode

LOOPBACK = ["--no-mdns", "--bind", "127.0.0.1"]


def test_a_call_held_to_a_zid_that_does_not_answer_raises_identity_mismatch(tmp_path: Path) -> None:
    with (
        ZcallPeer(None, tmp_path / "bob", name="bob", sip_port=0, auto_answer=True, extra=LOOPBACK) as bob,
        ZcallPeer(None, tmp_path / "alice", name="alice", sip_port=0, extra=LOOPBACK) as alice,
    ):
        bob_uri = bob.wait_event("ready")["sip_uri"]
        alice.wait_event("ready")
        refused = alice.cli("ctl", "call", bob_uri, "--zid", "not-a-zid")
        assert refused.returncode == ExitCode.USAGE and "24 hex digits" in refused.stderr
        expected = os.urandom(12).hex()
        call_id = alice.ctl("call", bob_uri, "--zid", expected)["id"]
        alert = alice.wait_event("alert", id=call_id)  # said as ZRTP meets the peer, before secure
        secure = alice.wait_event("secure", id=call_id)
        assert alert["kind"] == "identity_mismatch", alert
        assert expected in alert["message"] and secure["peer_zid"] in alert["message"]
        assert alice.ctl("status")["calls"][0]["muted"] is True
        alice.ctl("hangup")
        bob.wait_event("ended")
