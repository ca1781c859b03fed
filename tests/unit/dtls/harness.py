"""Two DtlsSrtpSessions in memory, over a scripted link that can drop, reorder, duplicate."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from zcall.dtls import DtlsEvent, DtlsSecure, DtlsSrtpSession, fingerprint_of


@dataclass(frozen=True)
class Cred:
    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self.certificate)


def make_cred(name: str = "peer", kind: str = "ec") -> Cred:
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    key = ec.generate_private_key(ec.SECP256R1()) if kind == "ec" else rsa.generate_private_key(65537, 2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return Cred(cert, key)


def session(role: str, mine: Cred, theirs: Cred | None, **kw: object) -> DtlsSrtpSession:
    return DtlsSrtpSession(
        role,  # type: ignore[arg-type]
        mine.certificate,
        mine.private_key,
        theirs.fingerprint if theirs is not None else None,
        **kw,  # type: ignore[arg-type]
    )


# A link policy sees (direction, index of the datagram in that direction, datagrams of this batch)
# and returns what to deliver, in order.
Policy = Callable[[str, int, list[bytes]], list[bytes]]


def deliver_all(direction: str, first: int, batch: list[bytes]) -> list[bytes]:
    return batch


@dataclass
class Pair:
    client: DtlsSrtpSession
    server: DtlsSrtpSession
    policy: Policy = deliver_all
    sent: dict[str, list[bytes]] = field(default_factory=lambda: {"c2s": [], "s2c": []})
    events: dict[str, list[DtlsEvent]] = field(default_factory=lambda: {"client": [], "server": []})

    def pump(self, now: float) -> bool:
        """Move one round of datagrams both ways; True if anything moved."""
        moved = False
        for direction, src, dst in (("c2s", self.client, self.server), ("s2c", self.server, self.client)):
            batch = src.datagrams_to_send(now)
            if not batch:
                continue
            moved = True
            first = len(self.sent[direction])
            self.sent[direction].extend(batch)
            for datagram in self.policy(direction, first, batch):
                dst.receive(datagram, now)
        self._collect()
        return moved

    def _collect(self) -> None:
        for name, s in (("client", self.client), ("server", self.server)):
            while (event := s.next_event()) is not None:
                self.events[name].append(event)

    def settle(self, now: float, rounds: int = 50) -> None:
        """Pump until quiet, without any timer: what happens at one instant."""
        for _ in range(rounds):
            if not self.pump(now):
                return
        raise AssertionError("link never went quiet")

    def run_realtime(self, limit: float = 10.0, on_tick: Callable[[float], None] | None = None) -> float:
        """Pump and fire timers on the real clock (OpenSSL times retransmission itself) until both finish."""
        start = time.monotonic()
        self.client.start(start)
        while time.monotonic() - start < limit:
            now = time.monotonic()
            if on_tick is not None:
                on_tick(now)
            self.settle(now)
            for s in (self.client, self.server):
                timer = s.get_timer()
                if timer is not None and timer <= now:
                    s.handle_timer(now)
            self.settle(time.monotonic())
            if self.done():
                return time.monotonic() - start
            timers = [t for t in (self.client.get_timer(), self.server.get_timer()) if t is not None]
            if timers:
                time.sleep(max(0.0, min(min(timers) - time.monotonic(), 0.05)))
        raise AssertionError(f"handshake not done in {limit} s: {self.client.state}/{self.server.state}")

    def done(self) -> bool:
        busy = ("idle", "handshaking", "awaiting_fingerprint")
        return all(s.state not in busy for s in (self.client, self.server))

    def secure(self) -> tuple[DtlsSecure, DtlsSecure]:
        """Each side's first event, which must be DtlsSecure."""
        c, s = self.events["client"][0], self.events["server"][0]
        assert isinstance(c, DtlsSecure) and isinstance(s, DtlsSecure)
        return c, s
