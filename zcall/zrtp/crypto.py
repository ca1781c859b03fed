"""ZRTP cryptography (RFC 6189 §4.4-4.5, §5.1, §9), all on `cryptography`: hashes, KDF, s0, derived keys,
AES-CFB for Confirm, key agreements with their public-value checks, the H0-H3 hash chain and secret IDs.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.decrepit.ciphers.modes import CFB
from cryptography.hazmat.primitives.asymmetric import dh, ec, x25519
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.utils import CryptographyDeprecationWarning

from zcall.errors import ZcallError

T = TypeVar("T")

HASHES = {"S256": "sha256", "S384": "sha384"}  # ZRTP name -> hashlib name
HASH_LEN = {"S256": 32, "S384": 48}
CIPHER_KEY_LEN = {"AES1": 16, "AES3": 32}
AUTH_TAGS = ("HS80", "HS32")
SAS_TYPES = ("B256", "B32")
# Public value and DHResult sizes in bytes (§5.1.5; X255 as bzrtp/linphone put it on the wire: 32 bytes raw).
PV_LEN = {"DH3k": 384, "DH2k": 256, "EC25": 64, "EC38": 96, "X255": 32}
RESULT_LEN = {"DH3k": 384, "DH2k": 256, "EC25": 32, "EC38": 48, "X255": 32}
KEY_AGREEMENTS = tuple(PV_LEN)
# §4.1.2 (and the ranking bzrtp uses): when the two first choices differ, the faster one wins.
KA_SPEED_ORDER = ("DH2k", "X255", "EC25", "DH3k", "EC38")
SALT_BITS = 112

_MODP_2048 = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05"
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718"
    "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF",
    16,
)
_MODP_3072 = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05"
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718"
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33"
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864"
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2"
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF",
    16,
)
# RFC 3526 groups 14 and 15, generator 2 (§5.1.5).
DH_PRIMES = {"DH2k": _MODP_2048, "DH3k": _MODP_3072}
_CURVES: dict[str, ec.EllipticCurve] = {"EC25": ec.SECP256R1(), "EC38": ec.SECP384R1()}


class BadPublicValue(ZcallError, ValueError):
    """A peer's DH/ECDH public value failed the §4.4.1.1 checks (Error 0x61)."""


# ------------------------------------------------------------------------------------------ hashes, MACs


def digest(alg: str, data: bytes) -> bytes:
    return hashlib.new(HASHES[alg], data).digest()


def hmac_full(alg: str, key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, HASHES[alg]).digest()


def mac64(alg: str, key: bytes, data: bytes) -> bytes:
    """The 64-bit MAC of §5 message fields and secret IDs: HMAC with the given hash, truncated."""
    return hmac_full(alg, key, data)[:8]


def implicit_hash(data: bytes) -> bytes:
    """SHA-256: the implicit hash (§5.1.2.1) of the hash chain, the Hello hash and the message MACs."""
    return hashlib.sha256(data).digest()


def implicit_mac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()[:8]


def macs_equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def message_mac_ok(message_raw: bytes, key: bytes) -> bool:
    """Check the trailing 8-byte MAC of a Hello, Commit or DHPart with its hash-chain key."""
    return macs_equal(implicit_mac(key, message_raw[:-8]), message_raw[-8:])


# --------------------------------------------------------------------------------------------- hash chain


@dataclass(frozen=True)
class HashChain:
    """H0 random; H1 = hash(H0), H2 = hash(H1), H3 = hash(H2) (§9), with the implicit hash."""

    h0: bytes
    h1: bytes
    h2: bytes
    h3: bytes

    @classmethod
    def generate(cls, h0: bytes | None = None) -> HashChain:
        h0 = os.urandom(32) if h0 is None else h0
        h1 = implicit_hash(h0)
        h2 = implicit_hash(h1)
        return cls(h0, h1, h2, implicit_hash(h2))


# ------------------------------------------------------------------------------------------- KDF and keys


def kdf(alg: str, ki: bytes, label: bytes, context: bytes, length_bits: int) -> bytes:
    """KDF(KI, Label, Context, L) = HMAC(KI, i || Label || 0x00 || Context || L), i = 1 (§4.5.1)."""
    data = struct.pack("!I", 1) + label + b"\x00" + context + struct.pack("!I", length_bits)
    out = hmac_full(alg, ki, data)
    if length_bits % 8 or length_bits > 8 * len(out):
        raise ValueError("KDF length must be whole bytes within one hash output")
    return out[: length_bits // 8]


def hvi(alg: str, dhpart2: bytes, responder_hello: bytes) -> bytes:
    """hvi = hash(initiator's DHPart2 || responder's Hello), truncated to 256 bits (§4.4.1.1)."""
    return digest(alg, dhpart2 + responder_hello)[:32]


def total_hash(alg: str, responder_hello: bytes, commit: bytes, dhpart1: bytes, dhpart2: bytes) -> bytes:
    return digest(alg, responder_hello + commit + dhpart1 + dhpart2)


def kdf_context(zidi: bytes, zidr: bytes, thash: bytes) -> bytes:
    return zidi + zidr + thash


def s0(
    alg: str,
    dh_result: bytes,
    zidi: bytes,
    zidr: bytes,
    thash: bytes,
    s1: bytes | None = None,
    s2: bytes | None = None,
    s3: bytes | None = None,
) -> bytes:
    """§4.4.1.4: s0 = hash(1 || DHResult || "ZRTP-HMAC-KDF" || ZIDi || ZIDr || total_hash || len(s1)...)"""
    parts = [struct.pack("!I", 1), dh_result, b"ZRTP-HMAC-KDF", zidi, zidr, thash]
    for secret in (s1, s2, s3):
        secret = secret or b""
        parts.append(struct.pack("!I", len(secret)) + secret)
    return digest(alg, b"".join(parts))


@dataclass(frozen=True)
class DerivedKeys:
    """Everything §4.5.3 derives from s0 for DH mode."""

    zrtp_session: bytes
    exported: bytes
    sas_hash: bytes
    srtp_key_i: bytes
    srtp_salt_i: bytes
    srtp_key_r: bytes
    srtp_salt_r: bytes
    mac_key_i: bytes
    mac_key_r: bytes
    zrtp_key_i: bytes
    zrtp_key_r: bytes
    new_rs1: bytes

    def __repr__(self) -> str:  # never print secrets by accident
        return "DerivedKeys(<secret>)"


def derive_keys(alg: str, cipher: str, s0_value: bytes, context: bytes) -> DerivedKeys:
    hbits = 8 * HASH_LEN[alg]
    kbits = 8 * CIPHER_KEY_LEN[cipher]

    def k(label: bytes, bits: int) -> bytes:
        return kdf(alg, s0_value, label, context, bits)

    return DerivedKeys(
        zrtp_session=k(b"ZRTP Session Key", hbits),
        exported=k(b"Exported key", hbits),
        sas_hash=k(b"SAS", 256),
        srtp_key_i=k(b"Initiator SRTP master key", kbits),
        srtp_salt_i=k(b"Initiator SRTP master salt", SALT_BITS),
        srtp_key_r=k(b"Responder SRTP master key", kbits),
        srtp_salt_r=k(b"Responder SRTP master salt", SALT_BITS),
        mac_key_i=k(b"Initiator HMAC key", hbits),
        mac_key_r=k(b"Responder HMAC key", hbits),
        zrtp_key_i=k(b"Initiator ZRTP key", kbits),
        zrtp_key_r=k(b"Responder ZRTP key", kbits),
        new_rs1=k(b"retained secret", 256),
    )


def secret_id(alg: str, secret: bytes | None, label: bytes) -> bytes:
    """rsNIDx = MAC(rsN, "Initiator"|"Responder") and auxsecretIDx = MAC(auxsecret, x's H3), 64 bits
    (§4.3.1); a random ID when there is no secret."""
    if secret is None:
        return os.urandom(8)
    return mac64(alg, secret, label)


def srtp_profile(cipher: str, auth: str) -> str:
    size = {"AES1": "128", "AES3": "256"}[cipher]
    tag = {"HS80": "80", "HS32": "32"}[auth]
    return f"AES_{size}_CM_HMAC_SHA1_{tag}" if size == "256" else f"AES_CM_128_HMAC_SHA1_{tag}"


# ----------------------------------------------------------------------------------------------- AES-CFB


def cfb_encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    enc = Cipher(algorithms.AES(key), CFB(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def cfb_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    dec = Cipher(algorithms.AES(key), CFB(iv)).decryptor()
    return dec.update(data) + dec.finalize()


# --------------------------------------------------------------------------------------- key agreements


def _ffdh(operation: Callable[[], T]) -> T:
    """Run one finite-field DH operation with exactly the FFDH deprecation warning silenced.

    cryptography 50 deprecates FFDH, but DH3k is ZRTP's mandatory key agreement and linphonec's default.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=".*Diffie-Hellman over finite fields", category=CryptographyDeprecationWarning
        )
        return operation()


def check_public_value(ka: str, pv: bytes) -> None:
    """§4.4.1.1: reject public values of the wrong size, 0, 1, p-1 or out of range for FFDH."""
    if len(pv) != PV_LEN[ka]:
        raise BadPublicValue(f"{ka} public value must be {PV_LEN[ka]} bytes, got {len(pv)}")
    if ka in DH_PRIMES:
        p = DH_PRIMES[ka]
        y = int.from_bytes(pv, "big")
        if y <= 1 or y >= p - 1:
            raise BadPublicValue("DH public value is 0, 1, p-1 or not below p")


class KeyPair:
    """One ephemeral key pair of a given key agreement type, with its wire-format public value."""

    def __init__(self, ka: str) -> None:
        if ka not in PV_LEN:
            raise ValueError(f"unsupported key agreement {ka}")
        self.ka = ka
        self._x: x25519.X25519PrivateKey | None = None
        self._ec: ec.EllipticCurvePrivateKey | None = None
        self._dh: dh.DHPrivateKey | None = None
        if ka == "X255":
            self._x = x25519.X25519PrivateKey.generate()
            self.public = self._x.public_key().public_bytes_raw()
        elif ka in _CURVES:
            self._ec = ec.generate_private_key(_CURVES[ka])
            nums = self._ec.public_key().public_numbers()
            size = PV_LEN[ka] // 2
            self.public = nums.x.to_bytes(size, "big") + nums.y.to_bytes(size, "big")
        else:
            prime = DH_PRIMES[ka]
            key = _ffdh(lambda: dh.DHParameterNumbers(prime, 2).parameters().generate_private_key())
            self._dh = key
            self.public = _ffdh(lambda: key.public_key().public_numbers().y).to_bytes(PV_LEN[ka], "big")

    def exchange(self, peer_pv: bytes) -> bytes:
        """DHResult with the peer's public value, checked first; BadPublicValue on any rejection."""
        check_public_value(self.ka, peer_pv)
        try:
            if self._x is not None:
                # cryptography refuses low-order points (all-zero result) with ValueError.
                result = self._x.exchange(x25519.X25519PublicKey.from_public_bytes(peer_pv))
            elif self._ec is not None:
                peer = ec.EllipticCurvePublicKey.from_encoded_point(_CURVES[self.ka], b"\x04" + peer_pv)
                result = self._ec.exchange(ec.ECDH(), peer)
            else:
                assert self._dh is not None
                key = self._dh
                prime = DH_PRIMES[self.ka]
                y = int.from_bytes(peer_pv, "big")
                result = _ffdh(
                    lambda: key.exchange(dh.DHPublicNumbers(y, dh.DHParameterNumbers(prime, 2)).public_key())
                )
        except (ValueError, InvalidKey) as exc:
            raise BadPublicValue(f"{self.ka} exchange refused the peer's public value") from exc
        # Fixed width, leading zeros kept (§4.4.1.1).
        return result.rjust(RESULT_LEN[self.ka], b"\x00")


def choose_key_agreement(ours: tuple[str, ...], theirs: tuple[str, ...]) -> str | None:
    """§4.1.2: intersect; if the first choices in each side's own order differ, the faster one wins."""
    ours_common = [ka for ka in ours if ka in theirs]
    theirs_common = [ka for ka in theirs if ka in ours]
    if not ours_common:
        return None
    a, b = ours_common[0], theirs_common[0]
    if a == b:
        return a
    rank = {ka: i for i, ka in enumerate(KA_SPEED_ORDER)}
    return min(a, b, key=lambda ka: rank.get(ka, len(rank)))
