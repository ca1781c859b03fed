"""[nat]: STUN/TURN URIs (RFC 7064/7065) checked when the file is read, and the TURN password taken from the
file, the environment or a file named on the command line, never shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zcall import cli, config
from zcall import settings as settingsmod
from zcall.natconfig import NatUriError, StunServer, TurnServer, parse_stun_uri, parse_turn_uri


@pytest.mark.parametrize(
    ("uri", "server"),
    [
        ("stun:stun.example.org", StunServer("stun.example.org", 3478)),
        ("stun:192.0.2.1:19302", StunServer("192.0.2.1", 19302)),
        ("STUN:[2001:db8::1]:3479", StunServer("2001:db8::1", 3479)),
    ],
)
def test_stun_uris(uri: str, server: StunServer) -> None:
    assert parse_stun_uri(uri) == server


@pytest.mark.parametrize(
    ("uri", "server"),
    [
        ("turn:turn.example.org", TurnServer("turn.example.org", 3478, "udp", False)),
        ("turn:turn.example.org:3478?transport=udp", TurnServer("turn.example.org", 3478, "udp", False)),
        ("turn:10.0.0.1:3478?transport=tcp", TurnServer("10.0.0.1", 3478, "tcp", False)),
        ("turns:turn.example.org", TurnServer("turn.example.org", 5349, "tcp", True)),
        ("turns:turn.example.org:443?transport=tcp", TurnServer("turn.example.org", 443, "tcp", True)),
    ],
)
def test_turn_uris(uri: str, server: TurnServer) -> None:
    assert parse_turn_uri(uri) == server


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("stuns:stun.example.org", "not supported"),
        ("http://stun.example.org", "expected stun:"),
        ("stun:", "expected host"),
        ("stun:bad_host!:3478", "bad host name"),
        ("stun:example.org:0", "port must be"),
        ("stun:example.org:99999", "port must be"),
        ("stun:[1:2:3]:1", "bad IPv6"),
        ("stun:" + "a" * 400, "too long"),
    ],
)
def test_bad_stun_uris(uri: str, why: str) -> None:
    with pytest.raises(NatUriError, match=why):
        parse_stun_uri(uri)


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("turns:example.org?transport=udp", "TURN over DTLS"),
        ("turn:example.org?transport=sctp", "transport=udp or transport=tcp"),
        ("turn:example.org?foo=bar", "transport=udp or transport=tcp"),
        ("stun:example.org", "expected turn:"),
        ("turn:exa mple.org", "bad host name"),
    ],
)
def test_bad_turn_uris(uri: str, why: str) -> None:
    with pytest.raises(NatUriError, match=why):
        parse_turn_uri(uri)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_fuzz_uris_parse_or_fail_clearly(text: str) -> None:
    for parse in (parse_stun_uri, parse_turn_uri):
        try:
            parse(text)
        except NatUriError:
            pass


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[nat]\nstun = 'stuns:x.org'\n", "nat.stun: expected a STUN URI"),
        ("[nat]\nturn = 'turns:x.org?transport=udp'\n", "nat.turn: expected a TURN URI"),
        ("[nat]\nturn = 3\n", "nat.turn: expected a string"),
        ("[nat]\nrelay = true\n", "nat.relay: unknown key"),
        ('[nat]\nturn_user = "a\\u0007b"\n', "nat.turn_user: expected a printable user name"),
    ],
)
def test_nat_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(config.ConfigError, match=message):
        config.load(path)


def test_nat_round_trip_and_redacted(tmp_path: Path) -> None:
    cfg = config.from_mapping({"nat": {"stun": "stun:stun.example.org", "turn": "turns:turn.example.org",
                                       "turn_user": "zed", "turn_password": "relay-pw"}})  # fmt: skip
    path = tmp_path / "config.toml"
    config.save(cfg, path)
    assert config.load(path) == cfg
    shown = config.to_toml(cfg, redact=True)
    assert "relay-pw" not in shown and 'turn_user = "zed"' in shown


def _settings(nat: dict[str, object], argv: list[str], env: dict[str, str]) -> settingsmod.PhoneSettings:
    args = cli.build_parser().parse_args(argv)
    args.turn_password = cli._turn_password_override(args, env)
    return settingsmod.merge(config.from_mapping({"nat": nat}), args)


def test_turn_password_from_file_env_or_config(tmp_path: Path) -> None:
    nat = {"turn": "turn:192.0.2.9", "turn_user": "zed", "turn_password": "from-config"}
    secret = tmp_path / "turn-pw"
    secret.write_text("from-file\n")
    assert _settings(nat, [], {}).nat.turn_password == "from-config"
    assert _settings(nat, [], {cli.TURN_PASSWORD_ENV: "from-env"}).nat.turn_password == "from-env"
    from_file = _settings(nat, ["--turn-password-file", str(secret)], {cli.TURN_PASSWORD_ENV: "from-env"})
    assert from_file.nat.turn_password == "from-file"
    assert from_file.nat.turn == TurnServer("192.0.2.9", 3478, "udp", False) and from_file.nat.enabled
    with pytest.raises(config.ConfigError, match=r"--turn-password-file .*cannot read"):
        _settings(nat, ["--turn-password-file", str(tmp_path / "none")], {})


def test_turn_without_an_account_is_a_config_error() -> None:
    with pytest.raises(config.ConfigError, match=r"nat\.turn needs nat\.turn_user and a password"):
        _settings({"turn": "turn:192.0.2.9", "turn_user": "zed"}, [], {})
    with pytest.raises(config.ConfigError, match=r"relay_only needs nat\.turn"):
        _settings({"stun": "stun:192.0.2.9", "relay_only": True}, [], {})
    assert not _settings({}, [], {}).nat.enabled


def test_a_moved_unit_is_noticed_unless_pinned() -> None:
    from zcall.net import moved_to, routed_source

    assert routed_source("127.0.0.1") == "127.0.0.1"
    assert moved_to("10.0.0.5", "10.0.0.5", pinned=False) is None
    assert moved_to("10.0.0.5", "192.168.1.9", pinned=False) == "192.168.1.9"
    assert moved_to("10.0.0.5", "192.168.1.9", pinned=True) is None  # --bind: the user chose the address
    assert moved_to("10.0.0.5", None, pinned=False) is None  # no route at all: keep-alive's business
