"""A third host on the LAN sprays forged ZRTP Hellos/Errors/Conf2ACKs/GoClears (valid CRC), STUN binding
requests and DTLS records at both ends' media ports during a call, from its own address and with the other
end's address forged (issue 12). The call lasts its full length, audio crosses both ways, nobody is alarmed.

Before issue 12's fixes one forged Hello ended a secure call ("peer Hello changed during the exchange") and
any such datagram moved where the call's media was sent.

Not covered: an Error with the peer's address forged *during* the key exchange still aborts it (Error is
unauthenticated and, before keys exist, indistinguishable from the peer giving up); the sprayer leaves Errors
out until both ends are secure.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.audio_check import tone_heard
from tests.support.capture import capture, media_report
from tests.support.netns import Lan
from tests.support.zcall_peer import ZcallPeer

pytestmark = [pytest.mark.netns, pytest.mark.timeout(150)]

ROOT = Path(__file__).resolve().parents[2]
PORT_A, PORT_B = 40000, 40002
CALL_S = 10.0


def test_sprayed_forgeries_change_nothing(lan3: Lan, tmp_path: Path) -> None:
    a, b, c = lan3.hosts
    heard_a, heard_b = tmp_path / "heard_by_alice.wav", tmp_path / "heard_by_bob.wav"
    alice = ZcallPeer(a, tmp_path / "alice", name="alice", audio_in="tone:440", audio_out=f"file:{heard_a}",
                      extra=["--rtp-port", str(PORT_A), "--no-mdns"])  # fmt: skip
    bob = ZcallPeer(b, tmp_path / "bob", name="bob", audio_in="tone:660", audio_out=f"file:{heard_b}",
                    auto_answer=True, extra=["--rtp-port", str(PORT_B), "--no-mdns"])  # fmt: skip
    media_a, media_b = f"{a.ip}:{PORT_A}", f"{b.ip}:{PORT_B}"

    def spray(seconds: float, *skip: str) -> subprocess.Popen[str]:
        proc = c.popen(
            [sys.executable, "-m", "tests.support.sprayer", "--target", media_a, "--target", media_b,
             "--spoof", f"{media_b}={media_a}", "--spoof", f"{media_a}={media_b}",
             "--seconds", str(seconds), "--rate", "60", *(f"--skip={kind}" for kind in skip)],
            stdout=subprocess.PIPE, text=True, cwd=str(ROOT),
        )  # fmt: skip
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        return proc

    sprayers = [spray(CALL_S + 30, "zrtp-error")]  # from before the call: Hellos, Conf2ACKs, STUN, DTLS
    try:
        # What reached bob's port "from alice": alice herself sends a few dozen ZRTP packets and no DTLS.
        spoofed_filter = f"udp and src host {a.ip} and dst port {PORT_B}"
        with capture(b, tmp_path / "at_bob.pcap", spoofed_filter) as pcap, alice, bob:
            alice.wait_event("ready")
            bob.wait_event("ready")
            alice.ctl("call", f"sip:zcall@{b.ip}:5060")
            secure_a = alice.wait_event("secure", timeout=20)
            secure_b = bob.wait_event("secure", timeout=20)
            assert secure_a["sas"] == secure_b["sas"]
            sprayers.append(spray(CALL_S + 5))  # once secure: every kind, forged Errors too
            time.sleep(CALL_S)
            for peer in (alice, bob):
                peer.mark()
                bad = [e for e in peer.events if e["event"] in ("alert", "ended", "error")]
                assert not bad, f"{peer.name}: {bad}"
            alice.ctl("hangup")
            ended_a = alice.wait_event("ended", timeout=10)
            ended_b = bob.wait_event("ended", timeout=10)
            assert ended_a["duration_s"] >= CALL_S and ended_b["duration_s"] >= CALL_S - 1
        assert abs(tone_heard(heard_b, min_seconds=CALL_S - 2) - 440) < 5, "bob heard alice all along"
        assert abs(tone_heard(heard_a, min_seconds=CALL_S - 2) - 660) < 5, "alice heard bob all along"
        report = media_report(pcap)
        assert report.zrtp > 300 and report.dtls > 100, f"the forgeries did not arrive: {report}"
    finally:
        for proc in sprayers:
            proc.terminate()
            proc.communicate(timeout=10)
