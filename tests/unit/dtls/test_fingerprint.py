"""a=fingerprint values: parse, print, match (RFC 8122)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes

from tests.unit.dtls.harness import make_cred
from zcall.dtls import Fingerprint, FingerprintParseError, PeerPin, fingerprint_of
from zcall.identity import load_or_create


def test_round_trip_and_case_insensitivity() -> None:
    cred = make_cred()
    text = fingerprint_of(cred.certificate)
    assert text.startswith("sha-256 ") and len(text.split()[1].split(":")) == 32
    parsed = Fingerprint.parse(text)
    assert parsed.digest == cred.certificate.fingerprint(hashes.SHA256())
    assert Fingerprint.parse("SHA-256 " + text.split()[1].lower()) == parsed
    assert Fingerprint.parse(f"  {text}\t") == parsed
    assert str(parsed) == text


@pytest.mark.parametrize("algorithm", ["sha-1", "sha-224", "sha-256", "sha-384", "sha-512"])
def test_every_allowed_hash_matches_its_certificate_only(algorithm: str) -> None:
    cred, other = make_cred("a"), make_cred("b")
    fp = Fingerprint.parse(fingerprint_of(cred.certificate, algorithm))
    assert fp.algorithm == algorithm
    assert fp.matches(cred.certificate)
    assert not fp.matches(other.certificate)


def test_agrees_with_the_device_identity(tmp_path: object) -> None:
    from pathlib import Path

    identity = load_or_create(Path(str(tmp_path)))
    assert fingerprint_of(identity.certificate) == "sha-256 " + identity.fingerprint()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sha-256",
        "md5 " + ":".join(["AB"] * 16),
        "sha-256 " + ":".join(["AB"] * 31),
        "sha-256 " + ":".join(["AB"] * 33),
        "sha-256 " + ":".join(["ZZ"] * 32),
        "sha-256 " + ":".join(["ABC"] * 32),
        "sha-256 " + ":".join(["+1"] * 32),
        "sha-256 " + ":".join(["٣٣"] * 32),
        "sha-256 AB CD",
        "sha-256 " + "A" * 300,
    ],
)
def test_malformed_values_are_refused(text: str) -> None:
    with pytest.raises(FingerprintParseError):
        Fingerprint.parse(text)


def test_pin_checks_the_strongest_hash_offered() -> None:
    cred, other = make_cred("a"), make_cred("b")
    good256 = fingerprint_of(cred.certificate, "sha-256")
    wrong384 = fingerprint_of(other.certificate, "sha-384")
    pin = PeerPin.from_sdp([good256, wrong384, "md5 " + ":".join(["00"] * 16)])
    # sha-384 is the best hash offered, and its only value is not this certificate's: no match.
    assert pin.algorithm == "sha-384" and not pin.matches(cred.certificate)
    both = PeerPin.from_sdp([good256, wrong384, fingerprint_of(cred.certificate, "sha-384")])
    assert both.matches(cred.certificate) and len(both.fingerprints) == 2
    assert PeerPin.from_sdp(good256).matches(cred.certificate)
    assert str(PeerPin.from_sdp(good256)) == good256


@pytest.mark.parametrize("values", [[], ["md5 00:11"], ["sha-256 nope"], ["sha-1 " + "00:" * 19 + "00"] * 9])
def test_pin_needs_a_usable_value(values: list[str]) -> None:
    with pytest.raises(FingerprintParseError):
        PeerPin.from_sdp(values)
