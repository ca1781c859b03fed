"""The LAN peer table (by ZID, capped, rate-limited) and how discovered units stand against the trust list."""

from __future__ import annotations

from dataclasses import dataclass

from zcall.discovery.roster import Listing, Standing, classify, name_key, verified_owner
from zcall.discovery.service import PeerDown, PeerUp
from zcall.discovery.table import PeerTable

BOB, MALLORY, CAROL = bytes([0xB0]) * 12, bytes([0x66]) * 12, bytes([0xC0]) * 12


def up(name: str, zid: bytes, address: str = "10.0.0.2") -> PeerUp:
    return PeerUp(name=name, zid=zid, address=address, port=5060, sip_port=5060)


@dataclass(frozen=True)
class Entry:
    zid: bytes
    name: str
    verified: bool


def test_two_units_with_one_name_are_both_listed() -> None:
    table = PeerTable()
    assert table.update(up("Bob", BOB)) == [up("Bob", BOB)]
    assert table.update(up("Bob", MALLORY, "10.0.0.66")) == [up("Bob", MALLORY, "10.0.0.66")]
    assert {p.zid for p in table.peers()} == {BOB, MALLORY}
    assert table.update(up("Bob", BOB)) == []  # nothing changed, nothing said
    # A goodbye for the name cannot say whose it was: both go (each re-announces if still there).
    assert set(table.remove_name("bob")) == {PeerDown("Bob", MALLORY), PeerDown("Bob", BOB)}
    assert table.peers() == []


def test_a_unit_that_renames_stays_one_entry() -> None:
    table = PeerTable()
    table.update(up("Bob", BOB))
    assert table.update(up("Bob (2)", BOB)) == [up("Bob (2)", BOB)]
    assert table.remove_name("Bob") == []  # its old name's goodbye does not remove it
    assert [p.name for p in table.peers()] == ["Bob (2)"]


def test_the_table_is_capped() -> None:
    table = PeerTable(capacity=4)
    for n in range(10):
        table.update(up(f"u{n}", bytes([n]) * 12))
    assert len(table.peers()) == 4 and table.drops["table-full"] == 6
    assert table.update(up("u0 moved", bytes([0]) * 12, "10.0.0.9"))  # a listed unit still updates


def test_lookups_are_rate_limited_on_the_clock() -> None:
    table = PeerTable(rate=10.0, burst=5)
    admitted = sum(table.admit_resolve(0.0) for _ in range(50))
    assert admitted == 5 and table.drops["rate-limited"] == 45
    assert sum(table.admit_resolve(1.0) for _ in range(50)) == 5  # refilled to the burst, not beyond
    assert sum(table.admit_resolve(1.25) for _ in range(50)) == 2  # 10 per second: 2.5 tokens


def test_names_compare_without_case_or_conflict_suffix() -> None:
    assert name_key(" Bob (2)") == name_key("bob") == "bob"
    assert name_key("Bob (office)") != name_key("Bob")


def test_impostor_claiming_a_verified_name_is_listed_apart() -> None:
    trusted = [Entry(BOB, "Bob", True), Entry(CAROL, "Carol", False)]
    peers = [up("Bob (2)", MALLORY), up("Bob", BOB), up("Carol", CAROL), up("Dave", bytes(12))]
    listings = classify(peers, trusted)
    assert [(item.peer.name, item.standing) for item in listings] == [
        ("Bob", Standing.VERIFIED),
        ("Carol", Standing.KNOWN),
        ("Dave", Standing.NEW),
        ("Bob (2)", Standing.IMPOSTOR),
    ]
    assert listings[-1] == Listing(up("Bob (2)", MALLORY), Standing.IMPOSTOR, claims=BOB)
    assert verified_owner("bob", trusted) == BOB and verified_owner("Carol", trusted) is None


def test_the_verified_device_under_another_name_is_still_itself() -> None:
    # Names from the network rename nothing: Bob announcing "Kitchen" is still verified Bob.
    (listing,) = classify([up("Kitchen", BOB)], [Entry(BOB, "Bob", True)])
    assert listing.standing is Standing.VERIFIED


def test_an_unverified_entry_with_the_name_is_no_reference() -> None:
    (listing,) = classify([up("Carol", MALLORY)], [Entry(CAROL, "Carol", False)])
    assert listing.standing is Standing.NEW
