"""Hypothesis: the linphonec report parsers read every SAS zcall can render, and on any other input return
None or raise LinphoneParseError, never anything else."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import linphone as lp
from zcall.zrtp import sas

PARSERS: list[Callable[[str], object]] = [
    lp.parse_console_sas, lp.parse_log_secrets, lp.parse_log_token, lp.parse_log_algorithms,
    lp.parse_log_time,
]  # fmt: skip

_fragments = st.sampled_from([
    "Call 1 is fully encrypted and auth token is ", "Call 99 is not fully encrypted and auth token is ",
    "ZRTP secrets on: SAS is ", " previously verified ", " on session [0x1]",
    "liblinphone-message-Authentication token is ", "(verified)", "(unverified)", "yes", "no", ".", ":",
    "ZRTP algo used during negotiation: Cipher: ", " - KeyAgreement: ", " - Hash: ", " - AuthTag: ",
    " - Sas Rendering: ", "AES-128", "DHM-3072", "SHA-256", "HMAC-SHA1-80", "Base32", "1gmz", "Aztec",
    "2026-11-23 17:45:10:325 ", "9999-99-99 99:99:99:999 ", "\n", "\x00", "é",
])  # fmt: skip
_lines = st.lists(st.one_of(_fragments, st.text(max_size=12)), max_size=14).map("".join)


def _run(parse: Callable[[str], object], line: str) -> object:
    try:
        return parse(line)
    except lp.LinphoneParseError:
        return "rejected"


@settings(max_examples=400, deadline=None)
@given(_lines)
def test_parsers_only_return_or_raise_parse_error(line: str) -> None:
    for parse in PARSERS:
        _run(parse, line)


@settings(max_examples=50, deadline=None)
@given(_lines, st.integers(1, 100))
def test_over_long_lines_are_rejected(head: str, extra: int) -> None:
    line = head + "x" * (lp.MAX_LINE_CHARS + extra - len(head))
    for parse in PARSERS:
        with pytest.raises(lp.LinphoneParseError):
            parse(line)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sas.SAS_TYPES), st.binary(min_size=4, max_size=32), st.integers(1, 999_999))
def test_every_sas_zcall_renders_is_read_back(sas_type: str, value: bytes, call_id: int) -> None:
    # linphonec shows B256 as "word:word"; zcall's renderer gives the same two words.
    text = sas.render_b32(value) if sas_type == "B32" else ":".join(sas.render_b256(value))
    console = lp.parse_console_sas(f"Call {call_id} is fully encrypted and auth token is {text}.")
    assert console == lp.ConsoleSas(call_id, text, True)
    secrets = lp.parse_log_secrets(f"ZRTP secrets on: SAS is {text} previously verified no on session [0x1]")
    assert secrets == lp.LogSecrets(text, False)
    token = lp.parse_log_token(f"x liblinphone-message-Authentication token is {text}(verified)")
    assert token == lp.LogToken(text, True)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_any_token_is_read_back_exactly_or_rejected(token: str) -> None:
    result = _run(lp.parse_console_sas, f"Call 7 is fully encrypted and auth token is {token}.")
    # A newline ends the line for the regex, so the report is then not recognised at all (None).
    assert result in ("rejected", lp.ConsoleSas(7, token, True)) or (result is None and "\n" in token)
