"""The session's cache states driven through the real sqlite ZrtpCache, as the engine will use it."""

from __future__ import annotations

from pathlib import Path

from tests.unit.zrtp.harness import run_pair
from zcall.zrtp.cache import ZrtpCache
from zcall.zrtp.events import CacheMismatch, SecureReady
from zcall.zrtp.session import ZrtpSession

ZID_A, ZID_B = bytes([0xA]) * 12, bytes([0xB]) * 12


def _call(cache_a: ZrtpCache, cache_b: ZrtpCache, now: float, expiry: int = 0xFFFFFFFF) -> list[SecureReady]:
    # Each owner reads its cache before the exchange and hands in the secrets of the peer it expects.
    a = ZrtpSession(ZID_A, "initiator", ssrc=1, cache_expiry=expiry)
    a.provide_secrets(ZID_B, cache_a.lookup(ZID_B, now), now)
    b = ZrtpSession(ZID_B, ssrc=2, cache_expiry=expiry)
    b.provide_secrets(ZID_A, cache_b.lookup(ZID_A, now), now)
    run = run_pair(a, b)
    out = []
    for side, cache, peer in (("a", cache_a, ZID_B), ("b", cache_b, ZID_A)):
        ready = [e for e in run.events[side] if isinstance(e, SecureReady)]
        assert len(ready) == 1
        event = ready[0]
        if (
            event.cache != "mismatch" and event.new_rs1 is not None
        ):  # the engine's rule: store unless mismatch
            cache.store_new_rs1(peer, event.new_rs1, event.rs1_expires_in, now)
        if any(isinstance(e, CacheMismatch) for e in run.events[side]):
            assert event.cache == "mismatch"
        out.append(event)
    return out


def test_new_match_and_expiry_through_the_real_cache(tmp_path: Path) -> None:
    with ZrtpCache(tmp_path / "a.sqlite") as ca, ZrtpCache(tmp_path / "b.sqlite") as cb:
        first = _call(ca, cb, now=1000.0, expiry=3600)
        assert [e.cache for e in first] == ["new", "new"] and first[0].rs1_expires_in == 3600
        second = _call(ca, cb, now=2000.0, expiry=3600)
        assert [e.cache for e in second] == ["match", "match"]
        # After the stored rs1 and rs2 expired, the cache holds nothing live: a fresh start, not a mismatch.
        third = _call(ca, cb, now=1_000_000.0)
        assert [e.cache for e in third] == ["new", "new"]
        fourth = _call(ca, cb, now=1_000_100.0)
        assert [e.cache for e in fourth] == ["match", "match"]


def test_one_side_lost_its_cache_is_a_mismatch_on_the_other(tmp_path: Path) -> None:
    with ZrtpCache(tmp_path / "a.sqlite") as ca, ZrtpCache(tmp_path / "b.sqlite") as cb:
        _call(ca, cb, now=10.0)
        cb.forget(ZID_A)
        events = _call(ca, cb, now=20.0)
        assert [e.cache for e in events] == ["mismatch", "new"]
