"""Hypothesis: SAS rendering agrees with independent readings for every value, and never fails oddly."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.zrtp.test_sas import b32_by_bit_string
from zcall.zrtp import sas


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=4, max_size=64))
def test_b32_equals_bit_string_reading(value: bytes) -> None:
    text = sas.render_b32(value)
    assert text == b32_by_bit_string(value)
    assert len(text) == 4 and set(text) <= set(sas.B32_ALPHABET)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=4, max_size=64))
def test_b256_is_a_bijection_on_16_bits(value: bytes) -> None:
    even, odd = sas.pgp_words()
    first, second = sas.render_b256(value)
    assert (even.index(first), odd.index(second)) == (value[0], value[1])


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=8), st.binary(max_size=80))
def test_render_only_raises_sas_error(sas_type: str, value: bytes) -> None:
    try:
        text, words = sas.render(sas_type, value)
    except sas.SasError:
        assert sas_type not in sas.SAS_TYPES or not 4 <= len(value) <= 64
        return
    assert text == " ".join(words)


_tokens = st.one_of(st.text(max_size=6), st.sampled_from(["00", "01", "ff", "zz", "aardvark", "Zulu", "#"]))
_lines = st.lists(_tokens, max_size=4).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=400), st.lists(_lines, max_size=20).map("\n".join)))
def test_word_list_parser_only_raises_word_list_error(text: str) -> None:
    # Nothing short of 256 well-formed lines is a word list; anything else must be a WordListError.
    with pytest.raises(sas.WordListError):
        sas.parse_word_list(text)
