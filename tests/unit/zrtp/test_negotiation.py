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
    with pytest.raises(Abort) as info:
        ours.choose(_hello(only_ec38))
    assert info.value.code == ZrtpErrorCode.KEY_AGREEMENT


def test_accept_refuses_ec38_with_a_256_bit_hash() -> None:
    with pytest.raises(Abort) as info:
        DEFAULT_EC38.accept(_commit(Choice("S256", "AES3", "HS80", "EC38", "B32")))
    assert info.value.code == ZrtpErrorCode.HASH
    assert DEFAULT_EC38.accept(_commit(Choice("S384", "AES3", "HS80", "EC38", "B32"))).hash == "S384"


@pytest.mark.parametrize(
    ("peer", "code"),
    [
        (Offer(("S384",), ("AES1",), ("HS80",), ("X255",), ("B32",)), ZrtpErrorCode.HASH),
        (Offer(("S256",), ("AES3",), ("HS80",), ("X255",), ("B32",)), ZrtpErrorCode.CIPHER),
        (Offer(("S256",), ("AES1",), ("HS32",), ("X255",), ("B32",)), ZrtpErrorCode.AUTH),
        (Offer(("S256",), ("AES1",), ("HS80",), ("EC25",), ("B32",)), ZrtpErrorCode.KEY_AGREEMENT),
        (Offer(("S256",), ("AES1",), ("HS80",), ("X255",), ("B256",)), ZrtpErrorCode.SAS),
    ],
)
def test_choose_without_common_algorithm_aborts(peer: Offer, code: int) -> None:
    ours = Offer(("S256",), ("AES1",), ("HS80",), ("X255",), ("B32",))
    with pytest.raises(Abort) as info:
        ours.choose(_hello(peer))
    assert info.value.code == code


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
    try:
        choice = ours.choose(_hello(theirs))
    except Abort as exc:
        # Only when some kind really has nothing in common (EC38 counts only with S384 on both sides).
        usable_kas = set(ours_lists[3]) & set(theirs_lists[3])
        if "S384" not in set(ours_lists[0]) & set(theirs_lists[0]):
            usable_kas.discard("EC38")
        common = [set(a) & set(b) for a, b in zip(ours_lists, theirs_lists, strict=True)]
        assert not usable_kas or any(not c for c in common), exc.reason
        return
    if choice.key_agreement == "EC38":
        assert choice.hash == "S384"
    picked = (choice.hash, choice.cipher, choice.auth, choice.key_agreement, choice.sas)
    for value, a, b in zip(picked, ours_lists, theirs_lists, strict=True):
        assert value in a and value in b
    assert theirs.accept(_commit(choice)) == choice
