"""zcall against Belledonne's linphonec (bzrtp): an independent ZRTP implementation agrees on the wire.

By direct SIP URI, both directions: ZRTP secure on both ends, the SAS zcall emits equals the one linphonec
prints, tones cross both ways. Once with linphonec's defaults (DH3k, B32) and once with X255 and B256 on it.
Then both sides mark the SAS verified, and the next call on the kept caches is "previously verified" on both.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.audio_check import tone_heard, write_tone_wav
from tests.support.capture import capture, media_report
from tests.support.linphone import Linphonec
from tests.support.netns import Lan
from tests.support.zcall_peer import ZcallPeer

pytestmark = [pytest.mark.netns, pytest.mark.interop, pytest.mark.timeout(150)]


def same_sas(zcall_secure: dict[str, object], linphone_sas: str) -> bool:
    """linphonec prints B32 as 'abcd' and B256 as 'Word:word'; zcall gives the words in `sas_words`."""
    words = [str(w).lower() for w in zcall_secure["sas_words"]]  # type: ignore[attr-defined]
    return words == [w.lower() for w in linphone_sas.split(":")]


@pytest.mark.parametrize(
    ("suites", "expect"),
    [
        ({}, ("DH3k", "B32")),
        ({"key_agreements": ["X255", "DH3k"], "sas_types": ["B256", "B32"]}, ("X255", "B256")),
    ],
    ids=["linphone-defaults", "x255-b256"],
)
@pytest.mark.parametrize("direction", ["zcall-calls", "linphonec-calls"])
def test_secure_call_with_linphonec(
    lan2: Lan, tmp_path: Path, suites: dict[str, list[str]], expect: tuple[str, str], direction: str
) -> None:
    lp_tone = write_tone_wav(tmp_path / "lp660.wav", 660, 30, rate=16000)
    zc_heard, lp_heard = tmp_path / "zcall_heard.wav", tmp_path / "linphone_heard.wav"
    zcall = ZcallPeer(
        lan2[0], tmp_path / "zcall", name="desk", audio_in="tone:440", audio_out=f"file:{zc_heard}",
        auto_answer=True,
    )
    linphone = Linphonec(
        lan2[1], tmp_path / "linphone", user="bob", play_wav=lp_tone, record_wav=lp_heard,
        auto_answer=True, rtp_port=7078, **suites,  # type: ignore[arg-type]
    )
    with capture(lan2[0], tmp_path / "call.pcap") as pcap, zcall, linphone:
        ready = zcall.wait_event("ready")
        since = linphone.mark()
        if direction == "zcall-calls":
            zcall.ctl("call", linphone.uri)
        else:
            linphone.call(ready["sip_uri"])
        secure = zcall.wait_event("secure", timeout=30)
        lp_sas = linphone.wait_for_sas(timeout=30, since=since)
        assert secure["method"] == "zrtp"
        assert same_sas(secure, lp_sas), (secure["sas_words"], lp_sas)
        assert (secure["key_agreement"], secure["sas_type"]) == expect
        negotiated = linphone.negotiated()
        assert negotiated is not None
        assert (negotiated.key_agreement, negotiated.sas_type) == expect
        assert secure["cache"] == "new"
        zcall.wait_event("stats", timeout=10)  # five seconds of audio both ways
        zcall.ctl("hangup")
        zcall.wait_event("ended", timeout=5)
        linphone.wait_for_end(timeout=10, since=since)
    report = media_report(pcap)
    assert report.zrtp > 0 and report.rtp_like > 200
    assert report.plain_streams() == [], "plain RTP on the wire"
    assert abs(tone_heard(lp_heard) - 440) < 5, "linphonec hears zcall's 440 Hz"
    assert abs(tone_heard(zc_heard) - 660) < 5, "zcall hears linphonec's 660 Hz"


def test_verified_on_both_sides_is_remembered(lan2: Lan, tmp_path: Path) -> None:
    zcall = ZcallPeer(lan2[0], tmp_path / "zcall", name="desk", auto_answer=True)
    linphone = Linphonec(
        lan2[1], tmp_path / "linphone", user="bob", auto_answer=True,
        key_agreements=["X255", "DH3k"], sas_types=["B256", "B32"],
    )
    with zcall, linphone:
        zcall.wait_event("ready")
        since = linphone.mark()
        zcall.ctl("call", linphone.uri)
        first = zcall.wait_event("secure", timeout=30)
        assert same_sas(first, linphone.wait_for_sas(timeout=30, since=since))
        # Both users read the words and find them equal.
        zcall.ctl("verify")
        linphone.set_sas_verified()
        zcall.ctl("hangup")
        zcall.wait_event("ended", timeout=5)
        linphone.wait_for_end(timeout=10, since=since)

        since = linphone.mark()
        zcall.ctl("call", linphone.uri)
        second = zcall.wait_event("secure", timeout=30)
        assert same_sas(second, linphone.wait_for_sas(timeout=30, since=since))
        linphone.wait_for_secure(timeout=10, since=since)
        assert second["cache"] == "match"
        assert second["verified"] is True
        assert linphone.previously_verified() is True
        zcall.ctl("hangup")
        zcall.wait_event("ended", timeout=5)


def test_linphonec_puts_zcall_on_hold_and_back(lan2: Lan, tmp_path: Path) -> None:
    """linphonec's pause/resume are re-INVITEs (sendonly, then sendrecv): answered on the same keys."""
    zcall = ZcallPeer(lan2[0], tmp_path / "zcall", name="desk", audio_in="tone:440", auto_answer=True)
    lp_heard = tmp_path / "linphone_heard.wav"
    linphone = Linphonec(lan2[1], tmp_path / "linphone", user="bob", auto_answer=True, record_wav=lp_heard)
    with zcall, linphone:
        zcall.wait_event("ready")
        since = linphone.mark()
        zcall.ctl("call", linphone.uri)
        zcall.wait_event("secure", timeout=30)
        linphone.wait_for_sas(timeout=30, since=since)
        linphone.command("pause")
        linphone.wait_for(r"is now paused\.", since=since)
        linphone.command("resume")
        linphone.wait_for(r"Resuming call", since=since)
        zcall.wait_event("stats", timeout=10)
        assert not [e for e in zcall.events if e["event"] == "ended"]
        zcall.ctl("hangup")
        zcall.wait_event("ended", timeout=5)
        linphone.wait_for_end(timeout=10, since=since)
    assert abs(tone_heard(lp_heard) - 440) < 5, "audio flows again after the resume"
