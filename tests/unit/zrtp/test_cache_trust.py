"""What the verified flag and the stored secrets mean over time (issue 12): expiry ends verified, expiry 0
keeps nothing, words that differ roll the call's secret back, and names from the network rename nothing."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from zcall.zrtp.cache import NEVER_EXPIRES, ZrtpCache

ALICE = bytes.fromhex("a1" * 12)
T0 = 1_800_000_000.0


@pytest.fixture
def cache(tmp_path: pathlib.Path) -> Iterator[ZrtpCache]:
    with ZrtpCache(tmp_path / "cache.sqlite") as c:
        yield c


def rs(n: int) -> bytes:
    return bytes([n]) * 32


def test_a_new_chain_after_expiry_is_not_verified(cache: ZrtpCache) -> None:
    cache.store_new_rs1(ALICE, rs(1), 3600, T0)
    cache.set_verified(ALICE, True)
    later = T0 + 7200  # rs1 expired; the next exchange is a first contact again
    assert cache.lookup(ALICE, later) is not None and not cache.lookup(ALICE, later).verified  # type: ignore[union-attr]
    cache.store_new_rs1(ALICE, rs(2), 3600, later)
    got = cache.lookup(ALICE, later + 1)
    assert got is not None and got.rs1 == rs(2) and not got.verified


def test_a_live_chain_keeps_verified(cache: ZrtpCache) -> None:
    cache.store_new_rs1(ALICE, rs(1), NEVER_EXPIRES, T0)
    cache.set_verified(ALICE, True)
    cache.store_new_rs1(ALICE, rs(2), NEVER_EXPIRES, T0 + 10)
    got = cache.lookup(ALICE, T0 + 11)
    assert got is not None and got.verified


def test_expiry_zero_discards_and_unverifies(cache: ZrtpCache) -> None:
    cache.store_new_rs1(ALICE, rs(1), NEVER_EXPIRES, T0)
    cache.set_verified(ALICE, True)
    cache.store_new_rs1(ALICE, rs(2), 0, T0 + 1)
    got = cache.lookup(ALICE, T0 + 2)
    assert got is not None and (got.rs1, got.rs2, got.verified) == (None, None, False)


def test_rollback_restores_the_secrets_before_the_call_and_unverifies(cache: ZrtpCache) -> None:
    cache.store_new_rs1(ALICE, rs(1), NEVER_EXPIRES, T0)
    cache.store_new_rs1(ALICE, rs(2), 3600, T0 + 1)
    cache.set_verified(ALICE, True)
    before = cache.store_new_rs1(ALICE, rs(3), NEVER_EXPIRES, T0 + 2)  # this call's secret
    assert "03" * 32 not in repr(before) and str(rs(3)) not in repr(before)
    cache.rollback(before)
    got = cache.lookup(ALICE, T0 + 3)
    assert got is not None and (got.rs1, got.rs2, got.verified) == (rs(2), rs(1), False)
    assert got.rs1_expires_at == T0 + 1 + 3600


def test_rollback_of_a_first_contact_leaves_no_secret(cache: ZrtpCache) -> None:
    before = cache.store_new_rs1(ALICE, rs(1), NEVER_EXPIRES, T0)
    cache.rollback(before)
    got = cache.lookup(ALICE, T0 + 1)
    assert got is not None and (got.rs1, got.rs2, got.verified) == (None, None, False)


def test_rollback_keeps_a_newer_exchange_but_still_unverifies(cache: ZrtpCache) -> None:
    before = cache.store_new_rs1(ALICE, rs(1), NEVER_EXPIRES, T0)
    cache.store_new_rs1(ALICE, rs(2), NEVER_EXPIRES, T0 + 1)  # another call since
    cache.set_verified(ALICE, True)
    cache.rollback(before)
    got = cache.lookup(ALICE, T0 + 2)
    assert got is not None and (got.rs1, got.rs2, got.verified) == (rs(2), rs(1), False)


def test_network_names_never_rename(cache: ZrtpCache) -> None:
    cache.touch(ALICE, T0, name="alice desk")
    cache.touch(ALICE, T0 + 1, name="Bob")  # what an impostor's SIP display name would say
    assert [p.name for p in cache.peers()] == ["alice desk"]
    cache.set_name(ALICE, "Alice (office)")  # the user renames
    assert [p.name for p in cache.peers()] == ["Alice (office)"]


def test_peers_report_live_secrets_only_with_now(cache: ZrtpCache) -> None:
    cache.store_new_rs1(ALICE, rs(1), 60, T0)
    cache.set_verified(ALICE, True)
    (fresh,) = cache.peers(T0 + 1)
    assert fresh.has_secret and fresh.verified
    (stale,) = cache.peers(T0 + 61)
    assert not stale.has_secret and not stale.verified
