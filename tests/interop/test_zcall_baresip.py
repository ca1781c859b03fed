"""zcall against baresip (libre/librem's DTLS-SRTP): baresip calls zcall by SIP URI, DTLS-SRTP keys the media
(fingerprints pinned from the SDP), Opus flows both ways, and the capture shows DTLS then only SRTP."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.audio_check import tone_heard, write_tone_wav
from tests.support.baresip import Baresip
from tests.support.capture import capture, media_report, use_srtp_hellos
from tests.support.netns import Lan
from tests.support.zcall_peer import ZcallPeer

pytestmark = [pytest.mark.netns, pytest.mark.interop, pytest.mark.timeout(120)]


def test_baresip_calls_zcall_with_dtls_srtp(lan2: Lan, tmp_path: Path) -> None:
    a, b = lan2.hosts
    zc_heard, bs_heard = tmp_path / "zcall_heard.wav", tmp_path / "baresip_heard.wav"
    tone = write_tone_wav(tmp_path / "bs660.wav", 660, 60, rate=48000)
    zcall = ZcallPeer(a, tmp_path / "zcall", name="desk", audio_in="tone:440", audio_out=f"file:{zc_heard}",
                      auto_answer=True)  # fmt: skip
    bare = Baresip(
        b, "carol", "unused", registrar=f"sip:{b.ip}", media_enc="dtls_srtp", transport="udp", register=False,
        audio_wav=tone, record_wav=bs_heard, workdir=tmp_path / "baresip",
    )  # fmt: skip
    with capture(a, tmp_path / "dtls.pcap") as pcap, zcall:
        bare.start()
        try:
            ready = zcall.wait_event("ready")
            bare.dial(ready["sip_uri"])
            secure = zcall.wait_event("secure", timeout=20)
            assert secure["method"] == "dtls-srtp"
            assert secure["fingerprint_ok"] is True
            bare.wait_event("CALL_MENC", timeout=20)  # baresip agrees DTLS-SRTP is up
            zcall.wait_event("stats", timeout=10)
            zcall.ctl("hangup")
            zcall.wait_event("ended", timeout=5)
            bare.wait_event("CALL_CLOSED", timeout=10)
        finally:
            bare.quit()
    report = media_report(pcap)
    assert report.dtls > 0 and report.zrtp == 0
    assert use_srtp_hellos(pcap) >= 2, "ClientHello and ServerHello negotiate use_srtp"
    assert report.plain_streams() == [], "plain RTP on the wire"
    assert abs(tone_heard(bs_heard) - 440) < 10, "baresip hears zcall's 440 Hz"
    assert abs(tone_heard(zc_heard) - 660) < 10, "zcall hears baresip's 660 Hz"


def test_rewritten_fingerprint_stops_the_call(lan2: Lan, tmp_path: Path) -> None:
    """baresip -> hop (rewrites a=fingerprint) -> zcall: the DTLS peer is not the one the SDP named."""
    a, b = lan2.hosts
    hop = b.popen(
        [sys.executable, "-m", "tests.support.sip_hop", "--listen", f"{b.ip}:5070", "--to", f"{a.ip}:5060"],
        stdout=subprocess.PIPE, text=True, cwd=str(Path(__file__).resolve().parents[2]),
    )  # fmt: skip
    tone = write_tone_wav(tmp_path / "bs660.wav", 660, 60, rate=48000)
    zcall = ZcallPeer(a, tmp_path / "zcall", name="desk", audio_in="tone:440", auto_answer=True)
    bare = Baresip(
        b, "carol", "unused", registrar=f"sip:{b.ip}", media_enc="dtls_srtp", transport="udp", register=False,
        audio_wav=tone, workdir=tmp_path / "baresip",
    )  # fmt: skip
    try:
        assert hop.stdout is not None and hop.stdout.readline().strip() == "ready"
        with capture(a, tmp_path / "forged.pcap") as pcap, zcall:
            bare.start()
            try:
                zcall.wait_event("ready")
                bare.dial(f"sip:zcall@{b.ip}:5070")
                alert = zcall.wait_event("alert", timeout=20)
                assert alert["kind"] == "fingerprint_mismatch"
                ended = zcall.wait_event("ended", timeout=10)
                assert ended["reason"] == "dtls fingerprint mismatch"
                assert not [e for e in zcall.events if e["event"] == "secure"]
            finally:
                bare.quit()
    finally:
        hop.kill()
        hop.wait(5)
    report = media_report(pcap)
    ours = [key for key in report.streams if key[0] == a.ip]
    assert not ours, "zcall sent no media to a peer whose certificate did not match"
