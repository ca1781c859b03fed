"""crypto.py against values computed here, independently, from the RFC 6189 formulas."""

from __future__ import annotations

import hashlib
import hmac
import os
import warnings

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from zcall.zrtp import crypto

ZIDI, ZIDR = bytes(range(12)), bytes(range(100, 112))


def _ref_kdf(hname: str, ki: bytes, label: bytes, context: bytes, bits: int) -> bytes:
    # §4.5.1: HMAC(KI, i || Label || 0x00 || Context || L), i = 1, L in bits, both 32-bit big-endian.
    data = (1).to_bytes(4, "big") + label + b"\x00" + context + bits.to_bytes(4, "big")
    return hmac.new(ki, data, hname).digest()[: bits // 8]


@pytest.mark.parametrize(("alg", "hname"), [("S256", "sha256"), ("S384", "sha384")])
def test_kdf_matches_formula(alg: str, hname: str) -> None:
    ki, ctx = os.urandom(48), ZIDI + ZIDR + os.urandom(32)
    for bits in (112, 128, 256):
        assert crypto.kdf(alg, ki, b"SAS", ctx, bits) == _ref_kdf(hname, ki, b"SAS", ctx, bits)
    # L is part of the input, so a shorter key is not a prefix of a longer one.
    assert crypto.kdf(alg, ki, b"x", ctx, 128) != crypto.kdf(alg, ki, b"x", ctx, 256)[:16]


@pytest.mark.parametrize(("alg", "hname"), [("S256", "sha256"), ("S384", "sha384")])
def test_s0_matches_formula(alg: str, hname: str) -> None:
    dh, th, rs1 = os.urandom(384), os.urandom(48), os.urandom(32)
    expected = hashlib.new(
        hname,
        b"\x00\x00\x00\x01"
        + dh
        + b"ZRTP-HMAC-KDF"
        + ZIDI
        + ZIDR
        + th
        + len(rs1).to_bytes(4, "big")
        + rs1
        + b"\x00" * 8,
    ).digest()
    assert crypto.s0(alg, dh, ZIDI, ZIDR, th, rs1) == expected
    empty = hashlib.new(hname, b"\x00\x00\x00\x01" + dh + b"ZRTP-HMAC-KDF" + ZIDI + ZIDR + th + bytes(12))
    assert crypto.s0(alg, dh, ZIDI, ZIDR, th) == empty.digest()


@pytest.mark.parametrize(
    ("alg", "hname", "cipher", "klen"),
    [("S256", "sha256", "AES1", 16), ("S384", "sha384", "AES3", 32), ("S256", "sha256", "AES3", 32)],
)
def test_derived_keys_match_formulas(alg: str, hname: str, cipher: str, klen: int) -> None:
    s0, th = os.urandom(crypto.HASH_LEN[alg]), os.urandom(crypto.HASH_LEN[alg])
    ctx = ZIDI + ZIDR + th
    keys = crypto.derive_keys(alg, cipher, s0, crypto.kdf_context(ZIDI, ZIDR, th))
    hbits = 8 * crypto.HASH_LEN[alg]

    def ref(label: str, bits: int) -> bytes:
        return _ref_kdf(hname, s0, label.encode(), ctx, bits)

    assert keys.srtp_key_i == ref("Initiator SRTP master key", 8 * klen) and len(keys.srtp_key_i) == klen
    assert keys.srtp_salt_i == ref("Initiator SRTP master salt", 112) and len(keys.srtp_salt_i) == 14
    assert keys.srtp_key_r == ref("Responder SRTP master key", 8 * klen)
    assert keys.srtp_salt_r == ref("Responder SRTP master salt", 112)
    assert keys.mac_key_i == ref("Initiator HMAC key", hbits)
    assert keys.mac_key_r == ref("Responder HMAC key", hbits)
    assert keys.zrtp_key_i == ref("Initiator ZRTP key", 8 * klen)
    assert keys.zrtp_key_r == ref("Responder ZRTP key", 8 * klen)
    assert keys.sas_hash == ref("SAS", 256)
    assert keys.zrtp_session == ref("ZRTP Session Key", hbits)
    assert keys.exported == ref("Exported key", hbits)
    assert keys.new_rs1 == ref("retained secret", 256)
    assert "<secret>" in repr(keys)


def test_hvi_total_hash_and_chain() -> None:
    dh2, hello, commit, dh1 = (os.urandom(n) for n in (116, 132, 116, 116))
    assert crypto.hvi("S384", dh2, hello) == hashlib.sha384(dh2 + hello).digest()[:32]
    assert (
        crypto.total_hash("S256", hello, commit, dh1, dh2)
        == hashlib.sha256(hello + commit + dh1 + dh2).digest()
    )
    chain = crypto.HashChain.generate()
    assert chain.h1 == hashlib.sha256(chain.h0).digest()
    assert chain.h3 == hashlib.sha256(hashlib.sha256(chain.h1).digest()).digest()
    msg = os.urandom(80)
    sealed = msg + hmac.new(chain.h2, msg, "sha256").digest()[:8]
    assert crypto.message_mac_ok(sealed, chain.h2) and not crypto.message_mac_ok(sealed, chain.h1)


def test_secret_ids() -> None:
    rs = os.urandom(32)
    assert crypto.secret_id("S256", rs, b"Initiator") == hmac.new(rs, b"Initiator", "sha256").digest()[:8]
    assert crypto.secret_id("S256", None, b"Initiator") != crypto.secret_id("S256", None, b"Initiator")


def test_cfb_round_trip_against_cryptography() -> None:
    from cryptography.hazmat.decrepit.ciphers.modes import CFB

    key, iv, data = os.urandom(32), os.urandom(16), os.urandom(40)
    enc = crypto.cfb_encrypt(key, iv, data)
    ref = Cipher(algorithms.AES(key), CFB(iv)).encryptor()
    assert enc == ref.update(data) + ref.finalize()
    assert crypto.cfb_decrypt(key, iv, enc) == data


@pytest.mark.parametrize("ka", crypto.KEY_AGREEMENTS)
def test_key_agreement_sizes_and_agreement(ka: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the FFDH deprecation warning must not leak out of crypto.py
        a, b = crypto.KeyPair(ka), crypto.KeyPair(ka)
        assert len(a.public) == crypto.PV_LEN[ka]
        shared = a.exchange(b.public)
        assert shared == b.exchange(a.public) and len(shared) == crypto.RESULT_LEN[ka]


@pytest.mark.parametrize("ka", ["DH3k", "DH2k"])
def test_ffdh_public_value_checks(ka: str) -> None:
    p, size = crypto.DH_PRIMES[ka], crypto.PV_LEN[ka]
    pair = crypto.KeyPair(ka)
    for bad in (0, 1, p - 1, p, p + 1):
        with pytest.raises(crypto.BadPublicValue):
            pair.exchange(bad.to_bytes(size, "big"))
    with pytest.raises(crypto.BadPublicValue):
        pair.exchange(b"\x02" * (size - 4))


def test_ec_and_x25519_public_value_checks() -> None:
    with pytest.raises(crypto.BadPublicValue):
        crypto.KeyPair("EC25").exchange(bytes(64))  # not on the curve
    good = crypto.KeyPair("EC25").public
    with pytest.raises(crypto.BadPublicValue):
        crypto.KeyPair("EC25").exchange(good[:32] + bytes(32))
    with pytest.raises(crypto.BadPublicValue):
        crypto.KeyPair("X255").exchange(bytes(32))  # low order: all-zero result
    with pytest.raises(crypto.BadPublicValue):
        crypto.KeyPair("X255").exchange(bytes(31))


def test_choose_key_agreement() -> None:
    # The RFC's example: intersecting first choices DH3k and EC25 -> EC25, the faster.
    assert crypto.choose_key_agreement(("DH2k", "DH3k", "EC25"), ("EC38", "EC25", "DH3k")) == "EC25"
    assert crypto.choose_key_agreement(("EC38", "EC25", "DH3k"), ("DH2k", "DH3k", "EC25")) == "EC25"
    assert crypto.choose_key_agreement(("X255", "DH3k"), ("DH3k", "X255")) == "X255"
    assert crypto.choose_key_agreement(("DH3k",), ("DH3k", "X255")) == "DH3k"
    assert crypto.choose_key_agreement(("X255",), ("DH3k",)) is None


def test_srtp_profiles() -> None:
    assert crypto.srtp_profile("AES1", "HS80") == "AES_CM_128_HMAC_SHA1_80"
    assert crypto.srtp_profile("AES1", "HS32") == "AES_CM_128_HMAC_SHA1_32"
    assert crypto.srtp_profile("AES3", "HS80") == "AES_256_CM_HMAC_SHA1_80"
    assert crypto.srtp_profile("AES3", "HS32") == "AES_256_CM_HMAC_SHA1_32"
