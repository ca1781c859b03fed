"""DTLS before the SDP answer (issue 13 item 4): offering actpass, we become the DTLS server once the answer
says the peer is active, and the peer's ClientHello often beats its answer. Whatever arrives before the answer
is held, not answered: no session starts on a datagram from an address nobody signalled, and when the answer
comes only what came from its address is handed to the handshake. A third host that got its ClientHello in
first neither owns the handshake nor hears from us."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.unit.dtls.harness import Cred, make_cred
from tests.unit.test_server_words import identity, params
from zcall.keying import MAX_EARLY_DTLS, DtlsKeying, KeyAlarm, KeyEvent, KeyFailed, KeysReady
from zcall.net import Addr

BOB: Addr = ("192.0.2.2", 4002)
MALLORY: Addr = ("192.0.2.66", 4066)


@pytest.fixture(scope="module")
def creds() -> dict[str, Cred]:
    return {name: make_cred(name) for name in ("alice", "bob", "mallory")}


def _keys(name: str, cred: Cred) -> DtlsKeying:
    return DtlsKeying(identity(bytes([ord(name[0])]) * 12, cred), name)


def _events(keys: DtlsKeying) -> list[KeyEvent]:
    out = []
    while (event := keys.next_event()) is not None:
        out.append(event)
    return out


def _handshake(alice: DtlsKeying, bob: DtlsKeying, now: float) -> tuple[list[KeyEvent], list[KeyEvent]]:
    """Datagrams straight between the two until neither has more to say."""
    got: tuple[list[KeyEvent], list[KeyEvent]] = ([], [])
    for _ in range(20):
        to_bob, to_alice = alice.datagrams_to_send(now), bob.datagrams_to_send(now)
        if not to_bob and not to_alice:
            break
        for data in to_bob:
            bob.receive(data, now)
        for data in to_alice:
            alice.receive(data, now)
        got[0].extend(_events(alice))
        got[1].extend(_events(bob))
        now += 0.01
    return got


def test_a_third_hosts_early_client_hello_neither_owns_the_handshake_nor_is_answered(
    creds: dict[str, Cred],
) -> None:
    alice, bob, mallory = (_keys(n, creds[n]) for n in ("alice", "bob", "mallory"))
    offer = params(creds["alice"].fingerprint, "actpass", None)
    for client in (mallory, bob):
        client.start(offer, offerer=False, now=0.0)  # each goes active and sends its ClientHello at once
    for data in mallory.datagrams_to_send(0.0):
        alice.hold_early(data, MALLORY)  # mallory's comes first
    for data in bob.datagrams_to_send(0.0):
        alice.hold_early(data, BOB)
    assert alice.session is None and alice.datagrams_to_send(0.0) == []  # nothing answered blind

    answer = replace(params(creds["bob"].fingerprint, "active", None), host=BOB[0], port=BOB[1])
    alice.start(answer, offerer=True, now=0.02)
    got_alice, got_bob = _handshake(alice, bob, 0.02)
    assert [type(e) for e in got_alice] == [KeysReady] and [type(e) for e in got_bob] == [KeysReady]
    ready_a, ready_b = got_alice[0], got_bob[0]
    assert isinstance(ready_a, KeysReady) and isinstance(ready_b, KeysReady)
    assert ready_a.tx == ready_b.rx and ready_a.rx == ready_b.tx
    assert not any(isinstance(e, (KeyAlarm, KeyFailed)) for e in (*got_alice, *got_bob))


def test_held_datagrams_are_bounded_and_dropped_once_the_session_runs(creds: dict[str, Cred]) -> None:
    alice = _keys("alice", creds["alice"])
    for n in range(5 * MAX_EARLY_DTLS):
        alice.hold_early(bytes([22, 0xFE, 0xFD]) + n.to_bytes(4, "big"), MALLORY)
    assert len(alice._early_dtls) == MAX_EARLY_DTLS  # a flood before the answer costs a few datagrams
    answer = replace(params(creds["bob"].fingerprint, "active", None), host=BOB[0], port=BOB[1])
    alice.start(answer, offerer=True, now=0.0)
    assert alice.session is not None and alice.datagrams_to_send(0.0) == []  # nothing from BOB: nothing said
    alice.hold_early(b"\x16late", MALLORY)  # the session runs: holding is over
    assert alice.datagrams_to_send(0.0) == []
