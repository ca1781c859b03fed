"""A running phone takes the whole malformed-SIP table on its real UDP socket, answers each with the right
4xx (or drops what cannot be answered), and keeps serving calls afterwards."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.support.zcall_peer import ZcallPeer
from tests.unit.sip.test_message import MALFORMED

pytestmark = [pytest.mark.timeout(120)]


def _status_of(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


def test_malformed_table_then_a_secure_call(tmp_path: Path) -> None:
    bob = ZcallPeer(None, tmp_path / "bob", name="bob", auto_answer=True, sip_port=25062,
                    extra=["--bind", "127.0.0.1", "--no-mdns"])  # fmt: skip
    alice = ZcallPeer(None, tmp_path / "alice", name="alice", sip_port=25064,
                      extra=["--bind", "127.0.0.1", "--no-mdns"])  # fmt: skip
    with bob, alice:
        ready = bob.wait_event("ready")
        alice.wait_event("ready")
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.5)
        wrong: list[str] = []
        with sock:
            for name, data, status in MALFORMED:
                if not data or len(data) > 65000:
                    continue  # nothing to send, or more than one UDP datagram can carry
                sock.sendto(data, ("127.0.0.1", 25062))
                try:
                    reply, _ = sock.recvfrom(65535)
                except TimeoutError:
                    reply = b""
                got = _status_of(reply) if reply else None
                if got != status:
                    wrong.append(f"{name}: expected {status}, got {got}")
        assert not wrong, "\n".join(wrong)
        alice.ctl("call", ready["sip_uri"])
        secure_a, secure_b = alice.wait_event("secure"), bob.wait_event("secure")
        assert secure_a["sas"] == secure_b["sas"]
        alice.ctl("hangup")
        bob.wait_event("ended", timeout=5)
