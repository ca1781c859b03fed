"""DTLS-SRTP benchmark: CPU time of one complete in-memory handshake (both sides) per SRTP profile through
DtlsSrtpSession, split per side, next to the floor -- the same handshake on bare pyOpenSSL connections with
memory BIOs and no wrapper -- with the ratio; plus bytes and datagrams on the wire. Prints figures; asserts
only that the handshakes work.
"""

from __future__ import annotations

import time

import pytest
from OpenSSL import SSL

from tests.unit.dtls.harness import Cred, make_cred, session
from zcall.dtls import DEFAULT_PROFILES, DtlsSecure, DtlsSrtpSession
from zcall.dtls.profiles import EXPORTER_LABEL, OPENSSL_NAMES, material_length

ROUNDS = 40
ALICE, BOB = make_cred("alice"), make_cred("bob")


def _wrapped(profile: str) -> tuple[float, float, float, int, int]:
    """Seconds of CPU per handshake: total, client side, server side; then bytes and datagrams."""
    client_cpu = server_cpu = 0.0
    wire_bytes = wire_datagrams = 0
    start = time.process_time()
    for _ in range(ROUNDS):
        t = time.process_time()
        client = session("client", ALICE, BOB, profiles=(profile,))
        client.start(0.0)
        client_cpu += time.process_time() - t
        t = time.process_time()
        server = session("server", BOB, ALICE, profiles=(profile,))
        server_cpu += time.process_time() - t
        ends: list[tuple[DtlsSrtpSession, DtlsSrtpSession]] = [(client, server), (server, client)]
        moved = True
        while moved:
            moved = False
            for src, dst in ends:
                t = time.process_time()
                batch = src.datagrams_to_send(0.0)
                cost = time.process_time() - t
                t = time.process_time()
                for datagram in batch:
                    dst.receive(datagram, 0.0)
                    wire_bytes += len(datagram)
                    wire_datagrams += 1
                cost_dst = time.process_time() - t
                if src is client:
                    client_cpu, server_cpu = client_cpu + cost, server_cpu + cost_dst
                else:
                    server_cpu, client_cpu = server_cpu + cost, client_cpu + cost_dst
                moved = moved or bool(batch)
        assert isinstance(client.next_event(), DtlsSecure) and isinstance(server.next_event(), DtlsSecure)
    total = time.process_time() - start
    per = ROUNDS
    return total / per, client_cpu / per, server_cpu / per, wire_bytes // per, wire_datagrams // per


def _context(cred: Cred, profile: str) -> SSL.Context:
    ctx = SSL.Context(SSL.DTLS_METHOD)
    ctx.use_certificate(cred.certificate)
    ctx.use_privatekey(cred.private_key)
    ctx.set_tlsext_use_srtp(OPENSSL_NAMES[profile].encode())
    ctx.set_verify(SSL.VERIFY_PEER, lambda *args: True)
    return ctx


def _floor(profile: str) -> float:
    """Bare pyOpenSSL: the same handshake and key export with no framing, checks or events."""
    start = time.process_time()
    for _ in range(ROUNDS):
        client = SSL.Connection(_context(ALICE, profile), None)
        server = SSL.Connection(_context(BOB, profile), None)
        client.set_connect_state()
        server.set_accept_state()
        done = {id(client): False, id(server): False}
        for _ in range(20):
            for conn in (client, server):
                if not done[id(conn)]:
                    try:
                        conn.do_handshake()
                        done[id(conn)] = True
                    except SSL.WantReadError:
                        pass
            for src, dst in ((client, server), (server, client)):
                try:
                    dst.bio_write(src.bio_read(65536))
                except SSL.WantReadError:
                    pass
            if all(done.values()):
                break
        assert all(done.values())
        for conn in (client, server):
            conn.export_keying_material(EXPORTER_LABEL, material_length(profile))
    return (time.process_time() - start) / ROUNDS


@pytest.mark.parametrize("profile", DEFAULT_PROFILES)
def test_handshake_cpu_per_profile(profile: str) -> None:
    _wrapped(profile)  # warm up
    (total, client, server, wire_bytes, datagrams), floor = _wrapped(profile), _floor(profile)
    print(
        f"\nDTLS-SRTP {profile}: handshake (both sides) {total * 1e3:6.2f} ms CPU "
        f"(client {client * 1e3:5.2f}, server {server * 1e3:5.2f}); bare pyOpenSSL {floor * 1e3:6.2f} ms; "
        f"ratio {total / floor:4.2f}x; {wire_bytes} bytes in {datagrams} datagrams"
    )
