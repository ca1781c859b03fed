"""SipEndpoint: user agents on real loopback sockets, with the event loop's clock driving their timers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.pki import CertificateAuthority
from tests.unit.sip.samples import SDP
from zcall.sip.dialog import (
    CallAnswered,
    CallConfirmed,
    CallEnded,
    CallFailed,
    IncomingCall,
    OptionsResult,
    UaConfig,
    UaEvent,
)
from zcall.sip.endpoint import SipEndpoint
from zcall.sip.transaction import Timers
from zcall.sip.transport import client_tls_context, server_tls_context

LOOP = "127.0.0.1"
FAST = Timers(t1=0.01, t2=0.04, t4=0.05)  # Timer B/F = 0.64 s


async def _expect(ep: SipEndpoint, kind: type[UaEvent], timeout: float = 5.0) -> UaEvent:
    while True:
        event = await ep.next_event(timeout)
        if isinstance(event, kind):
            return event


async def _call(alice: SipEndpoint, bob: SipEndpoint, target: str, *, bob_hangs_up: bool = True) -> None:
    call_id = alice.ua.invite(target, SDP, alice.now())
    alice.flush()
    incoming = await _expect(bob, IncomingCall)
    assert isinstance(incoming, IncomingCall) and incoming.sdp == SDP
    bob.ua.ringing(call_id, bob.now())
    bob.ua.answer(call_id, SDP, bob.now())
    bob.flush()
    assert await _expect(alice, CallAnswered) == CallAnswered(call_id, SDP)
    assert await _expect(bob, CallConfirmed) == CallConfirmed(call_id, b"")
    hangs_up, other = (bob, alice) if bob_hangs_up else (alice, bob)
    hangs_up.ua.bye(call_id, hangs_up.now())
    hangs_up.flush()
    assert await _expect(other, CallEnded) == CallEnded(call_id, "bye")


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
async def test_call_over_loopback(transport: str) -> None:
    alice = SipEndpoint(UaConfig(LOOP, 0, transport, user="alice"))
    bob = SipEndpoint(UaConfig(LOOP, 0, transport, user="bob"))
    try:
        await alice.start()
        _, port = await bob.start()
        assert bob.ua.config.port == port != 0
        suffix = ";transport=tcp" if transport == "TCP" else ""
        await _call(alice, bob, f"sip:bob@{LOOP}:{port}{suffix}")
        assert alice.send_errors == [] and bob.send_errors == []
    finally:
        await alice.close()
        await bob.close()


async def test_timers_run_on_the_loop_clock() -> None:
    """Nobody listens: Timer E retransmits and Timer F ends the OPTIONS after 64*T1."""
    silent = SipEndpoint(UaConfig(LOOP, 0, "UDP", user="void"))
    alice = SipEndpoint(UaConfig(LOOP, 0, "UDP", user="alice", timers=FAST))
    try:
        _, void_port = await silent.start()
        silent.ua.receive = lambda *a, **k: None  # type: ignore[method-assign]  # a deaf peer
        await alice.start()
        started = alice.now()
        token = alice.ua.options(f"sip:void@{LOOP}:{void_port}", started)
        alice.flush()
        result = await _expect(alice, OptionsResult)
        assert result == OptionsResult(token, 408, None)
        assert 0.6 <= alice.now() - started < 3.0
    finally:
        await alice.close()
        await silent.close()


async def test_tls_call_and_refused_certificate(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path / "pki")
    leaf = ca.server_cert(LOOP, "sip.test")
    server_ctx = server_tls_context(str(leaf.cert_path), str(leaf.key_path))
    bob = SipEndpoint(UaConfig(LOOP, 0, "TLS", user="bob"), server_ssl=server_ctx)
    alice = SipEndpoint(
        UaConfig(LOOP, 5999, "TLS", user="alice"),
        client_ssl=client_tls_context(str(ca.cert_path)),
        server_hostname="sip.test",
    )
    mallory = SipEndpoint(
        UaConfig(LOOP, 5998, "TLS", user="mallory", timers=FAST),
        client_ssl=client_tls_context(str(ca.cert_path)),
        server_hostname="elsewhere.test",
    )
    try:
        _, port = await bob.start()
        await alice.start()
        await mallory.start()
        # Alice has no listener: Bob answers over the connection she opened, and she hangs up.
        await _call(alice, bob, f"sips:bob@{LOOP}:{port}", bob_hangs_up=False)
        call_id = mallory.ua.invite(f"sips:bob@{LOOP}:{port}", SDP, mallory.now())
        mallory.flush()
        failed = await _expect(mallory, CallFailed)
        assert failed == CallFailed(call_id, 408, "Request Timeout")
        assert mallory.send_errors and "SSLCertVerificationError" in mallory.send_errors[0]
        with pytest.raises(asyncio.TimeoutError):
            await _expect(bob, IncomingCall, timeout=0.2)
    finally:
        for ep in (alice, bob, mallory):
            await ep.close()
