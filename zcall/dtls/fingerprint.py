"""Certificate fingerprints as SDP carries them (RFC 8122 a=fingerprint: "sha-256 AB:CD:...")."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from zcall.errors import ZcallError

# RFC 8122 hash names still worth trusting -> hashlib names; md5/md2 are refused on purpose.
_DIGEST_SIZES = {"sha-1": 20, "sha-224": 28, "sha-256": 32, "sha-384": 48, "sha-512": 64}
_HASHES = {name: name.replace("-", "") for name in _DIGEST_SIZES}
_HEX = frozenset("0123456789abcdefABCDEF")
# Strongest first: of several a=fingerprint lines we check those of the best hash the peer offered.
_PREFERENCE = ("sha-512", "sha-384", "sha-256", "sha-224", "sha-1")
MAX_FINGERPRINTS = 8
# "sha-512 " plus 64 hex pairs and colons, with room for surrounding blanks.
MAX_FINGERPRINT_TEXT = 256


class FingerprintParseError(ZcallError, ValueError):
    """An a=fingerprint value we cannot use."""


@dataclass(frozen=True)
class Fingerprint:
    algorithm: str  # lower-case RFC 8122 name, e.g. "sha-256"
    digest: bytes

    @classmethod
    def parse(cls, text: str) -> Fingerprint:
        if len(text) > MAX_FINGERPRINT_TEXT:
            raise FingerprintParseError("fingerprint text too long")
        parts = text.split()
        if len(parts) != 2:
            raise FingerprintParseError("expected '<hash> <hex:hex:...>'")
        algorithm = parts[0].lower()
        if algorithm not in _HASHES:
            raise FingerprintParseError(f"unsupported fingerprint hash {parts[0][:16]!r}")
        pairs = parts[1].split(":")
        if len(pairs) != _DIGEST_SIZES[algorithm]:
            raise FingerprintParseError(f"{algorithm} needs {_DIGEST_SIZES[algorithm]} octets")
        if not all(len(pair) == 2 and all(c in _HEX for c in pair) for pair in pairs):
            raise FingerprintParseError("fingerprint octets must be hex pairs")
        digest = bytes.fromhex("".join(pairs))
        return cls(algorithm, digest)

    @classmethod
    def of_der(cls, der: bytes, algorithm: str = "sha-256") -> Fingerprint:
        """RFC 8122 §5: the hash of the certificate's DER encoding, exactly as it came off the wire."""
        algorithm = algorithm.lower()
        if algorithm not in _HASHES:
            raise FingerprintParseError(f"unsupported fingerprint hash {algorithm[:16]!r}")
        return cls(algorithm, hashlib.new(_HASHES[algorithm], der).digest())

    @classmethod
    def of(cls, certificate: x509.Certificate, algorithm: str = "sha-256") -> Fingerprint:
        return cls.of_der(certificate.public_bytes(serialization.Encoding.DER), algorithm)

    def matches_der(self, der: bytes) -> bool:
        """Constant-time comparison with the digest of a DER certificate under the same hash."""
        return hmac.compare_digest(self.digest, hashlib.new(_HASHES[self.algorithm], der).digest())

    def matches(self, certificate: x509.Certificate) -> bool:
        return self.matches_der(certificate.public_bytes(serialization.Encoding.DER))

    def __str__(self) -> str:
        return f"{self.algorithm} " + ":".join(f"{octet:02X}" for octet in self.digest)


@dataclass(frozen=True)
class PeerPin:
    """What the peer's certificate must match: its a=fingerprint values that use the strongest hash offered
    (RFC 8122 §5: one of that set must match). Unusable values (md5, malformed) are skipped if others remain.
    """

    fingerprints: tuple[Fingerprint, ...]

    @classmethod
    def from_sdp(cls, values: str | Sequence[str]) -> PeerPin:
        values = [values] if isinstance(values, str) else list(values)
        if len(values) > MAX_FINGERPRINTS:
            raise FingerprintParseError("too many fingerprints")
        parsed: list[Fingerprint] = []
        errors: list[FingerprintParseError] = []
        for value in values:
            try:
                parsed.append(Fingerprint.parse(value))
            except FingerprintParseError as exc:
                errors.append(exc)
        if not parsed:
            raise errors[0] if errors else FingerprintParseError("no fingerprint given")
        best = min(_PREFERENCE.index(f.algorithm) for f in parsed)
        return cls(tuple(f for f in parsed if f.algorithm == _PREFERENCE[best]))

    @property
    def algorithm(self) -> str:
        return self.fingerprints[0].algorithm

    def matches_der(self, der: bytes) -> bool:
        digest = hashlib.new(_HASHES[self.algorithm], der).digest()
        found = False
        for fp in self.fingerprints:  # no early exit: the time taken does not say which one matched
            found |= hmac.compare_digest(fp.digest, digest)
        return found

    def matches(self, certificate: x509.Certificate) -> bool:
        return self.matches_der(certificate.public_bytes(serialization.Encoding.DER))

    def __str__(self) -> str:
        return ", ".join(str(f) for f in self.fingerprints)


def fingerprint_of(certificate: x509.Certificate, algorithm: str = "sha-256") -> str:
    """The a=fingerprint value for our own certificate."""
    return str(Fingerprint.of(certificate, algorithm))
