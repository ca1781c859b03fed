"""Two desk units on a LAN, as users run them: `zcall --headless` in two namespaces with fresh homes.

A sees B by mDNS, calls B by name, B answers; both show the same SAS words; tones cross both ways; the
cache says "new", then "match"; after `zcall trust verify` on both, the next call is verified on both; a
hangup on either side ends both within a second.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.audio_check import dominant_frequency, read_wav
from tests.support.capture import capture, media_report
from tests.support.netns import Lan
from tests.support.zcall_peer import ZcallPeer

pytestmark = [pytest.mark.netns, pytest.mark.timeout(120)]


def tone_of(path: Path) -> float:
    samples, rate = read_wav(path)
    assert samples.size > rate, f"{path} holds less than a second"
    return dominant_frequency(samples[rate // 2 :], rate)  # skip the first jitter-buffer fill


def call_once(
    caller: ZcallPeer, callee: ZcallPeer, hangup_by: ZcallPeer
) -> tuple[dict[str, Any], dict[str, Any]]:
    call_id = caller.ctl("call", "bob")["id"]
    assert call_id
    secure_a = caller.wait_event("secure")
    secure_b = callee.wait_event("secure")
    assert secure_a["method"] == secure_b["method"] == "zrtp"
    assert secure_a["sas_words"] == secure_b["sas_words"]
    assert secure_a["sas"] == secure_b["sas"]
    assert secure_a["peer_zid"] != secure_b["peer_zid"]
    caller.wait_event("stats", timeout=10)  # audio has flowed for a while (stats come every 5 s)
    hangup_by.ctl("hangup")
    ended_a = caller.wait_event("ended", timeout=5)
    ended_b = callee.wait_event("ended", timeout=5)
    assert abs(ended_a["_t"] - ended_b["_t"]) < 1.0
    return secure_a, secure_b


def test_lan_call_sas_audio_cache_and_trust(lan2: Lan, tmp_path: Path) -> None:
    rec_a, rec_b = tmp_path / "heard_by_alice.wav", tmp_path / "heard_by_bob.wav"
    alice = ZcallPeer(
        lan2[0], tmp_path / "alice", name="alice", audio_in="tone:440", audio_out=f"file:{rec_a}"
    )
    bob = ZcallPeer(
        lan2[1],
        tmp_path / "bob",
        name="bob",
        audio_in="tone:660",
        audio_out=f"file:{rec_b}",
        auto_answer=True,
    )
    with capture(lan2[0], tmp_path / "lan.pcap") as pcap, alice, bob:
        alice.wait_event("ready")
        ready_b = bob.wait_event("ready")
        seen = alice.wait_event("peer", action="up", name="bob", timeout=10)
        assert seen["_t"] - ready_b["_t"] < 3.0, "A must see B within 3 s of B announcing itself"
        assert seen["zid"] == ready_b["zid"]

        first_a, first_b = call_once(alice, bob, hangup_by=alice)
        assert first_a["cache"] == first_b["cache"] == "new"
        assert first_a["verified"] is False and first_b["verified"] is False
        assert abs(tone_of(rec_b) - 440) < 5, "bob hears alice's 440 Hz"
        assert abs(tone_of(rec_a) - 660) < 5, "alice hears bob's 660 Hz"

        second_a, second_b = call_once(alice, bob, hangup_by=bob)
        assert second_a["cache"] == second_b["cache"] == "match"
        assert second_a["sas"] != first_a["sas"]  # fresh keys every call

        assert alice.cli("trust", "verify", first_a["peer_zid"]).returncode == 0
        assert bob.cli("trust", "verify", first_b["peer_zid"]).returncode == 0
        third_a, third_b = call_once(alice, bob, hangup_by=alice)
        assert third_a["cache"] == third_b["cache"] == "match"
        assert third_a["verified"] is True and third_b["verified"] is True
    report = media_report(pcap)
    assert report.zrtp > 0 and report.rtp_like > 500, "three calls of ZRTP then SRTP"
    assert report.plain_streams() == [], "plain RTP on the wire"
    assert report.zrtp_streams and report.zrtp_streams <= set(report.streams), "ZRTP's SSRC: its RTP stream's"
    assert report.other == 0 and report.dtls == 0
