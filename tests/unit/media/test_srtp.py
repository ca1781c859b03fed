"""SRTP/SRTCP through libsrtp, checked against session keys we derive ourselves (RFC 3711 §4.3, RFC 6188,
RFC 7714) with `cryptography`, and pinned by the RFC 3711 B.2/B.3 and RFC 6188 §7.2 vectors."""

from __future__ import annotations

import hashlib
import hmac
import struct
import threading

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from zcall.media.rtp import ReceiverReport, RtpPacket, serialize_rtcp_compound
from zcall.media.srtp import SrtpError, SrtpReceiver, SrtpSender
from zcall.media.srtpkeys import SrtpKeys, SrtpProfile, key_length, salt_length, tag_length

B3_KEY = bytes.fromhex("E1F97A0D3E018BE0D64FA32C06DE4139")
B3_SALT = bytes.fromhex("0EC675AD498AFEEBB6960B3AABE6")
RFC6188_KEY = bytes.fromhex("f0f04914b513f2763a1b1fa130f10e2998f6f6e43e4309d1e622a0e332b9f1b6")
RFC6188_SALT = bytes.fromhex("3b04803de51ee7c96423ab5b78d2")


# ----------------------------------------------------------------- an independent model of RFC 3711


def aes_cm_keystream(key: bytes, iv: bytes, length: int) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return encryptor.update(bytes(length)) + encryptor.finalize()


def kdf(master_key: bytes, master_salt: bytes, label: int, length: int) -> bytes:
    """RFC 3711 §4.3.1 with key_derivation_rate 0: x = (label << 48) XOR master_salt, IV = x * 2^16."""
    salt = int.from_bytes(master_salt.ljust(14, b"\x00"), "big")
    x = salt ^ (label << 48)
    return aes_cm_keystream(master_key, (x << 16).to_bytes(16, "big"), length)


def session_keys(
    master_key: bytes, master_salt: bytes, labels: tuple[int, int, int] = (0, 1, 2)
) -> tuple[bytes, bytes, bytes]:
    return (
        kdf(master_key, master_salt, labels[0], len(master_key)),
        kdf(master_key, master_salt, labels[1], 20),
        kdf(master_key, master_salt, labels[2], 14),
    )


def xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def expected_srtp(keys: SrtpKeys, rtp: bytes, roc: int = 0) -> bytes:
    """AES-CM + HMAC-SHA1 SRTP (RFC 3711 §4.1.1, §4.2) for a packet with a 12-octet header."""
    k_e, k_a, k_s = session_keys(keys.master_key, keys.master_salt)
    seq = struct.unpack_from("!H", rtp, 2)[0]
    ssrc = struct.unpack_from("!I", rtp, 8)[0]
    index = (roc << 16) | seq
    iv = (int.from_bytes(k_s, "big") << 16) ^ (ssrc << 64) ^ (index << 16)
    body = rtp[:12] + xor(rtp[12:], aes_cm_keystream(k_e, iv.to_bytes(16, "big"), len(rtp) - 12))
    tag = hmac.new(k_a, body + struct.pack("!I", roc), hashlib.sha1).digest()
    return body + tag[: tag_length(keys.profile)]


def expected_srtcp(keys: SrtpKeys, rtcp: bytes, index: int) -> bytes:
    k_e, k_a, k_s = session_keys(keys.master_key, keys.master_salt, (3, 4, 5))
    ssrc = struct.unpack_from("!I", rtcp, 4)[0]
    iv = (int.from_bytes(k_s, "big") << 16) ^ (ssrc << 64) ^ (index << 16)
    body = rtcp[:8] + xor(rtcp[8:], aes_cm_keystream(k_e, iv.to_bytes(16, "big"), len(rtcp) - 8))
    body += struct.pack("!I", 0x80000000 | index)
    return body + hmac.new(k_a, body, hashlib.sha1).digest()[:10]


def rtp_bytes(seq: int, payload: bytes = b"\xab" * 16, ssrc: int = 0xCAFEBABE) -> bytes:
    return RtpPacket(15, seq, 0xDECAFBAD, ssrc, payload).serialize()


def keys_for(profile: SrtpProfile, seed: int = 1) -> SrtpKeys:
    material = hashlib.sha256(bytes([seed])).digest() + hashlib.sha256(bytes([seed, 1])).digest()
    return SrtpKeys(profile, material[: key_length(profile)], material[32 : 32 + salt_length(profile)])


# ----------------------------------------------------------------- vectors pin the model


def test_model_matches_rfc3711_b2_keystream() -> None:
    stream = aes_cm_keystream(
        bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C"),
        bytes.fromhex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000"),
        32,
    )
    assert stream.hex().upper() == "E03EAD0935C95E80E166B16DD92B4EB4D23513162B02D0F72A43A2FE4A5F97AB"


def test_model_matches_rfc3711_b3_key_derivation() -> None:
    k_e, k_a, k_s = session_keys(B3_KEY, B3_SALT)
    assert k_e.hex().upper() == "C61E7A93744F39EE10734AFE3FF7A087"
    assert k_s.hex().upper() == "30CBBC08863D8C85D49DB34A9AE1"
    assert k_a.hex().upper() == "CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4"


def test_model_matches_rfc6188_aes256_key_derivation() -> None:
    k_e, k_a, k_s = session_keys(RFC6188_KEY, RFC6188_SALT)
    assert k_e.hex() == "5ba1064e30ec51613cad926c5a28ef731ec7fb397f70a960653caf06554cd8c4"
    assert k_s.hex() == "fa31791685ca444a9e07c6c64e93"
    assert k_a.hex() == "fd9c32d39ed5fbb5a9dc96b30818454d1313dc05"


# ------------------------------------------------ libsrtp through our API agrees with the model


@pytest.mark.parametrize(
    ("profile", "key", "salt"),
    [
        (SrtpProfile.AES_CM_128_HMAC_SHA1_80, B3_KEY, B3_SALT),
        (SrtpProfile.AES_CM_128_HMAC_SHA1_32, B3_KEY, B3_SALT),
        (SrtpProfile.AES_256_CM_HMAC_SHA1_80, RFC6188_KEY, RFC6188_SALT),
        (SrtpProfile.AES_256_CM_HMAC_SHA1_32, RFC6188_KEY, RFC6188_SALT),
    ],
)
def test_protect_matches_independent_derivation(profile: SrtpProfile, key: bytes, salt: bytes) -> None:
    keys = SrtpKeys(profile, key, salt)
    sender = SrtpSender(keys)
    for seq in (0x1234, 0x1235, 0x1240):
        plain = rtp_bytes(seq, bytes(range(50)))
        assert sender.protect(plain) == expected_srtp(keys, plain)


def test_known_libsrtp_reference_packets() -> None:
    # The B.3 (AES-128) and RFC 6188 (AES-256) keys on libsrtp's reference packet (header, then 0xab * 16).
    plain = bytes.fromhex("800f1234decafbadcafebabe" + "ab" * 16)
    aes128 = SrtpSender(SrtpKeys(SrtpProfile.AES_CM_128_HMAC_SHA1_80, B3_KEY, B3_SALT)).protect(plain)
    assert aes128.hex() == "800f1234decafbadcafebabe4e55dc4ce79978d88ca4d215949d2402b78d6acc99ea179b8dbb"
    aes256 = SrtpSender(SrtpKeys(SrtpProfile.AES_256_CM_HMAC_SHA1_80, RFC6188_KEY, RFC6188_SALT)).protect(
        plain
    )
    assert aes256.hex() == "800f1234decafbadcafebabef1d9de17ff251ff1aa007774b0b4b40da08d9d9a5b3a55d8873b"


@pytest.mark.parametrize("profile", [p for p in SrtpProfile if "_CM_" in p.value])
def test_protect_rtcp_matches_independent_derivation(profile: SrtpProfile) -> None:
    # SRTCP keeps the 80-bit tag for the _32 suites too (RFC 3711 §5.2 / RFC 4568, RFC 6188 §4).
    keys = keys_for(profile, 7)
    sender = SrtpSender(keys)
    rtcp = serialize_rtcp_compound([ReceiverReport(0xCAFEBABE)])
    for index in (1, 2, 3):
        # libsrtp numbers SRTCP packets from 1.
        assert sender.protect_rtcp(rtcp) == expected_srtcp(keys, rtcp, index)


@pytest.mark.parametrize("profile", [SrtpProfile.AEAD_AES_128_GCM, SrtpProfile.AEAD_AES_256_GCM])
def test_gcm_matches_rfc7714_construction(profile: SrtpProfile) -> None:
    keys = keys_for(profile, 3)
    k_e = kdf(keys.master_key, keys.master_salt, 0, key_length(profile))
    k_s = kdf(keys.master_key, keys.master_salt, 2, 12)
    plain = rtp_bytes(0x4321, b"opus frame" * 5)
    protected = SrtpSender(keys).protect(plain)
    # RFC 7714 §8.1: IV = (00 00 || SSRC || ROC || SEQ) XOR salt; the header is the associated data.
    iv = xor(b"\x00\x00" + plain[8:12] + struct.pack("!I", 0) + plain[2:4], k_s)
    assert protected == plain[:12] + AESGCM(k_e).encrypt(iv, plain[12:], plain[:12])
    assert SrtpReceiver(keys).unprotect(protected) == plain


@pytest.mark.parametrize("profile", [SrtpProfile.AEAD_AES_128_GCM, SrtpProfile.AEAD_AES_256_GCM])
def test_gcm_srtcp_matches_rfc7714_construction(profile: SrtpProfile) -> None:
    keys = keys_for(profile, 4)
    k_e = kdf(keys.master_key, keys.master_salt, 3, key_length(profile))
    k_s = kdf(keys.master_key, keys.master_salt, 5, 12)
    rtcp = serialize_rtcp_compound([ReceiverReport(0xCAFEBABE)])
    protected = SrtpSender(keys).protect_rtcp(rtcp)
    # RFC 7714 §9: IV = (00 00 || SSRC || 00 00 || index) XOR salt; AAD = header || E-flag and index.
    index = 1
    trailer = struct.pack("!I", 0x80000000 | index)
    iv = xor(b"\x00\x00" + rtcp[4:8] + b"\x00\x00" + struct.pack("!I", index), k_s)
    assert protected == rtcp[:8] + AESGCM(k_e).encrypt(iv, rtcp[8:], rtcp[:8] + trailer) + trailer


# ----------------------------------------------------------------- round trips and rejects


@pytest.mark.parametrize("profile", list(SrtpProfile))
def test_round_trip_all_profiles(profile: SrtpProfile) -> None:
    keys = keys_for(profile)
    sender, receiver = SrtpSender(keys, ssrc=0xCAFEBABE), SrtpReceiver(keys)
    for seq in range(65530, 65536):
        plain = rtp_bytes(seq)
        protected = sender.protect(plain)
        assert len(protected) == len(plain) + tag_length(profile)
        assert receiver.unprotect(protected) == plain
    # Sequence wrap: libsrtp bumps the ROC and both sides keep agreeing.
    for seq in range(0, 5):
        assert receiver.unprotect(sender.protect(rtp_bytes(seq))) == rtp_bytes(seq)
    rtcp = serialize_rtcp_compound([ReceiverReport(0xCAFEBABE)])
    assert receiver.unprotect_rtcp(sender.protect_rtcp(rtcp)) == rtcp
    assert receiver.accepted == 12


@pytest.mark.parametrize("profile", list(SrtpProfile))
def test_rejects_are_counted_by_reason(profile: SrtpProfile) -> None:
    keys = keys_for(profile)
    sender, receiver = SrtpSender(keys), SrtpReceiver(keys)
    protected = sender.protect(rtp_bytes(10))
    receiver.unprotect(protected)
    with pytest.raises(SrtpError) as replay:
        receiver.unprotect(protected)
    assert replay.value.reason == "replay"
    forged = bytearray(sender.protect(rtp_bytes(11)))
    forged[-1] ^= 1
    with pytest.raises(SrtpError) as auth:
        receiver.unprotect(bytes(forged))
    assert auth.value.reason == "auth"
    with pytest.raises(SrtpError) as short:
        receiver.unprotect(b"\x80\x00")
    assert short.value.reason == "malformed"
    wrong_key = SrtpSender(keys_for(profile, 99)).protect(rtp_bytes(12))
    with pytest.raises(SrtpError) as wrong:
        receiver.unprotect(wrong_key)
    assert wrong.value.reason == "auth"
    assert receiver.rejects == {"replay": 1, "auth": 2, "malformed": 1}


def test_replay_window_rejects_too_old() -> None:
    keys = keys_for(SrtpProfile.AES_CM_128_HMAC_SHA1_80)
    sender, receiver = SrtpSender(keys), SrtpReceiver(keys, window=128)
    old = sender.protect(rtp_bytes(1))
    for seq in range(2, 300):
        receiver.unprotect(sender.protect(rtp_bytes(seq)))
    with pytest.raises(SrtpError) as exc:
        receiver.unprotect(old)
    assert exc.value.reason == "replay"
    # Reordered but inside the window is fine.
    late = sender.protect(rtp_bytes(301))
    receiver.unprotect(sender.protect(rtp_bytes(302)))
    assert receiver.unprotect(late) == rtp_bytes(301)


def test_replay_window_size_is_validated() -> None:
    keys = keys_for(SrtpProfile.AES_CM_128_HMAC_SHA1_80)
    for window in (0, 63, 0x8000):
        with pytest.raises(ValueError):
            SrtpReceiver(keys, window=window)
    SrtpReceiver(keys, window=64)
    SrtpReceiver(keys, window=0x7FFF)


def test_specific_ssrc_sender_refuses_other_ssrc() -> None:
    sender = SrtpSender(keys_for(SrtpProfile.AES_CM_128_HMAC_SHA1_80), ssrc=1)
    sender.protect(rtp_bytes(1, ssrc=1))
    with pytest.raises(SrtpError):
        sender.protect(rtp_bytes(1, ssrc=2))


def test_oversized_packet_is_a_counted_reject() -> None:
    keys = keys_for(SrtpProfile.AES_CM_128_HMAC_SHA1_80)
    receiver = SrtpReceiver(keys)
    with pytest.raises(SrtpError) as exc:
        receiver.unprotect(b"\x80" + bytes(1600))
    assert exc.value.reason == "too_large"
    with pytest.raises(SrtpError):
        SrtpSender(keys).protect(rtp_bytes(1, bytes(1480)))


def test_session_is_bound_to_one_thread() -> None:
    keys = keys_for(SrtpProfile.AES_CM_128_HMAC_SHA1_80)
    sender = SrtpSender(keys)
    sender.protect(rtp_bytes(1))
    errors: list[BaseException] = []

    def other() -> None:
        try:
            sender.protect(rtp_bytes(2))
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert len(errors) == 1


def test_keys_validate_lengths_and_hide_material() -> None:
    with pytest.raises(ValueError):
        SrtpKeys(SrtpProfile.AES_256_CM_HMAC_SHA1_80, bytes(16), bytes(14))
    with pytest.raises(ValueError):
        SrtpKeys(SrtpProfile.AEAD_AES_128_GCM, bytes(16), bytes(14))
    keys = SrtpKeys(SrtpProfile.AES_CM_128_HMAC_SHA1_80, B3_KEY, B3_SALT)
    assert B3_KEY.hex() not in repr(keys).lower() and B3_SALT.hex() not in repr(keys).lower()
    assert SrtpProfile("AEAD_AES_256_GCM") is SrtpProfile.AEAD_AES_256_GCM
