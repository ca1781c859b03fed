"""Short Authentication String rendering (RFC 6189 §5.1.6): B32 characters and B256 PGP words.

The session computes sashash and hands us its leftmost bytes (sasvalue, or all of sashash); we only turn the
leading bits into what two people read to each other.
"""

from __future__ import annotations

import functools
import importlib.resources
import re

from zcall.errors import ZcallError

# RFC 6189 §5.1.6: the z-base-32 alphabet, ordered so the easiest characters to say come first.
B32_ALPHABET = "ybndrfg8ejkmcpqxot1uwisza345h769"

SAS_TYPES = ("B32", "B256")

_WORDS_FILE = "pgp_words.txt"
_WORDS_MAX_BYTES = 16_384  # the real file is ~6 KB; refuse anything wildly larger
_WORD_RE = re.compile(r"[A-Za-z]{2,16}")
_HEX_RE = re.compile(r"[0-9a-f]{2}")


class SasError(ZcallError, ValueError):
    """A SAS value or type that cannot be rendered."""


class WordListError(SasError):
    """The packaged PGP word list is damaged (wrong size, order or spelling)."""


def parse_word_list(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Parse '<hex> <even> <odd>' lines into (even, odd); every byte value exactly once, in order."""
    if len(text) > _WORDS_MAX_BYTES:
        raise WordListError(f"word list too large ({len(text)} characters)")
    even: list[str] = []
    odd: list[str] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 3:
            raise WordListError(f"line {lineno}: expected '<hex> <even> <odd>'")
        index_text, even_word, odd_word = parts
        if not _HEX_RE.fullmatch(index_text) or int(index_text, 16) != len(even):
            raise WordListError(f"line {lineno}: byte {index_text!r} out of order")
        for word in (even_word, odd_word):
            if not _WORD_RE.fullmatch(word):
                raise WordListError(f"line {lineno}: bad word {word!r}")
        even.append(even_word)
        odd.append(odd_word)
    if len(even) != 256:
        raise WordListError(f"expected 256 entries, found {len(even)}")
    if len({w.lower() for w in even + odd}) != 512:
        raise WordListError("words are not all distinct")
    return tuple(even), tuple(odd)


@functools.cache
def pgp_words() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The (even, odd) PGP word lists, loaded once from the package data file."""
    text = importlib.resources.files("zcall.zrtp").joinpath(_WORDS_FILE).read_text(encoding="ascii")
    return parse_word_list(text)


def _leading(sas_value: bytes, nbytes: int) -> int:
    if not isinstance(sas_value, bytes | bytearray):
        raise SasError("sas_value must be bytes")
    # sasvalue is 32 bits; sashash is at most 64 bytes (S384/N384 give 48).
    if not 4 <= len(sas_value) <= 64:
        raise SasError(f"sas_value must be 4..64 bytes, got {len(sas_value)}")
    return int.from_bytes(sas_value[:nbytes], "big")


def render_b32(sas_value: bytes) -> str:
    """Leftmost 20 bits as 4 base-32 characters, most significant 5 bits first."""
    bits20 = _leading(sas_value, 3) >> 4
    return "".join(B32_ALPHABET[(bits20 >> shift) & 0x1F] for shift in (15, 10, 5, 0))


def render_b256(sas_value: bytes) -> tuple[str, str]:
    """Leftmost 16 bits as two PGP words: first byte from the even list, second from the odd list."""
    bits16 = _leading(sas_value, 2)
    even, odd = pgp_words()
    return even[bits16 >> 8], odd[bits16 & 0xFF]


def render(sas_type: str, sas_value: bytes) -> tuple[str, list[str]]:
    """Render for display: (text, words). B32 -> ("abcd", ["abcd"]); B256 -> ("w1 w2", ["w1", "w2"])."""
    if sas_type == "B32":
        text = render_b32(sas_value)
        return text, [text]
    if sas_type == "B256":
        first, second = render_b256(sas_value)
        return f"{first} {second}", [first, second]
    raise SasError(f"unsupported SAS type {sas_type!r}")
