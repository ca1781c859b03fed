"""The LAN as the phone knows it: which discovered unit a caller is (by address on the LAN, by its server
account when the call comes through the server)."""

from __future__ import annotations

from zcall import events
from zcall.discovery.service import PeerUp
from zcall.peerbook import PeerBook

ALICE, MALLORY = bytes([1]) * 12, bytes([2]) * 12


def book(*peers: PeerUp) -> PeerBook:
    seen: list[events.Event] = []
    peerbook = PeerBook(seen.append)
    peerbook.open()
    for peer in peers:
        peerbook.on_discovery(peer)
    return peerbook


def test_a_server_caller_is_the_unit_announcing_its_account() -> None:
    peers = book(
        PeerUp("alice", ALICE, "10.0.0.2", 5353, 5060, aor="alice@sip.example.org"),
        PeerUp("desk", MALLORY, "10.0.0.3", 5353, 5060),
    )
    assert peers.with_aor("Alice@SIP.example.org") == ALICE
    assert peers.with_aor("bob@sip.example.org") is None
    assert peers.at("10.0.0.2") == ALICE


def test_two_units_claiming_one_account_name_no_one() -> None:
    peers = book(
        PeerUp("alice", ALICE, "10.0.0.2", 5353, 5060, aor="alice@sip.example.org"),
        PeerUp("fake", MALLORY, "10.0.0.3", 5353, 5060, aor="alice@sip.example.org"),
    )
    assert peers.with_aor("alice@sip.example.org") is None
