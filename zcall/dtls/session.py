"""DtlsSrtpSession: one DTLS-SRTP handshake (RFC 5763/5764) on pyOpenSSL memory BIOs, driven from outside.

No sockets and no clock reads of our own: bytes go in through receive(), out through datagrams_to_send(), and
time only through the `now` arguments. OpenSSL's retransmission timer measures elapsed time on its own clock,
so get_timer() reports its remaining time against the caller's `now`, and handle_timer() lets OpenSSL decide
whether it has really expired (pyOpenSSL has no DTLS_set_timer_cb to make it use ours).
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from OpenSSL import SSL, crypto

import zcall.dtls.profiles as _profiles
from zcall.dtls.events import DtlsClosed, DtlsEvent, DtlsFailed, DtlsSecure, FingerprintMismatch
from zcall.dtls.fingerprint import Fingerprint, PeerPin
from zcall.dtls.records import MAX_DATAGRAM, RecordError, pack_datagrams, split_records
from zcall.dtls.setup import Role

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
State = Literal["idle", "handshaking", "awaiting_fingerprint", "secure", "failed", "closed"]

_DTLS1_2_VERSION = 0xFEFD
# Forward-secret AEAD suites only; the server's certificate (ours ECDSA, a peer's maybe RSA) picks between.
_CIPHERS = b"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:" \
    b"ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305"
# WebRTC's choice: fits any path we expect (IPv6 minimum 1280 less IP/UDP headers and slack).
DEFAULT_MTU = 1200
DEFAULT_HANDSHAKE_TIMEOUT = 30.0
_READ_CHUNK = 65536


def _context(role: Role, certificate: x509.Certificate, private_key: PrivateKey, profiles: tuple[str, ...],
             verify: SSL._VerifyCallback) -> SSL.Context:
    ctx = SSL.Context(SSL.DTLS_METHOD)
    ctx.set_min_proto_version(_DTLS1_2_VERSION)
    ctx.set_options(SSL.OP_NO_QUERY_MTU | SSL.OP_NO_TICKET | SSL.OP_NO_RENEGOTIATION | SSL.OP_NO_COMPRESSION)
    ctx.set_cipher_list(_CIPHERS)
    ctx.use_certificate(certificate)
    ctx.use_privatekey(private_key)
    ctx.check_privatekey()
    ctx.set_tlsext_use_srtp(_profiles.openssl_profile_list(profiles))
    # Self-signed certificates: the chain is not verified, the fingerprint from the SDP is (mandatory).
    mode = SSL.VERIFY_PEER | (SSL.VERIFY_FAIL_IF_NO_PEER_CERT if role == "server" else 0)
    ctx.set_verify(mode, verify)
    return ctx


class DtlsSrtpSession:
    """One side of a DTLS-SRTP handshake. See the package docstring for the driving contract."""

    def __init__(
        self,
        role: Role,
        certificate: x509.Certificate,
        private_key: PrivateKey,
        remote_fingerprint: str | Sequence[str] | None = None,
        profiles: tuple[str, ...] = _profiles.DEFAULT_PROFILES,
        *,
        mtu: int = DEFAULT_MTU,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    ) -> None:
        if role not in ("client", "server"):
            raise ValueError(f"role must be 'client' or 'server', not {role!r}")
        if not 256 <= mtu <= MAX_DATAGRAM:
            raise ValueError("mtu must be 256..65536")
        self.role: Role = role
        self.profiles = tuple(profiles)
        self.mtu = mtu
        self.handshake_timeout = handshake_timeout
        self._expected: PeerPin | None = None
        if remote_fingerprint is not None:
            self._expected = PeerPin.from_sdp(remote_fingerprint)
        self._mismatch: str | None = None  # what the verify callback saw when the leaf did not match
        ctx = _context(role, certificate, private_key, self.profiles, self._verify)
        self._conn = SSL.Connection(ctx, None)
        self._conn.set_ciphertext_mtu(mtu)
        if role == "client":
            self._conn.set_connect_state()
        else:
            self._conn.set_accept_state()
        self.state: State = "idle"
        self._outbox: list[bytes] = []
        self._events: collections.deque[DtlsEvent] = collections.deque()
        self._deadline: float | None = None
        self._retransmit_at: float | None = None
        # Held between the end of the handshake and the fingerprint check; never leaves before it passes.
        self._peer_der: bytes | None = None
        self._pending: DtlsSecure | None = None
        self.drops: collections.Counter[str] = collections.Counter()
        self.retransmissions = 0
        self.records_in = 0

    # -- driving ---------------------------------------------------------------------------------------------

    def start(self, now: float) -> None:
        """Begin: a client sends its ClientHello; a server arms the handshake deadline and waits."""
        if self.state != "idle":
            return
        self._begin(now)
        if self.role == "client":
            self._handshake(now)
        self._flush()

    def set_remote_fingerprint(self, fingerprint: str | Sequence[str], now: float | None = None) -> None:
        """The peer's a=fingerprint, when the SDP answer arrives after the answerer's first DTLS flight.

        One value or all of the SDP's a=fingerprint values; FingerprintParseError (fingerprint.py) if none is
        usable. A handshake already finished is checked at once.
        """
        expected = PeerPin.from_sdp(fingerprint)
        if self._expected is not None and self._expected != expected:
            raise ValueError("the remote fingerprint is already set to another value")
        self._expected = expected
        if self.state == "awaiting_fingerprint":
            self._release()
        self._flush()

    def receive(self, data: bytes, now: float) -> None:
        """One UDP datagram the demultiplexer classed as DTLS. Never raises: bad input counts in .drops."""
        if self.state in ("failed", "closed"):
            self.drops["after_end"] += 1
            return
        if len(data) > MAX_DATAGRAM:
            self.drops["too_large"] += 1
            return
        try:
            records = split_records(bytes(data))
        except RecordError as exc:
            self.drops[exc.reason] += 1
            return
        if self.state == "idle":
            if self.role == "client":
                self.drops["not_started"] += 1
                return
            self._begin(now)  # a server may meet the ClientHello before anyone called start()
        self.records_in += len(records)
        # One datagram per write: OpenSSL reads the memory BIO as one "packet" and drops a bad packet whole.
        self._conn.bio_write(bytes(data))
        if self.state == "handshaking":
            self._handshake(now)
        else:
            self._read_after_handshake()
        self._flush()

    def datagrams_to_send(self, now: float) -> list[bytes]:
        out, self._outbox = self._outbox, []
        return out

    def get_timer(self) -> float | None:
        """When handle_timer() is next due, in the clock of the `now` values passed in."""
        if self.state not in ("handshaking", "awaiting_fingerprint"):
            return None
        times = [t for t in (self._deadline, self._retransmit_at) if t is not None]
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        if self.state not in ("handshaking", "awaiting_fingerprint"):
            return
        if self._deadline is not None and now >= self._deadline:
            self._fail("no fingerprint" if self.state == "awaiting_fingerprint" else "handshake timeout")
        elif self.state == "handshaking" and self._retransmit_at is not None and now >= self._retransmit_at:
            try:
                if self._conn.DTLSv1_handle_timeout():
                    self.retransmissions += 1
            except SSL.Error as exc:
                self._fail(f"retransmission limit: {_describe(exc)}")
            else:
                self._update_retransmit(now)
        self._flush()

    def next_event(self) -> DtlsEvent | None:
        return self._events.popleft() if self._events else None

    def close(self, now: float) -> None:
        """Send close_notify (if the handshake got far enough) and stop."""
        if self.state in ("failed", "closed"):
            return
        self._shutdown()
        self.state = "closed"
        self._pending = None
        self._flush()

    # -- internals -------------------------------------------------------------------------------------------

    def _begin(self, now: float) -> None:
        self.state = "handshaking"
        self._deadline = now + self.handshake_timeout

    def _verify(self, conn: SSL.Connection, cert: crypto.X509, errno: int, depth: int, ok: int) -> bool:
        # Any chain is acceptable; only the leaf matters, and only against the SDP fingerprint, if we have it.
        if depth != 0 or self._expected is None:
            return True
        der = crypto.dump_certificate(crypto.FILETYPE_ASN1, cert)
        if self._expected.matches_der(der):
            return True
        self._mismatch = str(Fingerprint.of_der(der, self._expected.algorithm))
        return False

    def _handshake(self, now: float) -> None:
        try:
            self._conn.do_handshake()
        except SSL.WantReadError:
            self._update_retransmit(now)
            return
        except SSL.Error as exc:
            if self._mismatch is not None and self._expected is not None:
                self._end(FingerprintMismatch(str(self._expected), self._mismatch))
            else:
                self._fail(_describe(exc))
            return
        self._retransmit_at = None
        self._finish_handshake()

    def _update_retransmit(self, now: float) -> None:
        remaining = self._conn.DTLSv1_get_timeout()
        self._retransmit_at = None if remaining is None else now + remaining

    def _finish_handshake(self) -> None:
        profile = _profiles.from_openssl(self._conn.get_selected_srtp_profile())
        if profile is None:
            self._shutdown()
            self._fail("no common SRTP profile")
            return
        cert = self._conn.get_peer_certificate()
        if cert is None:
            self._shutdown()
            self._fail("peer sent no certificate")
            return
        length = _profiles.material_length(profile)
        material = self._conn.export_keying_material(_profiles.EXPORTER_LABEL, length)
        client_key, server_key, client_salt, server_salt = _profiles.split_material(profile, material)
        binding = self._conn.export_keying_material(
            _profiles.CHANNEL_BINDING_LABEL, _profiles.CHANNEL_BINDING_LEN
        )
        if self.role == "client":
            secure = DtlsSecure(profile, client_key, client_salt, server_key, server_salt, binding)
        else:
            secure = DtlsSecure(profile, server_key, server_salt, client_key, client_salt, binding)
        self._peer_der = crypto.dump_certificate(crypto.FILETYPE_ASN1, cert)
        self._pending = secure
        self.state = "awaiting_fingerprint"
        if self._expected is not None:
            self._release()

    def _release(self) -> None:
        """The fingerprint check after the handshake: the only way keys leave this object."""
        assert self._expected is not None and self._peer_der is not None and self._pending is not None
        secure, self._pending = self._pending, None
        if self._expected.matches_der(self._peer_der):
            self.state = "secure"
            self._events.append(secure)
            return
        self._shutdown()
        got = Fingerprint.of_der(self._peer_der, self._expected.algorithm)
        self._end(FingerprintMismatch(str(self._expected), str(got)))

    def _read_after_handshake(self) -> None:
        # Lets OpenSSL answer a retransmitted final flight and notice alerts; we carry no application data.
        while True:
            try:
                data = self._conn.recv(_READ_CHUNK)
            except SSL.WantReadError:
                return
            except SSL.ZeroReturnError:
                self._pending = None
                self.state = "closed"
                self._events.append(DtlsClosed())
                return
            except SSL.Error as exc:
                self._fail(_describe(exc))
                return
            if data:
                self.drops["application_data"] += 1

    def _shutdown(self) -> None:
        try:
            self._conn.shutdown()
        except SSL.Error:
            pass  # nothing sensible to send (e.g. no handshake yet)

    def _fail(self, reason: str) -> None:
        self._end(DtlsFailed(reason))

    def _end(self, event: DtlsEvent) -> None:
        self._pending = None
        self._retransmit_at = None
        self.state = "failed"
        self._events.append(event)

    def _flush(self) -> None:
        chunks = []
        while True:
            try:
                chunk = self._conn.bio_read(_READ_CHUNK)
            except SSL.WantReadError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        if not chunks:
            return
        try:
            records = split_records(b"".join(chunks))
        except RecordError as exc:  # OpenSSL wrote something that is not DTLS: a bug, not a peer's fault
            self._fail(f"unframeable output: {exc.reason}")
            return
        self._outbox.extend(pack_datagrams(records, self.mtu))


def _describe(exc: SSL.Error) -> str:
    """OpenSSL's reason strings, no data from the handshake."""
    parts: list[str] = []
    for entry in exc.args[0] if exc.args and isinstance(exc.args[0], list) else []:
        if isinstance(entry, tuple) and entry:
            parts.append(str(entry[-1]))
    return "; ".join(parts) or type(exc).__name__

