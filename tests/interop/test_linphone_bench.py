"""The linphonec bench works: two linphonecs in namespaces complete ZRTP calls, agree on the SAS, carry audio
both ways, honour the configured key agreement and SAS type, and remember a verified SAS across calls.

This proves the independent peer that zcall is later tested against, so every claim is checked end to end.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest

from tests.support.audio_check import dominant_frequency, read_wav, rms_dbfs, write_tone_wav
from tests.support.linphone import Linphonec, LinphonecFactory, LinphoneError
from tests.support.netns import Lan

pytestmark = [pytest.mark.netns, pytest.mark.interop, pytest.mark.timeout(60)]

B32_SAS = r"^[a-z0-9]{4}$"
B256_SAS = r"^[A-Za-z]+:[A-Za-z]+$"


def heard(path: Path) -> tuple[float, float, float]:
    """(seconds of sound, its dominant frequency, its level in dBFS) of a recording, silent ends dropped.

    linphonec's recording starts with the call's media, so it opens with silence until secure audio arrives.
    """
    samples, rate = read_wav(path)
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > 1000)
    if loud.size == 0:
        return 0.0, 0.0, float("-inf")
    sound = samples[loud[0] : loud[-1] + 1]
    return sound.size / rate, dominant_frequency(sound, rate), rms_dbfs(sound)


def test_zrtp_call_same_sas_and_audio_both_ways(lan2: Lan, tmp_path: Path) -> None:
    # 16 kHz input: linphonec's file player resamples to the codec's rate (Opus, 48 kHz).
    tone_a = write_tone_wav(tmp_path / "a440.wav", 440, 20, rate=16000)
    tone_b = write_tone_wav(tmp_path / "b660.wav", 660, 20, rate=16000)
    rec_a, rec_b = tmp_path / "rec_a.wav", tmp_path / "rec_b.wav"
    with (
        Linphonec(lan2[0], tmp_path / "a", user="alice", play_wav=tone_a, record_wav=rec_a) as a,
        Linphonec(lan2[1], tmp_path / "b", user="bob", play_wav=tone_b, record_wav=rec_b) as b,
    ):
        since_b = b.mark()
        a.call(b.uri)
        sas_a, sas_b = a.wait_for_sas(), b.wait_for_sas(since=since_b)
        assert sas_a == sas_b
        assert a.sas() == b.sas() == sas_a
        # wait_for_sas() also waited for the log, so its reports are there at once: nothing verified yet.
        assert a.verified() is False and b.verified() is False
        negotiated = a.negotiated()
        assert negotiated is not None and negotiated == b.negotiated()
        token_a, token_b = a.wait_for_secure(), b.wait_for_secure(since=since_b)
        assert token_a.sas == token_b.sas == sas_a
        # Debian's default Hello: DH3k first, B32 SAS.
        assert (negotiated.key_agreement, negotiated.sas_type, negotiated.hash) == ("DH3k", "B32", "S256")
        assert a.zid() is not None and b.zid() is not None and a.zid() != b.zid()
        time.sleep(3.0)  # secure audio flows both ways
        a.terminate()
        b.wait_for_end(since=since_b)
    assert re.match(B32_SAS, sas_a)
    seconds_a, hz_a, dbfs_a = heard(rec_a)
    seconds_b, hz_b, dbfs_b = heard(rec_b)
    assert seconds_a > 2.0 and seconds_b > 2.0
    assert dbfs_a > -20 and dbfs_b > -20  # the tones are -9 dBFS; a broken path is silence or noise
    assert abs(hz_a - 660) < 10, f"A heard {hz_a:.0f} Hz, expected B's 660 Hz"
    assert abs(hz_b - 440) < 10, f"B heard {hz_b:.0f} Hz, expected A's 440 Hz"


def test_suites_manual_answer_verified_sas_remembered_and_cache_mismatch(
    lan2: Lan, linphonec: LinphonecFactory
) -> None:
    suites = {"key_agreements": ["X255"], "sas_types": ["B256"], "ciphers": ["AES3"], "hashes": ["S384"]}
    a = linphonec(lan2[0], "a", user="alice", display_name="Alice Liddell", rtp_port=(20000, 20010), **suites)
    b = linphonec(lan2[1], "b", user="bob", auto_answer=False, **suites)

    # First call: B answers by hand; both see the same B256 words and a new, unverified peer.
    a.call(b.uri)
    b.answer()
    b.wait_for(r'Receiving new incoming call from "Alice Liddell" <sip:alice@')
    sas_1 = a.wait_for_sas()
    assert b.wait_for_sas() == sas_1 and re.match(B256_SAS, sas_1)
    assert a.wait_for_secure().verified is False and b.wait_for_secure().verified is False
    negotiated = a.negotiated()
    assert negotiated is not None and negotiated == b.negotiated()
    assert (negotiated.key_agreement, negotiated.sas_type, negotiated.cipher, negotiated.hash) == (
        "X255", "B256", "AES3", "S384",
    )
    offer = a.wait_for(r"^m=audio (\d+) RTP/", source="log")  # A's INVITE is the first SDP in its log
    assert 20000 <= int(offer.group(1)) <= 20010  # a known range, for capture filters
    a.set_sas_verified()
    b.set_sas_verified()
    # The cache holds the flag at once, keyed by the other side's ZID; retained secrets exist after one call.
    peers_a, peers_b = a.cache_peers(), b.cache_peers()
    assert [(p.zid, p.verified, p.has_rs1) for p in peers_a] == [(b.zid(), True, True)]
    assert [(p.zid, p.verified, p.has_rs1) for p in peers_b] == [(a.zid(), True, True)]
    since_a = a.mark()
    b.terminate()
    assert a.wait_for_end(since=since_a) == "No error"

    # Second call: both report the SAS as previously verified; a fresh SAS, still equal on both sides.
    a.call(b.uri)
    b.answer()
    sas_2 = a.wait_for_sas()
    assert b.wait_for_sas() == sas_2
    token_a, token_b = a.wait_for_secure(), b.wait_for_secure()
    assert token_a.verified and token_b.verified
    assert a.verified() is True and b.verified() is True
    assert a.previously_verified() is True and b.previously_verified() is True
    assert not a.cache_mismatch() and not b.cache_mismatch()
    since_b = b.mark()
    a.terminate()
    b.wait_for_end(since=since_b)

    # Third call: B's retained secret for A no longer matches A's. Both detect it, agree on a fresh SAS, and
    # drop the verified flag: this is what zcall must show as a cache mismatch against linphonec.
    zid_a = a.zid()
    assert zid_a is not None
    b.corrupt_retained_secrets(zid_a)
    since_b = b.mark()
    a.call(b.uri)
    b.answer()
    assert a.wait_for_sas() == b.wait_for_sas(since=since_b)
    assert a.wait_for_secure().verified is False and b.wait_for_secure().verified is False
    assert a.cache_mismatch() and b.cache_mismatch()
    assert [p.verified for p in a.cache_peers()] == [p.verified for p in b.cache_peers()] == [False]
    a.terminate()


def test_fixture_fails_fast_and_points_at_the_log(lan2: Lan, linphonec: LinphonecFactory) -> None:
    with pytest.raises(ValueError, match="not offered"):
        linphonec(lan2[0], "bad", key_agreements=["EC38"])  # rejected before any process starts
    with pytest.raises(LinphoneError, match="does not exist"):
        linphonec(lan2[0], "nowav", play_wav=Path("/nonexistent/tone.wav"))
    a = linphonec(lan2[0], "a")
    start = time.monotonic()
    with pytest.raises(LinphoneError, match=r"within 0\.3 s") as timed_out:
        a.wait_for(r"no such line", 0.3)
    assert str(a.log_path) in str(timed_out.value)
    a.command("quit")
    with pytest.raises(LinphoneError, match="exited"):
        a.wait_for(r"no such line", 30)
    assert time.monotonic() - start < 10  # the exit is noticed at once, not after the 30 s timeout
    assert a.stop() == 0 and a.stop() == 0  # stopping twice is harmless


def test_sip_over_tcp(lan2: Lan, linphonec: LinphonecFactory) -> None:
    a = linphonec(lan2[0], "a", transport="tcp", sip_port=5070)
    b = linphonec(lan2[1], "b", transport="tcp")
    listening = lan2[1].run(["ss", "-Htln", "sport", "= :5060"]).stdout
    assert lan2[1].ip in listening  # SIP on TCP, bound to the LAN address
    since_b = b.mark()
    a.call(b.uri)
    assert a.wait_for_sas() == b.wait_for_sas(since=since_b)
    since_a = a.mark()
    b.terminate()
    assert a.wait_for_end(since=since_a) == "No error"
