"""RFC 6189 §4.6: the initiator MUST treat the first valid SRTP from the responder as a Conf2ACK. A hop on
the media path loses every Conf2ACK (tests/support/mitm.py --transparent --drop Conf2ACK): both ends still
go secure and stay up, audio both ways. Without the implicit Conf2ACK the initiator gives up after its
Confirm2 retries (~9.5 s) and the call ends ("no answer to Confirm2")."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.audio_check import tone_heard
from tests.support.netns import Lan
from tests.support.zcall_peer import ZcallPeer

pytestmark = [pytest.mark.netns, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]


def test_srtp_stands_in_for_every_lost_conf2ack(lan3: Lan, tmp_path: Path) -> None:
    a, b, c = lan3.hosts
    heard_a, heard_b = tmp_path / "heard_by_alice.wav", tmp_path / "heard_by_bob.wav"
    alice = ZcallPeer(a, tmp_path / "alice", name="alice", audio_in="tone:440", audio_out=f"file:{heard_a}",
                      extra=["--no-mdns"])  # fmt: skip
    bob = ZcallPeer(b, tmp_path / "bob", name="bob", audio_in="tone:660", audio_out=f"file:{heard_b}",
                    auto_answer=True, extra=["--no-mdns"])  # fmt: skip
    hop = c.popen(
        [sys.executable, "-m", "tests.support.mitm", "--listen", f"{c.ip}:5070", "--to", f"{b.ip}:5060",
         "--transparent", "--drop", "Conf2ACK"],
        stdout=subprocess.PIPE, text=True, cwd=str(ROOT),
    )  # fmt: skip
    try:
        assert hop.stdout is not None and hop.stdout.readline().strip() == "ready"
        with alice, bob:
            alice.wait_event("ready")
            bob.wait_event("ready")
            alice.ctl("call", f"sip:zcall@{c.ip}:5070")
            secure_a = alice.wait_event("secure", timeout=30)
            secure_b = bob.wait_event("secure", timeout=30)
            assert json.loads(hop.stdout.readline()) == {"dropped": "Conf2ACK"}
            assert secure_a["sas"] == secure_b["sas"]
            assert abs(secure_a["_t"] - secure_b["_t"]) < 3.0, "the initiator did not wait out its retries"
            time.sleep(12)  # past the initiator's Confirm2 retry budget
            for peer in (alice, bob):
                peer.mark()
                assert not [e for e in peer.events if e["event"] in ("ended", "alert")], peer.events[-5:]
            alice.ctl("hangup")
            alice.wait_event("ended", timeout=10)
            bob.wait_event("ended", timeout=10)
        assert abs(tone_heard(heard_b, min_seconds=8) - 440) < 5
        assert abs(tone_heard(heard_a, min_seconds=8) - 660) < 5
    finally:
        hop.kill()
        hop.wait(5)
