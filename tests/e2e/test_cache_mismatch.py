"""A retained secret that no longer matches is loud: an alert on both sides, the call muted (the default)
until the users say the words match, then the new secret is kept and marked verified; or, with
on_mismatch = hangup, the call ends at once."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.support.audio_check import read_wav, rms_dbfs
from tests.support.netns import Lan
from tests.support.zcall_peer import ZcallPeer
from zcall.paths import Paths
from zcall.zrtp.cache import ZrtpCache

pytestmark = [pytest.mark.netns, pytest.mark.timeout(120)]


def _first_call(alice: ZcallPeer, bob: ZcallPeer) -> str:
    alice.ctl("call", "bob")
    secure = alice.wait_event("secure")
    bob.wait_event("secure")
    alice.ctl("hangup")
    alice.wait_event("ended")
    bob.wait_event("ended")
    return str(secure["peer_zid"])


def _tamper(home: Path, peer_zid: str) -> None:
    """Replace the peer's rs1 in this home's cache, as a man in the middle of an earlier call would have."""
    with ZrtpCache(Paths.resolve(home).cache_file) as cache:
        cache.store_new_rs1(bytes.fromhex(peer_zid), os.urandom(32), 0xFFFFFFFF, time.time())
        cache.store_new_rs1(bytes.fromhex(peer_zid), os.urandom(32), 0xFFFFFFFF, time.time())


def test_mismatch_hangs_up_when_asked_to(lan2: Lan, tmp_path: Path) -> None:
    hangup = ["--on-mismatch", "hangup"]
    alice = ZcallPeer(lan2[0], tmp_path / "alice", name="alice", extra=hangup)
    bob = ZcallPeer(lan2[1], tmp_path / "bob", name="bob", auto_answer=True, extra=hangup)
    with alice, bob:
        alice.wait_event("peer", action="up", name="bob", timeout=10)
        bob_zid = _first_call(alice, bob)
        _tamper(tmp_path / "alice", bob_zid)
        alice.ctl("call", "bob")
        for side in (alice, bob):
            alert = side.wait_event("alert")
            assert alert["kind"] == "cache_mismatch"
            secure = side.wait_event("secure")
            assert secure["cache"] == "mismatch" and secure["verified"] is False
            assert side.wait_event("ended")["reason"] == "cache mismatch"


def test_mismatch_stays_muted_until_verified_by_default(lan2: Lan, tmp_path: Path) -> None:
    heard = tmp_path / "heard_by_bob.wav"
    alice = ZcallPeer(lan2[0], tmp_path / "alice", name="alice", audio_in="tone:440")
    bob = ZcallPeer(lan2[1], tmp_path / "bob", name="bob", auto_answer=True, audio_out=f"file:{heard}")
    with alice, bob:
        alice.wait_event("peer", action="up", name="bob", timeout=10)
        bob_zid = _first_call(alice, bob)
        _tamper(tmp_path / "alice", bob_zid)
        alice.ctl("call", "bob")
        assert alice.wait_event("alert")["kind"] == "cache_mismatch"
        assert alice.wait_event("secure")["cache"] == "mismatch"
        bob.wait_event("secure")
        time.sleep(2.0)  # two seconds of a muted call
        alice.ctl("verify")  # the users read their words and they match
        bob.ctl("verify")
        time.sleep(2.0)
        alice.ctl("hangup")
        alice.wait_event("ended")
        bob.wait_event("ended")
    samples, rate = read_wav(heard)
    muted, live = samples[rate // 2 : int(rate * 1.5)], samples[-rate:]
    assert rms_dbfs(muted) < -60, "nothing of alice is heard before the words are confirmed"
    assert rms_dbfs(live) > -30, "alice is heard once both confirmed"
    with ZrtpCache(Paths.resolve(tmp_path / "alice").cache_file) as cache:
        assert {p.zid.hex(): p.verified for p in cache.peers()}[bob_zid] is True
