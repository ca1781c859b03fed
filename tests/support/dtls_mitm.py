"""A man in the middle of DTLS-SRTP built from zcall's own cores: the server path's strongest attacker.

`DtlsMitm` is the sans-I/O core (tests drive it in memory). `python -m tests.support.dtls_mitm --mode
relay|terminate --a IP:PORT --b IP:PORT --to-a IP:PORT --pins A.pem B.pem` runs it in a namespace: it listens
for the offerer's media on --a and the answerer's on --b, and dials the offerer's real media address
(--to-a) as its DTLS client. The SIP server rewrites the SDP (c=, m=, a=fingerprint and, terminating ZRTP,
a=zrtp-hash) to point each end at it: it prints one JSON line first, {"fingerprint":..,"hash_a":..,
"hash_b":..} (hash_a is what the offerer must be shown), then {"secure": SIDE} per DTLS side and, when it
terminates ZRTP, {"sas": {"a":..,"b":..}} once both ZRTP sides are secure.
"""

from __future__ import annotations

import argparse
import datetime
import json
import selectors
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.mitm import ZrtpMitm
from zcall.dtls import DtlsSecure, DtlsSrtpSession, Role, fingerprint_of
from zcall.media.demux import PacketKind, classify
from zcall.media.srtp import SrtpError, SrtpReceiver, SrtpSender

Addr = tuple[str, int]


class DtlsMitm:
    """A man in the middle of DTLS-SRTP (the server path's attacker): one DTLS session toward each end with
    its own certificate (the SDP fingerprints rewritten to it), the audio bridged between the two sessions'
    SRTP keys. ZRTP is either relayed untouched (`zrtp="relay"`: what should give it away is ZRTP's
    auxiliary secret, the DTLS exporter value, differing at the two ends) or terminated too (`"terminate"`:
    each ZRTP side bound to its own DTLS session, so the binding holds and the words differ).

    Sans-I/O: `receive(side, data, now)` and `handle_timer(now)` return the datagrams to send, as
    (side, data) pairs; side "a" faces the offerer (DTLS server there, so we are its client), "b" the
    answerer. `pins` are the real ends' certificate fingerprints (or a callable giving them when needed)."""

    def __init__(
        self, certificate: x509.Certificate, private_key: ec.EllipticCurvePrivateKey,
        pins: Callable[[str], str], zrtp: str = "relay",
    ) -> None:  # fmt: skip
        self.zrtp = zrtp
        self._cred = (certificate, private_key)
        self._pins = pins
        self.dtls: dict[str, DtlsSrtpSession] = {}
        self.keys: dict[str, DtlsSecure] = {}
        self.zrtp_mitm = ZrtpMitm() if zrtp == "terminate" else None
        self._early_zrtp: dict[str, list[bytes]] = {"a": [], "b": []}
        self._rx: dict[str, SrtpReceiver] = {}
        self._tx: dict[str, SrtpSender] = {}
        self.relayed_zrtp = 0

    def hello_hash(self, side: str) -> str | None:
        """The a=zrtp-hash the end on `side` must be shown (terminate mode)."""
        return self.zrtp_mitm.session(side).zrtp_hash_attribute() if self.zrtp_mitm is not None else None

    def start(self, now: float) -> list[tuple[str, bytes]]:
        """Side a: we are the offerer's DTLS client, so we speak first."""
        self._session("a", now)
        return self._flush(now)

    def _session(self, side: str, now: float) -> DtlsSrtpSession:
        if side not in self.dtls:
            role: Role = "client" if side == "a" else "server"
            session = DtlsSrtpSession(role, *self._cred, self._pins(side))
            self.dtls[side] = session
            if role == "client":
                session.start(now)
        return self.dtls[side]

    def receive(self, side: str, data: bytes, now: float) -> list[tuple[str, bytes]]:
        other = "b" if side == "a" else "a"
        kind = classify(data)
        if kind is PacketKind.DTLS:
            self._session(side, now).receive(data, now)
        elif kind is PacketKind.ZRTP and self.zrtp_mitm is None:
            self.relayed_zrtp += 1
            return [(other, data)]
        elif kind is PacketKind.ZRTP:
            if side in self.keys:
                self.zrtp_mitm.session(side).receive(data, now)  # type: ignore[union-attr]
            else:
                self._early_zrtp[side].append(data)
        elif kind in (PacketKind.RTP, PacketKind.RTCP):
            bridged = self._bridge(side, other, data)
            return [(other, bridged)] if bridged is not None else []
        return self._flush(now)

    def handle_timer(self, now: float) -> list[tuple[str, bytes]]:
        for session in self.dtls.values():
            timer = session.get_timer()
            if timer is not None and timer <= now:
                session.handle_timer(now)
        if self.zrtp_mitm is not None:
            for side in self.keys:
                zrtp = self.zrtp_mitm.session(side)
                timer = zrtp.get_timer()
                if timer is not None and timer <= now:
                    zrtp.handle_timer(now)
        return self._flush(now)

    def get_timer(self) -> float | None:
        timers = [s.get_timer() for s in self.dtls.values()]
        if self.zrtp_mitm is not None:
            timers += [self.zrtp_mitm.session(side).get_timer() for side in self.keys]
        return min((t for t in timers if t is not None), default=None)

    def _flush(self, now: float) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        for side, session in self.dtls.items():
            while (event := session.next_event()) is not None:
                if isinstance(event, DtlsSecure):
                    self._secure(side, event, now)
            out += [(side, d) for d in session.datagrams_to_send(now)]
        if self.zrtp_mitm is not None:
            for side in self.keys:
                self.zrtp_mitm.pump(side, now)
                out += [(side, d) for d in self.zrtp_mitm.session(side).datagrams_to_send(now)]
        return out

    def _secure(self, side: str, keys: DtlsSecure, now: float) -> None:
        self.keys[side] = keys
        self._rx[side] = SrtpReceiver(keys.receiver_keys())
        self._tx[side] = SrtpSender(keys.sender_keys())
        if self.zrtp_mitm is not None:
            session = self.zrtp_mitm.session(side)
            session.set_aux_secret(keys.channel_binding)  # bound to our DTLS session with that end
            session.start(now)
            for data in self._early_zrtp.pop(side, []):
                session.receive(data, now)

    def _bridge(self, side: str, other: str, data: bytes) -> bytes | None:
        rx, tx = self._rx.get(side), self._tx.get(other)
        if rx is None or tx is None:
            return None
        try:
            if classify(data) is PacketKind.RTCP:
                return tx.protect_rtcp(rx.unprotect_rtcp(data))
            return tx.protect(rx.unprotect(data))
        except SrtpError:
            return None


def self_signed(name: str = "mallory") -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256())
    )  # fmt: skip
    return cert, key


def _pem_pin(path: Path) -> str:
    return fingerprint_of(x509.load_pem_x509_certificate(path.read_bytes()))


def _addr(text: str) -> Addr:
    host, _, port = text.rpartition(":")
    return host, int(port)


def run(
    mode: str, listen: dict[str, Addr], to_a: Addr, pins: dict[str, Path], out: Callable[[str], None]
) -> None:
    cert, key = self_signed()
    mitm = DtlsMitm(cert, key, lambda side: _pem_pin(pins[side]), zrtp=mode)
    socks = {side: socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for side in "ab"}
    for side, sock in socks.items():
        sock.bind(listen[side])
    remote: dict[str, Addr] = {"a": to_a}
    selector = selectors.DefaultSelector()
    for side, sock in socks.items():
        selector.register(sock, selectors.EVENT_READ, side)
    out(json.dumps({"fingerprint": fingerprint_of(cert), "hash_a": mitm.hello_hash("a"),
                    "hash_b": mitm.hello_hash("b")}))  # fmt: skip
    said: set[str] = set()

    def send(datagrams: list[tuple[str, bytes]]) -> None:
        for side, data in datagrams:
            if side in remote:
                socks[side].sendto(data, remote[side])

    started = False
    while True:
        timer = mitm.get_timer()
        timeout = 0.2 if timer is None else max(0.0, min(timer - time.monotonic(), 0.2))
        for sel_key, _ in selector.select(timeout):
            side = sel_key.data
            data, source = socks[side].recvfrom(65535)
            remote.setdefault(side, source)  # the answerer's address: where its ClientHello came from
            if not started and side == "b":
                started = True  # the call is on: now dial the offerer as its DTLS client
                send(mitm.start(time.monotonic()))
            send(mitm.receive(side, data, time.monotonic()))
        send(mitm.handle_timer(time.monotonic()))
        for side in mitm.keys:
            if side not in said:
                said.add(side)
                out(json.dumps({"secure": side}))
        ready = mitm.zrtp_mitm.ready if mitm.zrtp_mitm is not None else {}
        if len(ready) == 2 and "sas" not in said:
            said.add("sas")
            out(json.dumps({"sas": {side: r.sas_text for side, r in ready.items()}}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=("relay", "terminate"), default="relay")
    parser.add_argument("--a", required=True, type=_addr, help="where the offerer's media is sent")
    parser.add_argument("--b", required=True, type=_addr, help="where the answerer's media is sent")
    parser.add_argument("--to-a", required=True, type=_addr, help="the offerer's real media address")
    parser.add_argument("--pins", nargs=2, required=True, type=Path, metavar=("A_PEM", "B_PEM"))
    args = parser.parse_args(argv)
    pins = {"a": args.pins[0], "b": args.pins[1]}
    run(args.mode, {"a": args.a, "b": args.b}, args.to_a, pins, lambda line: print(line, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
