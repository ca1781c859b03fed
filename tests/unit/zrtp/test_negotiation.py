"""negotiation.py: what we offer, what the initiator picks from a Hello, what the responder accepts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zcall.zrtp import crypto
from zcall.zrtp import messages as m
from zcall.zrtp.errors import Abort, ZrtpErrorCode
from zcall.zrtp.negotiation import Choice, Offer, name, wire

DEFAULT = Offer(("S256", "S384"), ("AES1", "AES3"), ("HS80", "HS32"), ("X255", "DH3k"), ("B256", "B32"))
DEFAULT_EC38 = Offer(DEFAULT.hashes, DEFAULT.ciphers, DEFAULT.auths, ("EC38", "X255"), DEFAULT.sas_types)


def _hello(offer: Offer) -> m.Hello:
    parsed = m.parse_message(offer.hello("peer", bytes(32), bytes(range(12))).encode())
    assert isinstance(parsed, m.Hello)
    return parsed


def _only(*one_each: str) -> Offer:
    """An offer of one algorithm of each kind."""
    return Offer(*((alg,) for alg in one_each))


def _commit(choice: Choice) -> m.Commit:
    return m.Commit(
        bytes(32),
        bytes(12),
        wire(choice.hash),
        wire(choice.cipher),
        wire(choice.auth),
        wire(choice.key_agreement),
        wire(choice.sas),
        bytes(16 if choice.key_agreement in ("Mult", "Prsh") else 32),
        bytes(8) if choice.key_agreement == "Prsh" else b"",
    )


def test_wire_names_are_padded_words() -> None:
    assert wire("B32") == b"B32 " and name(b"B32 ") == "B32" and name(wire("X255")) == "X255"


@pytest.mark.parametrize(
    "kw",
    [
        {"hashes": ()},
        {"hashes": ("MD5 ",)},
        {"ciphers": ("AES1",) * 8},
        {"auths": ("SK32",)},
        {"key_agreements": ("EC52",)},
        {"sas_types": ("B64",)},
    ],
)
def test_offer_refuses_empty_unknown_or_too_many(kw: dict[str, tuple[str, ...]]) -> None:
    fields = {
        "hashes": DEFAULT.hashes,
        "ciphers": DEFAULT.ciphers,
        "auths": DEFAULT.auths,
        "key_agreements": DEFAULT.key_agreements,
        "sas_types": DEFAULT.sas_types,
    }
    fields.update(kw)
    with pytest.raises(ValueError, match="algorithms"):
        Offer(**fields)


def test_hello_lists_the_offer_and_pads_the_client_id() -> None:
    hello = _hello(DEFAULT)
    assert hello.hashes == (b"S256", b"S384") and hello.sas_types == (b"B256", b"B32 ")
    assert hello.key_agreements == (b"X255", b"DH3k") and hello.version == m.VERSION
    assert hello.client_id == b"peer".ljust(16)
    long = m.parse_message(DEFAULT.hello("x" * 40, bytes(32), bytes(12)).encode())
    assert isinstance(long, m.Hello) and long.client_id == b"x" * 16


def test_choose_takes_our_order_among_the_peers_algorithms() -> None:
    peer = Offer(("S384", "S256"), ("AES3", "AES1"), ("HS32", "HS80"), ("DH3k", "X255"), ("B32", "B256"))
    assert DEFAULT.choose(_hello(peer)) == Choice("S256", "AES1", "HS80", "X255", "B256")


def test_choose_ec38_prefers_sha384_and_aes256() -> None:
    ours = Offer(("S256", "S384"), ("AES1", "AES3"), ("HS80",), ("EC38",), ("B32",))
    assert ours.choose(_hello(ours)) == Choice("S384", "AES3", "HS80", "EC38", "B32")


def test_ec38_is_only_chosen_with_sha384() -> None:
    # §5.1.5: with EC38 the negotiated hash MUST be SHA-384; without S384 on both sides, EC38 is passed over.
    ours = Offer(("S256", "S384"), ("AES1", "AES3"), ("HS80",), ("EC38", "X255"), ("B32",))
    peer = Offer(("S256",), ("AES1", "AES3"), ("HS80",), ("EC38", "X255"), ("B32",))
    assert ours.choose(_hello(peer)) == Choice("S256", "AES1", "HS80", "X255", "B32")
    assert peer.choose(_hello(ours)) == Choice("S256", "AES1", "HS80", "X255", "B32")  # both ends agree
    only_ec38 = Offer(("S256",), ("AES1",), ("HS80",), ("EC38",), ("B32",))
    assert ours.choose(_hello(only_ec38)).key_agreement == "DH3k"  # the mandatory one, listed or not


def test_accept_refuses_ec38_with_a_256_bit_hash() -> None:
    with pytest.raises(Abort) as info:
        DEFAULT_EC38.accept(_commit(Choice("S256", "AES3", "HS80", "EC38", "B32")))
    assert info.value.code == ZrtpErrorCode.HASH
    assert DEFAULT_EC38.accept(_commit(Choice("S384", "AES3", "HS80", "EC38", "B32"))).hash == "S384"


@pytest.mark.parametrize(
    ("peer", "expected"),
    [
        (_only("S384", "AES1", "HS80", "X255", "B32"), Choice("S256", "AES1", "HS80", "X255", "B32")),
        (_only("S256", "AES3", "HS80", "X255", "B32"), Choice("S256", "AES1", "HS80", "X255", "B32")),
        (_only("S256", "AES1", "HS32", "X255", "B32"), Choice("S256", "AES1", "HS80", "X255", "B32")),
        (_only("S256", "AES1", "HS80", "EC25", "B32"), Choice("S256", "AES1", "HS80", "DH3k", "B32")),
        (_only("S256", "AES1", "HS80", "X255", "B256"), Choice("S256", "AES1", "HS80", "X255", "B32")),
    ],
)
def test_nothing_listed_in_common_falls_back_to_a_mandatory_one(peer: Offer, expected: Choice) -> None:
    # §5.2: a mandatory algorithm (S256, AES1, HS32/HS80, DH3k, B32) that a Hello leaves out is implicitly at
    # the end of its list, on either side; so the exchange goes on with it instead of failing.
    choice = _only("S256", "AES1", "HS80", "X255", "B32").choose(_hello(peer))
    assert choice == expected
    assert peer.accept(_commit(choice)) == choice


def test_a_hello_listing_nothing_means_the_mandatory_algorithms() -> None:
    empty = m.Hello(m.VERSION, bytes(16), bytes(32), bytes(12), (), (), (), (), ())
    parsed = m.parse_message(empty.encode())
    assert isinstance(parsed, m.Hello)
    assert DEFAULT.choose(parsed) == Choice("S256", "AES1", "HS80", "DH3k", "B32")


def test_accept_checks_every_algorithm_of_a_commit() -> None:
    good = Choice("S384", "AES3", "HS32", "DH3k", "B32")
    assert DEFAULT.accept(_commit(good)) == good
    for bad, code in (
        (Choice("S256", "AES1", "HS80", "Prsh", "B32"), ZrtpErrorCode.NO_SHARED_SECRET),
        (Choice("S256", "AES1", "HS80", "Mult", "B32"), ZrtpErrorCode.NO_SHARED_SECRET),
        (Choice("N256", "AES1", "HS80", "X255", "B32"), ZrtpErrorCode.HASH),
        (Choice("S256", "2FS1", "HS80", "X255", "B32"), ZrtpErrorCode.CIPHER),
        (Choice("S256", "AES1", "SK32", "X255", "B32"), ZrtpErrorCode.AUTH),
        (Choice("S256", "AES1", "HS80", "EC25", "B32"), ZrtpErrorCode.KEY_AGREEMENT),
        (Choice("S256", "AES1", "HS80", "X255", "B10"), ZrtpErrorCode.SAS),
    ):
        with pytest.raises(Abort) as info:
            DEFAULT.accept(_commit(bad))
        assert info.value.code == code, bad


def _subset(known: tuple[str, ...]) -> st.SearchStrategy[tuple[str, ...]]:
    return st.lists(st.sampled_from(known), min_size=1, max_size=len(known), unique=True).map(tuple)


@settings(max_examples=60, deadline=None)
@given(
    st.tuples(
        _subset(tuple(crypto.HASHES)),
        _subset(tuple(crypto.CIPHER_KEY_LEN)),
        _subset(crypto.AUTH_TAGS),
        _subset(crypto.KEY_AGREEMENTS),
        _subset(crypto.SAS_TYPES),
    ),
    st.tuples(
        _subset(tuple(crypto.HASHES)),
        _subset(tuple(crypto.CIPHER_KEY_LEN)),
        _subset(crypto.AUTH_TAGS),
        _subset(crypto.KEY_AGREEMENTS),
        _subset(crypto.SAS_TYPES),
    ),
)
def test_a_choice_is_in_both_offers_and_the_peer_accepts_it(
    ours_lists: tuple[tuple[str, ...], ...], theirs_lists: tuple[tuple[str, ...], ...]
) -> None:
    ours, theirs = Offer(*ours_lists), Offer(*theirs_lists)
    choice = ours.choose(_hello(theirs))  # never fails: the mandatory algorithms are always common (§5.2)
    if choice.key_agreement == "EC38":
        assert choice.hash == "S384"
    picked = (choice.hash, choice.cipher, choice.auth, choice.key_agreement, choice.sas)
    mandatory = (("S256",), ("AES1",), ("HS80", "HS32"), ("DH3k",), ("B32",))
    for kind, (value, a, b, must) in enumerate(zip(picked, ours_lists, theirs_lists, mandatory, strict=True)):
        assert value in (*a, *must) and value in (*b, *must)
        if kind != 3:  # key agreements follow §4.1.2's speed rule instead
            assert value in a or not set(a) & set(b)  # one we listed in common wins over an implicit one
    assert theirs.accept(_commit(choice)) == choice
