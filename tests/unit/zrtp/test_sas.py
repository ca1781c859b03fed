"""SAS rendering against published vectors and an independent reading of RFC 6189 §5.1.6."""

from __future__ import annotations

import pytest

from zcall.zrtp import sas

# Published z-base-32 vector: zbase32("hello") == "pb1sa5dx". ZRTP's B32 alphabet is z-base-32's, and B32 is
# the first 4 characters (20 bits) of the 32-bit sasvalue, so sasvalue b"hell" must read "pb1s".
ZBASE32_HELLO = (b"hell", "pb1s")

# Published PGP word list vectors (PGPfone manual / word list): a byte at an even position is read from the
# even list, at an odd position from the odd list.
B256_VECTORS = [
    (bytes.fromhex("00000000"), ("aardvark", "adroitness")),
    (bytes.fromhex("ffff0000"), ("Zulu", "Yucatan")),
    (bytes.fromhex("d1c20000"), ("stairway", "repellent")),
    (bytes.fromhex("25e40000"), ("bombast", "tradition")),
    (bytes.fromhex("ea5b0000"), ("Trojan", "exodus")),
    (bytes.fromhex("9e9e0000"), ("quiver", "onlooker")),
]


def b32_by_bit_string(value: bytes) -> str:
    """The RFC's words taken literally: write out the bits, take the leftmost 20, cut into 5-bit groups."""
    bits = "".join(f"{byte:08b}" for byte in value)[:20]
    return "".join(sas.B32_ALPHABET[int(bits[i : i + 5], 2)] for i in range(0, 20, 5))


def test_alphabet_is_the_rfc_one() -> None:
    assert sas.B32_ALPHABET == "ybndrfg8ejkmcpqxot1uwisza345h769"
    assert len(set(sas.B32_ALPHABET)) == 32


def test_b32_published_zbase32_vector() -> None:
    value, expected = ZBASE32_HELLO
    assert sas.render_b32(value) == expected
    assert sas.render("B32", value) == (expected, [expected])


@pytest.mark.parametrize(
    "value",
    [bytes(4), b"\xff" * 4, bytes.fromhex("0000f000"), bytes.fromhex("00000fff"), bytes(range(32))],
)
def test_b32_matches_bit_string_reading(value: bytes) -> None:
    assert sas.render_b32(value) == b32_by_bit_string(value)


def test_b32_edges() -> None:
    assert sas.render_b32(bytes(4)) == "yyyy"
    assert sas.render_b32(b"\xff" * 4) == "9999"
    # Only the leftmost 20 bits count: the last 12 of sasvalue and anything after are ignored.
    assert sas.render_b32(bytes.fromhex("00000fff") + b"\xaa" * 28) == "yyyy"
    assert sas.render_b32(bytes.fromhex("00001000")) == "yyyb"


@pytest.mark.parametrize(("value", "words"), B256_VECTORS)
def test_b256_published_vectors(value: bytes, words: tuple[str, str]) -> None:
    assert sas.render_b256(value) == words
    assert sas.render("B256", value) == (f"{words[0]} {words[1]}", list(words))


def test_b256_uses_only_the_leftmost_16_bits() -> None:
    assert sas.render_b256(bytes.fromhex("d1c2ffff") + bytes(28)) == ("stairway", "repellent")


def test_word_lists_are_complete_and_distinct() -> None:
    even, odd = sas.pgp_words()
    assert len(even) == len(odd) == 256
    assert len({w.lower() for w in even + odd}) == 512
    # The even list holds two-syllable words, the odd list three-syllable ones: spot-check both ends.
    assert (even[0x17], odd[0x17]) == ("banjo", "bookseller")
    assert (even[0x80], odd[0x80]) == ("merit", "intention")


@pytest.mark.parametrize("bad", [b"", b"abc", bytes(65)])
def test_rejects_wrong_lengths(bad: bytes) -> None:
    with pytest.raises(sas.SasError):
        sas.render_b32(bad)
    with pytest.raises(sas.SasError):
        sas.render_b256(bad)


def test_rejects_unknown_type() -> None:
    with pytest.raises(sas.SasError):
        sas.render("B16", bytes(4))


def _good_list_text() -> str:
    even, odd = sas.pgp_words()
    return "\n".join(f"{i:02x} {e} {o}" for i, (e, o) in enumerate(zip(even, odd, strict=True)))


def test_word_list_parser_accepts_the_packaged_form() -> None:
    assert sas.parse_word_list(_good_list_text()) == sas.pgp_words()


@pytest.mark.parametrize(
    "damage",
    [
        lambda t: "\n".join(t.splitlines()[:-1]),  # 255 entries
        lambda t: t.replace("01 absurd adviser", "02 absurd adviser"),  # out of order
        lambda t: t.replace("absurd", "aardvark"),  # duplicate word
        lambda t: t.replace("absurd adviser", "absurd"),  # missing column
        lambda t: t.replace("absurd", "ab5urd"),  # not a word
        lambda t: t.replace("01 absurd", "zz absurd"),  # not a hex byte
        lambda t: t.replace("01 absurd", "\u0660\u0661 absurd"),  # non-ASCII digits int() would accept
        lambda t: t + "\n" + "# padding\n" * 2000,  # over the size limit
    ],
)
def test_word_list_parser_rejects_damage(damage: object) -> None:
    assert callable(damage)
    with pytest.raises(sas.WordListError):
        sas.parse_word_list(damage(_good_list_text()))
