"""[server] outbound_proxy: HOST, HOST:PORT, and IPv6 as a bare address or [ADDR]:PORT (RFC 3986 §3.2.2)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zcall.server import ServerConfigError, parse_proxy


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("proxy.example", ("proxy.example", 5061)),
        ("proxy.example:5070", ("proxy.example", 5070)),
        ("192.0.2.7:5070", ("192.0.2.7", 5070)),
        ("[2001:db8::1]:5070", ("2001:db8::1", 5070)),
        ("[2001:db8::1]", ("2001:db8::1", 5061)),
        ("2001:db8::1", ("2001:db8::1", 5061)),
    ],
)
def test_the_proxy_address_is_read(text: str, expected: tuple[str, int]) -> None:
    assert parse_proxy(text, 5061) == expected


@pytest.mark.parametrize(
    "text",
    ["[2001:db8::1", "[2001:db8::1]5070", "[proxy.example]:5070", "[abc]:5070", "[]:5070", "a:b:c", "proxy:0",
     "proxy:65536", "proxy:", ":5070", "proxy:\uff15\uff10", "proxy:-1", "x" * 300],
)  # fmt: skip
def test_a_malformed_proxy_is_a_clear_error(text: str) -> None:
    with pytest.raises(ServerConfigError, match="outbound_proxy"):
        parse_proxy(text, 5061)


@given(st.text(max_size=80))
def test_any_text_is_an_address_or_a_config_error(text: str) -> None:
    try:
        host, port = parse_proxy(text, 5061)
    except ServerConfigError:
        return
    assert host and 0 < port < 65536 and "[" not in host
