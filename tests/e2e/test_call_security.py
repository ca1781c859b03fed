"""What an attacker or a plain phone gets: never a secure-looking call, never plain RTP from us.

- A hop in the middle rewrites the SDP's zrtp-hash: zcall raises zrtp_hash_mismatch and never goes secure.
- A peer that answers RTP/AVP without ZRTP (baresip with no media encryption): the call ends with
  "peer does not support ZRTP".
- Every call here is captured on the veth: only ZRTP and SRTP cross on the media ports, never plain RTP.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.audio_check import write_tone_wav
from tests.support.baresip import Baresip
from tests.support.capture import capture, media_report
from tests.support.netns import Lan
from tests.support.zcall_peer import ZcallPeer

pytestmark = [pytest.mark.netns, pytest.mark.timeout(120)]


def test_rewritten_zrtp_hash_is_caught(lan2: Lan, tmp_path: Path) -> None:
    a, b = lan2.hosts
    hop = a.popen(
        [sys.executable, "-m", "tests.support.sip_hop", "--listen", f"{a.ip}:5070", "--to", f"{b.ip}:5060"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=str(Path(__file__).resolve().parents[2]),
    )
    try:
        assert hop.stdout is not None and hop.stdout.readline().strip() == "ready"
        alice = ZcallPeer(a, tmp_path / "alice", name="alice", audio_in="tone:440")
        bob = ZcallPeer(b, tmp_path / "bob", name="bob", audio_in="tone:660", auto_answer=True)
        with capture(b, tmp_path / "hop.pcap") as pcap, alice, bob:
            alice.wait_event("ready")
            bob.wait_event("ready")
            alice.ctl("call", f"sip:zcall@{a.ip}:5070")  # through the hop
            alice.wait_event("call", state="answered", timeout=10)
            alert = bob.wait_event("alert", timeout=15)
            assert alert["kind"] == "zrtp_hash_mismatch"
            assert "tampered" in alert["message"]
            ended_b = bob.wait_event("ended", timeout=10)
            assert ended_b["reason"] == "zrtp hash mismatch"
            alice.wait_event("ended", timeout=15)
            assert not [e for e in alice.events + bob.events if e["event"] == "secure"]
        report = media_report(pcap)
        assert report.zrtp > 0
        assert report.rtp_like == 0, "no media may flow when the hash does not match"
    finally:
        hop.kill()
        hop.wait(5)


def test_peer_without_zrtp_is_refused(lan2: Lan, tmp_path: Path) -> None:
    a, b = lan2.hosts
    tone = write_tone_wav(tmp_path / "plain660.wav", 660, 60, rate=48000)
    plain = Baresip(
        b,
        "plain",
        "unused",
        registrar=f"sip:{b.ip}",
        media_enc=None,
        transport="udp",
        register=False,
        audio_wav=tone,
        workdir=tmp_path / "baresip",
        extra_config={"sip_listen": f"{b.ip}:5060"},
    )
    alice = ZcallPeer(a, tmp_path / "alice", name="alice", audio_in="tone:440")
    with capture(a, tmp_path / "plain.pcap") as pcap, alice:
        plain.start()
        try:
            alice.wait_event("ready")
            alice.ctl("call", f"sip:plain@{b.ip}:5060")
            plain.wait_event("CALL_INCOMING", timeout=10)
            plain.answer()
            ended = alice.wait_event("ended", timeout=30)
            assert ended["reason"] == "peer does not support ZRTP"
            assert not [e for e in alice.events if e["event"] == "secure"]
        finally:
            plain.quit()
    report = media_report(pcap)
    assert report.zrtp > 0, "zcall offered ZRTP"
    ours = [key for key in report.streams if key[0] == a.ip]
    assert not ours, f"zcall sent RTP before any key agreement: {ours}"
