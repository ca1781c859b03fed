"""The bench's own parsers and certificates, without any network: ctrl_tcp netstrings and the per-run PKI."""

from __future__ import annotations

import itertools
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.baresip import MAX_NETSTRING, NetstringDecoder, NetstringError, encode_netstring
from tests.support.pki import CertificateAuthority, wrong_ca_server_cert


@settings(max_examples=150, deadline=None)
@given(
    payloads=st.lists(st.binary(max_size=300), max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=6),
)
def test_netstrings_survive_any_split(payloads: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(encode_netstring(p) for p in payloads)
    bounds = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    decoder = NetstringDecoder()
    out: list[bytes] = []
    for start, end in itertools.pairwise(bounds):
        out += decoder.feed(stream[start:end])
    assert out == payloads


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_is_rejected_or_buffered_never_crashes(data: bytes) -> None:
    decoder = NetstringDecoder(max_size=100)
    try:
        payloads = decoder.feed(data)
    except NetstringError:
        return
    assert all(len(p) <= 100 for p in payloads)
    assert len(decoder._buf) <= 100 + len(str(MAX_NETSTRING)) + 2


@pytest.mark.parametrize(
    "stream",
    [b"x:abc,", b"3:abc;", b"03:abc,", b"-1:,", b"1234567:", b"65537:", b"123456", b":abc,"],
)
def test_malformed_netstrings(stream: bytes) -> None:
    with pytest.raises(NetstringError):
        NetstringDecoder().feed(stream)


def test_partial_netstring_waits_for_more() -> None:
    decoder = NetstringDecoder()
    assert decoder.feed(b"5:hel") == []
    assert decoder.feed(b"lo,2:") == [b"hello"]
    assert decoder.feed(b"ok,") == [b"ok"]


def _sans(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.DNSName), [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]


def test_server_certificate_names_the_host_and_chains_to_the_ca(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path)
    server = ca.server_cert("10.1.2.3", "sip.zcall.test")
    server.cert.verify_directly_issued_by(ca.issued.cert)
    assert _sans(server.cert) == (["sip.zcall.test"], ["10.1.2.3"])
    usage = server.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usage
    assert not server.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.issued.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for path in (server.key_path, ca.issued.key_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert server.cert_path.read_bytes() == server.cert_pem


def test_negative_certificates(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path / "ca")
    wrong_host = ca.wrong_hostname_cert()
    wrong_host.cert.verify_directly_issued_by(ca.issued.cert)
    dns, ips = _sans(wrong_host.cert)
    assert (dns, ips) == (["wrong.invalid"], ["192.0.2.1"])
    rogue, rogue_server = wrong_ca_server_cert(tmp_path / "rogue", "10.1.2.3", "sip.zcall.test")
    assert _sans(rogue_server.cert) == (["sip.zcall.test"], ["10.1.2.3"])
    rogue_server.cert.verify_directly_issued_by(rogue.issued.cert)
    with pytest.raises((ValueError, InvalidSignature)):
        rogue_server.cert.verify_directly_issued_by(ca.issued.cert)


def test_client_certificate_and_combined_pem(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path)
    client = ca.client_cert("alice")
    usage = client.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    combined = client.write_combined(tmp_path / "alice.pem").read_bytes()
    assert combined.startswith(b"-----BEGIN CERTIFICATE-----") and b"PRIVATE KEY" in combined
