"""Issue 17 item 14: a callee learns where a call comes from, not only the name the caller chose.

Real zcall processes on loopback: the callee's `call` events carry the caller's SIP URI (its From) and the
address and port its INVITE came from; the caller's carry the URI dialled and where the INVITE went.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.zcall_peer import ZcallPeer

LOOPBACK = ["--no-mdns", "--bind", "127.0.0.1"]


def test_the_callee_sees_the_callers_uri_and_address(tmp_path: Path) -> None:
    with (
        ZcallPeer(None, tmp_path / "bob", name="bob", sip_port=0, extra=LOOPBACK) as bob,
        ZcallPeer(None, tmp_path / "alice", name="vm", sip_port=0, extra=LOOPBACK) as alice,
    ):
        bob_uri = bob.wait_event("ready")["sip_uri"]
        alice_uri = alice.wait_event("ready")["sip_uri"]
        alice_port, bob_port = (int(uri.rsplit(":", 1)[1]) for uri in (alice_uri, bob_uri))
        alice.ctl("call", bob_uri)
        dialing = alice.wait_event("call", state="dialing")
        assert (dialing["uri"], dialing["address"], dialing["port"]) == (bob_uri, "127.0.0.1", bob_port)
        incoming = bob.wait_event("call", state="incoming")
        assert incoming["peer"] == "vm"  # what the caller calls itself ...
        assert incoming["uri"] == alice_uri  # ... the URI it gives ...
        assert (incoming["address"], incoming["port"]) == ("127.0.0.1", alice_port)  # ... and where it is
        bob.ctl("answer")
        secure = bob.wait_event("call", state="secure")
        assert (secure["uri"], secure["address"], secure["port"]) == (alice_uri, "127.0.0.1", alice_port)
        bob.ctl("hangup")
        alice.wait_event("ended")
