"""DTLS-SRTP against an independent implementation: the openssl CLI (s_server / s_client) over loopback UDP.

Both ends export EXTRACTOR-dtls_srtp keying material; openssl prints its copy, ours comes out of DtlsSecure.
"""

from __future__ import annotations

import queue
import re
import select
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from tests.support.prereq import require_binary
from tests.unit.dtls.harness import Cred, make_cred
from zcall.dtls import DtlsFailed, DtlsSecure, DtlsSrtpSession, FingerprintMismatch, fingerprint_of
from zcall.dtls.profiles import OPENSSL_NAMES, material_length
from zcall.net import Addr

pytestmark = pytest.mark.interop
LIMIT = 15.0


class OpenSSL:
    """One openssl s_server/s_client process; stdout lines collected by a thread, stdin kept open."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def poll_lines(self) -> list[str]:
        new = []
        while True:
            try:
                new.append(self.lines.get_nowait())
            except queue.Empty:
                self.seen.extend(new)
                return new

    def wait_for(self, pattern: str, timeout: float = LIMIT) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.seen + self.poll_lines():
                if m := re.search(pattern, line):
                    return m
            time.sleep(0.02)
        raise AssertionError(f"openssl never printed {pattern!r}; output:\n" + "\n".join(self.seen))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)


def _pem_files(cred: Cred, directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    cert.write_bytes(cred.certificate.public_bytes(serialization.Encoding.PEM))
    pem = cred.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
    key.write_bytes(pem)
    return cert, key




def _drive(dtls: DtlsSrtpSession, sock: socket.socket, peer: Addr | None) -> tuple[object, Addr]:
    """Real sockets, real clock: until the session reports an event."""
    start = time.monotonic()
    while time.monotonic() - start < LIMIT:
        now = time.monotonic()
        if peer is not None:
            for datagram in dtls.datagrams_to_send(now):
                sock.sendto(datagram, peer)
        if (event := dtls.next_event()) is not None:
            if peer is not None:
                for datagram in dtls.datagrams_to_send(now):
                    sock.sendto(datagram, peer)
            assert peer is not None
            return event, peer
        timer = dtls.get_timer()
        wait = 0.2 if timer is None else max(0.0, min(timer - now, 0.2))
        if select.select([sock], [], [], wait)[0]:
            data, peer = sock.recvfrom(65536)
            dtls.receive(data, time.monotonic())
        elif timer is not None and time.monotonic() >= timer:
            dtls.handle_timer(time.monotonic())
    raise AssertionError(f"no DTLS event within {LIMIT} s (state {dtls.state})")


@pytest.fixture
def udp() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


def _keying_material(tool: OpenSSL) -> bytes:
    return bytes.fromhex(tool.wait_for(r"Keying material: ([0-9A-Fa-f]+)").group(1))


def _exported(secure: DtlsSecure, our_role: str) -> bytes:
    """Reassemble client_key|server_key|client_salt|server_salt from our view."""
    if our_role == "client":
        return secure.local_key + secure.remote_key + secure.local_salt + secure.remote_salt
    return secure.remote_key + secure.local_key + secure.remote_salt + secure.local_salt


PROFILES = ["AES_CM_128_HMAC_SHA1_80", "AEAD_AES_256_GCM"]


@pytest.fixture(autouse=True)
def _openssl() -> None:
    require_binary("openssl")


@pytest.mark.parametrize("profile", PROFILES)
def test_our_client_against_openssl_s_server(profile: str, tmp_path: Path, udp: socket.socket) -> None:
    ours, theirs = make_cred("zcall"), make_cred("openssl")
    cert, key = _pem_files(theirs, tmp_path)
    server = OpenSSL([shutil.which("openssl") or "openssl", "s_server", "-dtls1_2", "-accept", "127.0.0.1:0",
                      "-naccept", "1", "-cert", str(cert), "-key", str(key), "-verify", "1",
                      "-use_srtp", OPENSSL_NAMES[profile], "-keymatexport", "EXTRACTOR-dtls_srtp",
                      "-keymatexportlen", str(material_length(profile))])
    try:
        port = int(server.wait_for(r"ACCEPT 127\.0\.0\.1:(\d+)").group(1))
        expected = fingerprint_of(theirs.certificate)
        dtls = DtlsSrtpSession("client", ours.certificate, ours.private_key, expected, profiles=(profile,))
        dtls.start(time.monotonic())
        event, _ = _drive(dtls, udp, ("127.0.0.1", port))
        assert isinstance(event, DtlsSecure) and event.srtp_profile == profile
        assert _exported(event, "client") == _keying_material(server)
        # openssl saw our certificate (it asked for one with -verify).
        server.wait_for(r"subject=.*CN ?= ?zcall")
    finally:
        server.stop()


@pytest.mark.parametrize("profile", PROFILES)
def test_our_server_against_openssl_s_client(profile: str, tmp_path: Path, udp: socket.socket) -> None:
    ours, theirs = make_cred("zcall"), make_cred("openssl")
    cert, key = _pem_files(theirs, tmp_path)
    port = udp.getsockname()[1]
    # Remote fingerprint unknown at first: the ClientHello races the SDP answer, as it does for an offerer.
    dtls = DtlsSrtpSession("server", ours.certificate, ours.private_key, None)
    client = OpenSSL([shutil.which("openssl") or "openssl", "s_client", "-dtls1_2", "-connect",
                      f"127.0.0.1:{port}", "-cert", str(cert), "-key", str(key),
                      "-use_srtp", OPENSSL_NAMES[profile], "-keymatexport", "EXTRACTOR-dtls_srtp",
                      "-keymatexportlen", str(material_length(profile))])
    try:
        dtls.set_remote_fingerprint(fingerprint_of(theirs.certificate))
        event, _ = _drive(dtls, udp, None)
        assert isinstance(event, DtlsSecure) and event.srtp_profile == profile
        assert _exported(event, "server") == _keying_material(client)
        client.wait_for(f"SRTP Extension negotiated, profile={OPENSSL_NAMES[profile]}")
    finally:
        client.stop()


def test_openssl_client_with_the_wrong_certificate_is_refused(tmp_path: Path, udp: socket.socket) -> None:
    ours, expected, impostor = make_cred("zcall"), make_cred("expected"), make_cred("impostor")
    cert, key = _pem_files(impostor, tmp_path)
    dtls = DtlsSrtpSession("server", ours.certificate, ours.private_key, fingerprint_of(expected.certificate))
    client = OpenSSL([shutil.which("openssl") or "openssl", "s_client", "-dtls1_2", "-connect",
                      f"127.0.0.1:{udp.getsockname()[1]}", "-cert", str(cert), "-key", str(key),
                      "-use_srtp", "SRTP_AES128_CM_SHA1_80"])
    try:
        event, _ = _drive(dtls, udp, None)
        want = FingerprintMismatch(fingerprint_of(expected.certificate), fingerprint_of(impostor.certificate))
        assert event == want
        assert dtls.next_event() is None and dtls.state == "failed"
    finally:
        client.stop()


def test_dtls_1_0_is_refused(tmp_path: Path, udp: socket.socket) -> None:
    ours, theirs = make_cred("zcall"), make_cred("old")
    cert, key = _pem_files(theirs, tmp_path)
    dtls = DtlsSrtpSession("server", ours.certificate, ours.private_key, fingerprint_of(theirs.certificate))
    client = OpenSSL([shutil.which("openssl") or "openssl", "s_client", "-dtls1", "-connect",
                      f"127.0.0.1:{udp.getsockname()[1]}", "-cert", str(cert), "-key", str(key),
                      "-use_srtp", "SRTP_AES128_CM_SHA1_80"])
    try:
        event, _ = _drive(dtls, udp, None)
        assert isinstance(event, DtlsFailed) and "protocol" in event.reason
        client.wait_for("alert protocol version")
    finally:
        client.stop()
