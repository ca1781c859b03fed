"""A throw-away PKI per test run: one CA, server and client certificates it signs, and deliberately bad ones.

Keys are EC P-256 (fast to make, accepted by Kamailio's OpenSSL and by pyOpenSSL). Every PEM is written to a
directory the caller owns; the paths are what Kamailio's tls.cfg and zcall's --server-ca want.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Valid from a little in the past so clock skew between namespaces (same kernel, so none) cannot bite.
_BACKDATE = datetime.timedelta(hours=1)
_LIFETIME = datetime.timedelta(days=2)


@dataclass(frozen=True)
class Issued:
    """A certificate with its key, in memory and on disk."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_path: Path
    key_path: Path

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def write_combined(self, path: Path) -> Path:
        """Certificate then key in one PEM (baresip's sip_certificate wants this form)."""
        path.write_bytes(self.cert_pem + self.key_path.read_bytes())
        path.chmod(0o600)
        return path


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "zcall test bench"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write(directory: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Issued:
    directory.mkdir(parents=True, exist_ok=True)
    cert_path = directory / f"{stem}.crt"
    key_path = directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    return Issued(cert, key, cert_path, key_path)


class CertificateAuthority:
    """A self-signed CA that issues leaf certificates for hosts and users of one test run."""

    def __init__(self, directory: Path, common_name: str = "zcall test CA") -> None:
        self.directory = directory
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(_name(common_name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + _LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                    encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        self.issued = _write(directory, "ca", cert, key)

    @property
    def cert_path(self) -> Path:
        return self.issued.cert_path

    def issue(
        self,
        stem: str,
        common_name: str,
        *,
        ips: tuple[str, ...] = (),
        dns_names: tuple[str, ...] = (),
        client: bool = False,
        server: bool = True,
    ) -> Issued:
        """Sign a leaf certificate whose SAN lists `ips` and `dns_names`."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        sans: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        ca_public = self.issued.key.public_key()
        usages = [ExtendedKeyUsageOID.SERVER_AUTH] if server else []
        usages += [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.issued.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + _LIFETIME)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        if usages:
            builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        cert = builder.sign(self.issued.key, hashes.SHA256())
        return _write(self.directory, stem, cert, key)

    def server_cert(self, ip: str, dns_name: str, stem: str = "server") -> Issued:
        """The SIP server's certificate: valid for its IP address and a DNS name."""
        return self.issue(stem, dns_name, ips=(ip,), dns_names=(dns_name,))

    def client_cert(self, user: str) -> Issued:
        return self.issue(f"client-{user}", user, client=True, server=False)

    def wrong_hostname_cert(self, stem: str = "wrong-host") -> Issued:
        """Signed by this CA but naming a host nobody dials (TEST-NET-1 address, .invalid name)."""
        return self.issue(stem, "wrong.invalid", ips=("192.0.2.1",), dns_names=("wrong.invalid",))


def wrong_ca_server_cert(directory: Path, ip: str, dns_name: str) -> tuple[CertificateAuthority, Issued]:
    """A server certificate with the right names but signed by an unrelated CA (which is returned too)."""
    rogue = CertificateAuthority(directory / "rogue-ca", common_name="zcall rogue CA")
    return rogue, rogue.server_cert(ip, dns_name, stem="rogue-server")


def server_tls_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    """A TLS server for the client under test (zcall itself never listens for TLS)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile, keyfile)
    return ctx
