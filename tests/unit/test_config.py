from __future__ import annotations

import argparse
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zcall import config
from zcall import settings as settingsmod
from zcall.paths import Paths


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    assert config.load(tmp_path / "none.toml") == config.Config()


def test_round_trip_through_toml(tmp_path: Path) -> None:
    cfg = config.from_mapping(
        {
            "unit": {"name": "Desk \"A\" – café"},
            "network": {"sip_port": 5070, "rtp_port": 40000, "mdns": False},
            "security": {"sas_types": ["B32"], "on_mismatch": "continue"},
            "audio": {"echo_cancel": "off"},
            "server": {"uri": "sips:pbx.example.org", "user": "alice", "password": "s3cr\\et"},
        }
    )
    path = tmp_path / "config.toml"
    config.save(cfg, path)
    assert config.load(path) == cfg
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[network]\nsip_port = 'abc'\n", "network.sip_port: expected an integer"),
        ("[network]\nsip_port = 70000\n", "network.sip_port: expected a port number"),
        ("[network]\nrtp_port = 40001\n", "network.rtp_port: expected 0 or an even port"),
        ("[network]\nmdns = 1\n", "network.mdns: expected true or false"),
        ("[network]\nsip_port = true\n", "network.sip_port: expected an integer"),
        ("[network]\nspeed = 3\n", "network.speed: unknown key"),
        ("[bogus]\n", "[bogus]: unknown section"),
        ("network = 3\n", "[network]: expected a table"),
        ("[security]\nsas_types = ['B64']\n", "security.sas_types: expected a non-empty list"),
        ("[security]\nsas_types = 'B32'\n", "security.sas_types: expected a list of strings"),
        ("[security]\non_mismatch = 'shrug'\n", "security.on_mismatch: expected one of"),
        ("[audio]\necho_cancel = 'maybe'\n", "audio.echo_cancel: expected one of"),
        ("[server]\nuri = 'http://x'\n", "server.uri: expected a SIP URI"),
        ("[network]\nbind = '999.1.1.1'\n", "network.bind: expected an IPv4 address"),
        ("[network]\nbind = 'localhost'\n", "network.bind: expected an IPv4 address"),
        ("[unit\nname='x'\n", "not valid TOML"),
        ("[call]\nauto_answer = 'yes'\n", "call.auto_answer: expected one of ['off', 'verified', 'all']"),
        ("[call]\nauto_answer = 1\n", "call.auto_answer: expected a string"),
        ("[call]\nring_timeout = 2\n", "call.ring_timeout: expected seconds of ringing, 5-600"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(config.ConfigError) as info:
        config.load(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_oversized_and_binary_files_are_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * config.MAX_CONFIG_BYTES)
    with pytest.raises(config.ConfigError, match="larger than"):
        config.load(big)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(config.ConfigError, match="not UTF-8"):
        config.load(binary)


def test_show_redacts_the_password() -> None:
    cfg = config.from_mapping({"server": {"password": "hunter2"}})
    assert "hunter2" not in config.to_toml(cfg, redact=True)
    assert "hunter2" in config.to_toml(cfg)


def test_the_password_is_in_no_repr() -> None:
    # A log line or traceback that prints the config or the running settings must not carry it.
    cfg = config.from_mapping({"server": {"password": "hunter2"}})
    assert "hunter2" not in repr(cfg)
    assert "hunter2" not in repr(settingsmod.merge(cfg, argparse.Namespace()))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_fuzz_any_text_loads_or_fails_clearly(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "config.toml"
    path.write_text(text, encoding="utf-8")
    try:
        config.load(path)
    except config.ConfigError:
        pass


@settings(max_examples=100, deadline=None)
@given(
    name=st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=63),
    port=st.integers(1, 65535),
)
def test_fuzz_saved_values_read_back(tmp_path_factory: pytest.TempPathFactory, name: str, port: int) -> None:
    if not name.isprintable():
        return
    cfg = config.from_mapping({"unit": {"name": name}, "network": {"sip_port": port}})
    path = tmp_path_factory.mktemp("rt") / "config.toml"
    config.save(cfg, path)
    assert config.load(path) == cfg


def test_home_puts_everything_under_one_folder(tmp_path: Path) -> None:
    paths = Paths.resolve(tmp_path)
    for path in (paths.config_file, paths.cache_file, paths.identity_dir, paths.control_socket):
        assert path.is_relative_to(tmp_path)


def test_xdg_locations() -> None:
    env = {"HOME": "/h", "XDG_CONFIG_HOME": "/c", "XDG_DATA_HOME": "/d", "XDG_RUNTIME_DIR": "/r"}
    paths = Paths.from_environment(env)
    assert paths.config_file == Path("/c/zcall/config.toml")
    assert paths.cache_file == Path("/d/zcall/cache.sqlite")
    assert paths.control_socket == Path("/r/zcall/zcall.sock")
    bare = Paths.from_environment({"HOME": "/h"})
    assert bare.config_file == Path("/h/.config/zcall/config.toml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", config.AutoAnswer.OFF),
        ("[call]\nauto_answer = 'verified'\n", config.AutoAnswer.VERIFIED),
        ("[call]\nauto_answer = 'all'\n", config.AutoAnswer.ALL),
        ("[call]\nauto_answer = true\n", config.AutoAnswer.ALL),  # files written before the three values
        ("[call]\nauto_answer = false\n", config.AutoAnswer.OFF),
    ],
)
def test_auto_answer_values(tmp_path: Path, text: str, expected: config.AutoAnswer) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    merged = settingsmod.merge(config.load(path))
    assert merged.auto_answer is expected
    config.save(config.load(path), path)  # and it writes back as one of the three words
    assert settingsmod.merge(config.load(path)).auto_answer is expected
    warned = settingsmod.startup_warnings(merged)
    assert bool(warned) == (expected is config.AutoAnswer.ALL)
    assert not warned or "anyone" in warned[0]


def test_auto_answer_flag_means_everyone() -> None:
    args = argparse.Namespace(auto_answer=True)
    merged = settingsmod.merge(config.from_mapping({"call": {"auto_answer": "verified"}}), args)
    assert merged.auto_answer is config.AutoAnswer.ALL


def test_the_desk_unit_image_answers_only_verified_devices() -> None:
    image = config.load(Path(__file__).parents[2] / "firmware" / "zcall" / "config.toml")
    assert settingsmod.merge(image).auto_answer is config.AutoAnswer.VERIFIED


def test_the_ring_timeout_comes_from_the_config(tmp_path: Path) -> None:
    from zcall.engine import Phone
    from zcall.paths import Paths

    assert settingsmod.merge(config.Config()).ring_timeout == 60
    mapping = {"call": {"ring_timeout": 25}, "network": {"bind": "127.0.0.1"}}
    merged = settingsmod.merge(config.from_mapping(mapping))
    assert merged.ring_timeout == 25
    phone = Phone(merged, Paths.for_home(tmp_path / "home"), control=False)
    _, policy = phone._call_kit()  # what every call's core is given
    assert policy.ring_timeout_s == 25
    phone.cache.close()


def test_saving_through_a_leftover_temporary_file_stays_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    stale = tmp_path / f".config.toml.{os.getpid()}.tmp"
    stale.write_text("old")
    stale.chmod(0o644)
    config.save(config.from_mapping({"server": {"password": "hunter2"}}), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_config_found_readable_by_others_is_made_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[server]\npassword = "hunter2"\n')
    path.chmod(0o644)  # written by hand
    assert config.load(path).server.password == "hunter2"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
