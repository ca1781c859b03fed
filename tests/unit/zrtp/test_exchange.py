"""exchange.py on its own: both sides of one DH exchange, built from real key pairs and hash chains."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from zcall.zrtp import crypto
from zcall.zrtp import messages as m
from zcall.zrtp.errors import Abort, Drop, ZrtpErrorCode
from zcall.zrtp.exchange import Exchange, SecretsView, mac_sealed
from zcall.zrtp.negotiation import Choice, Offer

ZIDI, ZIDR = bytes([1]) * 12, bytes([2]) * 12
CHOICE = Choice("S256", "AES1", "HS80", "X255", "B32")


@dataclass(frozen=True)
class Secrets:
    rs1: bytes | None = None
    rs2: bytes | None = None
    verified: bool = False


@dataclass
class Pair:
    i: Exchange
    r: Exchange
    hello_r: bytes


def _pair(
    choice: Choice = CHOICE, secrets_i: SecretsView | None = None, secrets_r: SecretsView | None = None,
    aux_i: bytes | None = None, aux_r: bytes | None = None,
) -> Pair:  # fmt: skip
    """Run the exchange both ways up to keys: Commit, DHPart1, DHPart2 as the session would."""
    chain_i, chain_r = crypto.HashChain.generate(), crypto.HashChain.generate()
    offer = Offer((choice.hash,), (choice.cipher,), (choice.auth,), (choice.key_agreement,), (choice.sas,))
    hello_r = mac_sealed(offer.hello("r", chain_r.h3, ZIDR).encode(), chain_r.h2)
    parsed_hello = m.parse_message(hello_r)
    assert isinstance(parsed_hello, m.Hello)
    i = Exchange(
        choice, True, crypto.KeyPair(choice.key_agreement), chain_i, secrets_i, zidi=ZIDI, zidr=ZIDR,
        peer_h3=chain_r.h3, aux_secret=aux_i,
    )  # fmt: skip
    commit = i.make_commit(parsed_hello)
    r = Exchange(
        choice,
        False,
        crypto.KeyPair(choice.key_agreement),
        chain_r,
        secrets_r,
        zidi=ZIDI,
        zidr=ZIDR,
        commit=commit,
        peer_h3=chain_i.h3,
        aux_secret=aux_r,
    )
    i.complete(r.own_dhpart, hello_r)
    r.complete(i.own_dhpart, hello_r)
    return Pair(i, r, hello_r)


def _confirm(raw: bytes) -> m.Confirm:
    parsed = m.parse_message(raw)
    assert isinstance(parsed, m.Confirm)
    return parsed


def test_messages_carry_the_chain_and_verify_as_sent() -> None:
    p = _pair()
    assert p.i.own_dhpart.part == 2 and p.r.own_dhpart.part == 1
    assert p.i.commit is not None and p.i.commit.h2 == p.i.chain.h2
    # Each message is MACed with the next-lower hash image, which the next message reveals (§9).
    assert crypto.message_mac_ok(p.i.commit.raw, p.i.chain.h1)
    assert crypto.message_mac_ok(p.i.own_dhpart.raw, p.i.chain.h0)
    assert crypto.message_mac_ok(p.r.own_dhpart.raw, p.r.chain.h0)
    assert p.i.commit.hvi == crypto.hvi("S256", p.i.own_dhpart.raw, p.hello_r)


@pytest.mark.parametrize("ka", ["X255", "DH3k", "EC25"])
def test_both_sides_derive_the_same_keys(ka: str) -> None:
    p = _pair(Choice("S256", "AES1", "HS80", ka, "B32"))
    assert p.i.keys is not None and p.r.keys is not None
    assert p.i.keys.srtp_key_i == p.r.keys.srtp_key_i and p.i.keys.sas_hash == p.r.keys.sas_hash
    assert p.i.keys.new_rs1 == p.r.keys.new_rs1 and p.i.cache == p.r.cache == "new"


def test_a_shared_auxiliary_secret_matches_and_goes_into_s0() -> None:
    aux = b"\x42" * 32
    p = _pair(aux_i=aux, aux_r=aux)
    assert p.i.aux == p.r.aux == "match"
    # §4.3.1: each side's auxsecretID is keyed by its own H3.
    assert p.i.own_dhpart.aux_id == crypto.mac64("S256", aux, p.i.chain.h3)
    assert p.r.own_dhpart.aux_id == crypto.mac64("S256", aux, p.r.chain.h3)
    assert p.i.keys is not None and p.r.keys is not None and p.i.keys.sas_hash == p.r.keys.sas_hash
    # s2 changed the keys: the same exchange without the secret would not give these.
    without = _pair()
    assert without.i.aux == "none" and without.i.keys is not None
    assert p.i.keys.sas_hash != without.i.keys.sas_hash


@pytest.mark.parametrize(("aux_i", "aux_r"), [(b"\x01" * 32, b"\x02" * 32), (b"\x01" * 32, None)])
def test_a_differing_auxiliary_secret_is_a_mismatch_left_out_of_s0(
    aux_i: bytes, aux_r: bytes | None
) -> None:
    p = _pair(aux_i=aux_i, aux_r=aux_r)
    assert p.i.aux == "mismatch"
    assert p.r.aux == ("mismatch" if aux_r is not None else "none")
    # Neither side uses it, so the exchange itself still agrees (and both sides can say why).
    assert p.i.keys is not None and p.r.keys is not None and p.i.keys.sas_hash == p.r.keys.sas_hash


def test_confirms_cross_and_secure_ready_mirrors_keys() -> None:
    p = _pair()
    c1 = m.parse_message(p.r.make_confirm(None, 3600))
    assert isinstance(c1, m.Confirm) and c1.part == 1
    p.i.accept_confirm(c1)
    c2 = m.parse_message(p.i.make_confirm(True, 0xFFFFFFFF))
    assert isinstance(c2, m.Confirm) and c2.part == 2
    p.r.accept_confirm(c2)
    assert p.i.peer_body is not None and not p.i.peer_body.sas_verified and p.i.peer_body.cache_expiry == 3600
    assert p.r.peer_body is not None and p.r.peer_body.sas_verified
    ready_i, ready_r = p.i.secure_ready(ZIDR, 0xFFFFFFFF), p.r.secure_ready(ZIDI, 3600)
    assert (ready_i.local_key, ready_i.local_salt) == (ready_r.remote_key, ready_r.remote_salt)
    assert (ready_i.remote_key, ready_i.remote_salt) == (ready_r.local_key, ready_r.local_salt)
    assert ready_i.sas_text == ready_r.sas_text and ready_i.srtp_profile == "AES_CM_128_HMAC_SHA1_80"
    assert ready_i.rs1_expires_in == 3600 and ready_r.rs1_expires_in == 3600  # the shorter expiry wins
    assert ready_i.is_initiator and not ready_r.is_initiator and ready_i.peer_zid == ZIDR


def test_zero_expiry_is_reported_for_the_cache_to_honour() -> None:
    # §4.9: expiry 0 is passed on (not hidden as "no new secret") so store_new_rs1 drops old secrets too.
    p = _pair()
    p.i.accept_confirm(_confirm(p.r.make_confirm(None, 0)))
    ready = p.i.secure_ready(ZIDR, 0xFFFFFFFF)
    assert ready.rs1_expires_in == 0 and ready.new_rs1 is not None


def test_tampered_confirm_mac_aborts_and_wrong_h0_is_dropped() -> None:
    p = _pair()
    c1 = m.parse_message(p.r.make_confirm(None, 0xFFFFFFFF))
    assert isinstance(c1, m.Confirm)
    flipped = m.Confirm(1, c1.confirm_mac, c1.iv, bytes([c1.encrypted[0] ^ 1]) + c1.encrypted[1:])
    with pytest.raises(Abort) as info:
        p.i.accept_confirm(flipped)
    assert info.value.code == ZrtpErrorCode.CONFIRM_MAC
    # A Confirm with valid keys but a foreign H0 does not close the responder's chain.
    p.r.chain = crypto.HashChain.generate()
    with pytest.raises(Drop, match="hash_chain"):
        p.i.accept_confirm(_confirm(p.r.make_confirm(None, 0xFFFFFFFF)))
    assert p.i.peer_body is None


def test_bad_public_value_aborts() -> None:
    p = _pair(Choice("S256", "AES1", "HS80", "DH3k", "B32"))
    one = m.DHPart(1, bytes(32), bytes(8), bytes(8), bytes(8), bytes(8), (1).to_bytes(384, "big"))
    with pytest.raises(Abort) as info:
        p.i.complete(one, p.hello_r)
    assert info.value.code == ZrtpErrorCode.BAD_PV


@pytest.mark.parametrize(
    ("mine", "theirs", "caches"),
    [
        (Secrets(rs1=b"a" * 32), Secrets(rs1=b"a" * 32), ("match", "match")),
        (Secrets(rs1=b"c" * 32, rs2=b"a" * 32), Secrets(rs1=b"a" * 32), ("match", "match")),
        (Secrets(rs1=b"a" * 32), Secrets(rs1=b"b" * 32), ("mismatch", "mismatch")),
        (Secrets(rs1=b"a" * 32), None, ("mismatch", "new")),
        (None, None, ("new", "new")),
    ],
)
def test_retained_secret_matching(
    mine: Secrets | None, theirs: Secrets | None, caches: tuple[str, str]
) -> None:
    p = _pair(secrets_i=mine, secrets_r=theirs)
    assert (p.i.cache, p.r.cache) == caches
    # Both sides walk the slots in one order, so they use the same secret (or none) and agree on keys.
    assert p.i.keys is not None and p.r.keys is not None and p.i.keys.sas_hash == p.r.keys.sas_hash


def test_confirm_v_flag_follows_the_cache_unless_overridden() -> None:
    verified = Secrets(rs1=b"a" * 32, verified=True)
    p = _pair(secrets_i=verified, secrets_r=verified)
    for override, expected in ((None, True), (False, False)):
        p.i.accept_confirm(_confirm(p.r.make_confirm(override, 0xFFFFFFFF)))
        assert p.i.peer_body is not None and p.i.peer_body.sas_verified is expected
    q = _pair(
        secrets_i=Secrets(rs1=b"a" * 32, verified=True), secrets_r=Secrets(rs1=b"b" * 32, verified=True)
    )
    q.i.accept_confirm(_confirm(q.r.make_confirm(None, 0xFFFFFFFF)))
    assert q.i.peer_body is not None and not q.i.peer_body.sas_verified  # mismatch: not vouched for
