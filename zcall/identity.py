"""This device: a 96-bit ZID and a long-lived self-signed ECDSA P-256 certificate (DTLS and SIP-TLS).

Created once, atomically (two instances starting together agree on one identity), files mode 0600.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from zcall import zidfile
from zcall.errors import ZcallError
from zcall.privatefile import keep_private, write_private

CERT_VALIDITY_DAYS = 3650


class IdentityError(ZcallError, RuntimeError):
    """The identity files exist but cannot be used."""


@dataclass(frozen=True)
class Identity:
    zid: bytes
    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey
    cert_path: Path
    key_path: Path

    @property
    def zid_hex(self) -> str:
        return self.zid.hex()

    def fingerprint(self, algorithm: str = "sha-256") -> str:
        """The certificate fingerprint as SDP's a=fingerprint writes it (RFC 8122)."""
        if algorithm != "sha-256":
            raise ValueError(f"unsupported fingerprint hash: {algorithm}")
        digest = self.certificate.fingerprint(hashes.SHA256())
        return ":".join(f"{byte:02X}" for byte in digest)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _new_certificate(zid: bytes, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"zcall-{zid.hex()}")])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=CERT_VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def load_or_create(directory: Path) -> Identity:
    """Load this device's identity from `directory`, creating it on first use."""
    zid_path, cert_path, key_path = (directory / name for name in (zidfile.FILE_NAME, "cert.pem", "key.pem"))
    with _locked(directory):
        if not zid_path.exists():
            zid = secrets.token_bytes(zidfile.ZID_BYTES)
            key = ec.generate_private_key(ec.SECP256R1())
            cert = _new_certificate(zid, key)
            key_pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            write_private(key_path, key_pem)
            write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM))
            # The ZID file is written last: its presence means the identity is complete.
            write_private(zid_path, zid.hex().encode() + b"\n")
        return _load(zid_path, cert_path, key_path)


def _load(zid_path: Path, cert_path: Path, key_path: Path) -> Identity:
    try:
        zid = zidfile.parse(zid_path.read_text())
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        with key_path.open("rb") as handle:
            keep_private(handle.fileno(), key_path)
            key = serialization.load_pem_private_key(handle.read(), password=None)
    except (OSError, ValueError) as exc:
        raise IdentityError(f"identity in {zid_path.parent} is unusable: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise IdentityError(f"{key_path}: expected an EC private key")
    if key.public_key().public_numbers() != certificate.public_key().public_numbers():  # type: ignore[union-attr]
        raise IdentityError(f"{cert_path} does not belong to {key_path}")
    return Identity(zid, certificate, key, cert_path, key_path)
