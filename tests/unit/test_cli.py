"""The command line, run as a user would: the installed `zcall` in a subprocess."""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.support.zcall_peer import ZcallPeer
from zcall import cli
from zcall import config as configmod
from zcall.exitcodes import ExitCode


def zcall(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("zcall", path=os.path.dirname(sys.executable)) or "zcall"
    return subprocess.run(
        [exe, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, env=env
    )


def test_help_lists_the_contract() -> None:
    out = zcall("--help").stdout
    for option in (
        "--home", "--config", "--headless", "--events", "--name", "--bind", "--sip-port", "--rtp-port",
        "--no-mdns", "--audio-in", "--audio-out", "--auto-answer", "--call", "--hangup-after",
        "--exit-after-call", "--server", "--user", "--password", "--server-ca", "--on-mismatch",
    ):
        assert option in out
    for command in ("peers", "trust", "doctor", "ctl", "config"):
        assert command in out


def test_every_option_and_action_has_help() -> None:
    parsers = [cli.build_parser()]
    seen = []
    while parsers:
        parser = parsers.pop()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers.extend(action.choices.values())
                helped = {choice.dest for choice in action._choices_actions if choice.help}
                assert helped == set(action.choices), f"{parser.prog}: actions without help"
            elif not isinstance(action, argparse._HelpAction):
                assert action.help, f"{parser.prog} {action.option_strings or action.dest} has no help"
            seen.append(action)
    assert len(seen) > 40


@pytest.mark.parametrize(
    ("args", "listed"),
    [
        (["trust", "--help"], ["list", "verify", "unverify", "forget", "rename"]),
        (["ctl", "--help"], ["call", "answer", "hangup", "verify", "status"]),
        (["config", "--help"], ["show", "path", "init"]),
    ],
)
def test_subcommand_help_lists_its_actions(args: list[str], listed: list[str]) -> None:
    out = zcall(*args).stdout
    actions = out.split("actions:", 1)[1]
    for action in listed:
        assert f"\n    {action} " in actions


def test_help_says_which_options_are_headless_only_and_ends_with_keys_files_exit_codes() -> None:
    out = zcall("--help").stdout
    headless = out.split("headless mode:", 1)[1].split("commands:", 1)[0]
    assert [line.split()[0] for line in headless.splitlines() if line.startswith("  --")] == [
        "--headless", "--events", "--call", "--hangup-after", "--exit-after-call",
    ]
    epilog = out.split("TUI keys", 1)[1]
    for needle in ("Home", "In call", "Trust", "config.toml", "cache.sqlite", "zcall.sock", "exit codes:"):
        assert needle in epilog


def test_version() -> None:
    result = zcall("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("zcall ")


def test_config_init_show_path_under_home(tmp_path: Path) -> None:
    path = zcall("--home", str(tmp_path), "config", "path").stdout.strip()
    assert path == str(tmp_path.resolve() / "config.toml")
    assert zcall("--home", str(tmp_path), "config", "init").returncode == 0
    assert tomllib.loads(Path(path).read_text())["network"]["sip_port"] == 5060
    again = zcall("--home", str(tmp_path), "config", "init")
    assert again.returncode == 1 and "--force" in again.stderr
    shown = zcall("--home", str(tmp_path), "config", "show")
    assert shown.returncode == 0
    assert tomllib.loads(shown.stdout)["security"]["on_mismatch"] == "continue"


def test_config_show_hides_password(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[server]\nuri = "sips:pbx"\npassword = "hunter2"\n')
    shown = zcall("--home", str(tmp_path), "config", "show")
    assert "hunter2" not in shown.stdout
    assert "********" in shown.stdout


def test_bad_config_is_reported_with_its_key(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[network]\nsip_port = 'x'\n")
    result = zcall("--home", str(tmp_path), "config", "show")
    assert result.returncode == ExitCode.USAGE
    assert "network.sip_port" in result.stderr


def test_homes_are_isolated(tmp_path: Path) -> None:
    for name in ("a", "b"):
        assert zcall("--home", str(tmp_path / name), *NO_SOUND_CARD, "doctor").returncode == 0
    zid_a = (tmp_path / "a" / "data" / "identity" / "zid").read_text()
    zid_b = (tmp_path / "b" / "data" / "identity" / "zid").read_text()
    assert zid_a != zid_b
    # Nothing of one instance lands outside its home.
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["data"]


def test_without_home_xdg_is_used(tmp_path: Path) -> None:
    env = dict(os.environ, HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "cfg"))
    env.pop("XDG_DATA_HOME", None)
    env.pop("XDG_RUNTIME_DIR", None)
    assert zcall("config", "path", env=env).stdout.strip() == str(tmp_path / "cfg" / "zcall" / "config.toml")


NO_SOUND_CARD = ["--audio-in", "silence", "--audio-out", "null", "--sip-port", "0"]


def test_doctor_reports_every_check(tmp_path: Path) -> None:
    result = zcall("--home", str(tmp_path), *NO_SOUND_CARD, "doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("cryptography", "pylibsrtp", "libopus", "PyAudio", "zeroconf", "identity", "bind address",
                 "SIP port", "audio input", "audio output"):
        assert name in result.stdout
    assert "all checks passed" in result.stdout


@pytest.mark.parametrize(
    ("args", "failed"),
    [
        (["--audio-in", "no such microphone"], "FAIL audio input"),
        (["--audio-out", "no such speaker"], "FAIL audio output"),
        (["--audio-in", "file:/nonexistent.wav"], "FAIL audio input"),
        (["--bind", "203.0.113.254"], "FAIL bind address"),  # TEST-NET-3: an address no machine has
        (["--sip-port", "BUSY"], "is in use by another program"),
    ],
)
def test_doctor_fails_for_what_the_phone_could_not_use(tmp_path: Path, args: list[str], failed: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("0.0.0.0", 0))
        args = [a.replace("BUSY", str(busy.getsockname()[1])) for a in args]
        result = zcall("--home", str(tmp_path), *NO_SOUND_CARD, *args, "doctor")
    assert result.returncode == ExitCode.FAILED
    assert failed in result.stdout and "all checks passed" not in result.stdout


def test_doctor_with_a_phone_running_in_its_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with ZcallPeer(None, home, name="one", sip_port=0, extra=["--no-mdns", "--bind", "127.0.0.1"]) as phone:
        port = phone.wait_event("ready")["sip_uri"].rsplit(":", 1)[1]
        args = [*NO_SOUND_CARD, "--bind", "127.0.0.1", "--sip-port", port]
        result = zcall("--home", str(home), *args, "doctor")
    assert result.returncode == 0, result.stdout
    assert "in use by the zcall running in this home" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--server", "sip:pbx.example.org", "--user", "u"], "TLS only"),
        (["--server", "sips:pbx.example.org"], "server.user"),
        (["--server", "http://pbx"], "TLS only"),
    ],
)
def test_bad_server_settings_are_refused_clearly(tmp_path: Path, args: list[str], message: str) -> None:
    result = zcall(
        "--home", str(tmp_path), "--headless", "--no-mdns", "--bind", "127.0.0.1", "--audio-in", "silence",
        "--audio-out", "null", *args,
    )
    assert result.returncode == 1
    assert message in result.stdout  # an `error` event


def test_ctl_without_a_running_phone(tmp_path: Path) -> None:
    result = zcall("--home", str(tmp_path), "ctl", "status")
    assert result.returncode == 1
    assert "no running zcall" in result.stderr


@pytest.mark.parametrize(
    "args",
    [["--sip-port", "70000"], ["--hangup-after", "-1"], ["--on-mismatch", "shrug"], ["trust"], ["ctl"]],
)
def test_bad_arguments_are_usage_errors(args: list[str]) -> None:
    result = zcall(*args)
    assert result.returncode == 2
    assert "usage:" in result.stderr


def test_a_second_instance_on_one_home_is_refused_and_the_first_stays_reachable(tmp_path: Path) -> None:
    home = tmp_path / "home"
    base = ["--home", str(home), "--headless", "--no-mdns", "--bind", "127.0.0.1", "--audio-in", "silence",
            "--audio-out", "null"]
    with ZcallPeer(None, home, name="first", sip_port=0, extra=["--no-mdns", "--bind", "127.0.0.1"]) as first:
        port = first.wait_event("ready")["sip_uri"].rsplit(":", 1)[1]
        same_port = zcall(*base, "--sip-port", port)  # fails on the SIP port, then cleans up after itself
        assert same_port.returncode != 0 and '"event":"ready"' not in same_port.stdout
        other_port = zcall(*base, "--sip-port", "0")  # would start if the socket had been removed
        assert other_port.returncode != 0 and "another zcall is running" in other_port.stdout
        status = zcall("--home", str(home), "ctl", "status")
        assert status.returncode == 0, status.stderr


def test_help_lists_the_exit_codes() -> None:
    out = zcall("--help").stdout
    assert "exit codes:" in out
    for code in ExitCode:
        assert f"  {code.value}  " in out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--headless", "--bind", "999.1.1.1"], ExitCode.USAGE, "'999.1.1.1' is not an IPv4 address"),
        (["--headless", "--bind", "localhost"], ExitCode.USAGE, "'localhost' is not an IPv4 address"),
        (["--home", "/dev/null/x", "trust", "list"], ExitCode.FAILED, "/dev/null/x/data: Not a directory"),
        (["--home", "/dev/null/x", "config", "init"], ExitCode.FAILED, "/dev/null/x: Not a directory"),
    ],
)
def test_bad_input_is_one_clear_line_not_a_traceback(args: list[str], code: int, message: str) -> None:
    result = zcall(*args)
    assert "Traceback" not in result.stderr
    assert result.returncode == code
    assert message in result.stderr


def test_a_bad_bind_in_the_config_is_refused_everywhere(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[network]\nbind = '999.1.1.1'\n")
    for args in (["config", "show"], ["--headless", "--no-mdns"]):
        result = zcall("--home", str(tmp_path), *args)
        assert result.returncode == ExitCode.USAGE and "network.bind" in result.stderr
    doctor = zcall("--home", str(tmp_path), "doctor")
    assert doctor.returncode == ExitCode.FAILED and "network.bind" in doctor.stdout


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (["--audio-in", "file:/nonexistent/x.wav"], "/nonexistent/x.wav: cannot read"),
        (["--audio-in", "file:NOTWAV"], "not a PCM WAV file"),
        (["--audio-in", "tone:abc"], "bad tone frequency in 'tone:abc'"),
        (["--audio-in", "tone:0"], "tone frequency must be within"),
        (["--audio-in", "no such microphone"], "no audio device named 'no such microphone'"),
        (["--audio-out", "no such speaker"], "no audio device named 'no such speaker'"),
        (["--audio-out", "file:/nonexistent/out.wav"], "/nonexistent/out.wav: cannot write"),
    ],
)
def test_an_unusable_audio_spec_stops_the_start_once(tmp_path: Path, spec: list[str], message: str) -> None:
    not_wav = tmp_path / "notes.wav"
    not_wav.write_text("these are not samples")
    spec = [part.replace("NOTWAV", str(not_wav)) for part in spec]
    result = zcall(
        "--home", str(tmp_path / "home"), "--headless", "--no-mdns", "--bind", "127.0.0.1", "--sip-port", "0",
        "--audio-in", "silence", "--audio-out", "null", *spec,
    )
    assert result.returncode == ExitCode.FAILED
    assert message in result.stdout and '"event":"ready"' not in result.stdout
    assert result.stdout.count('"event":"error"') == 1


def _password(argv: list[str], env: dict[str, str]) -> str | None:
    return cli._password_override(cli.build_parser().parse_args(argv), env)


def test_the_password_comes_off_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret pass\nignored\n")
    assert _password(["--password-file", str(secret)], {cli.PASSWORD_ENV: "from env"}) == "s3cret pass"
    assert _password([], {cli.PASSWORD_ENV: "from env"}) == "from env"
    assert _password([], {}) is None  # the config file's
    assert capsys.readouterr().err == ""
    assert _password(["--password", "visible"], {}) == "visible"
    assert "visible to every user" in capsys.readouterr().err
    for content, why in ((b"", "empty first line"), (b"\xff\xfe", "not UTF-8"), (b"x" * 5000, "larger than")):
        secret.write_bytes(content)
        with pytest.raises(configmod.ConfigError, match=why):
            _password(["--password-file", str(secret)], {})


def test_password_options_as_a_user_runs_them(tmp_path: Path) -> None:
    base = ["--home", str(tmp_path), "--headless", "--no-mdns", "--bind", "127.0.0.1", "--audio-in",
            "silence", "--audio-out", "null", "--server", "sip:pbx.example.org", "--user", "u"]
    warned = zcall(*base, "--password", "hunter2")
    assert "--password is visible" in warned.stderr and "hunter2" not in warned.stderr + warned.stdout
    missing = zcall(*base, "--password-file", str(tmp_path / "none"))
    assert missing.returncode == ExitCode.USAGE and "cannot read" in missing.stderr
    both = zcall(*base, "--password", "a", "--password-file", "b")
    assert both.returncode == ExitCode.USAGE and "not allowed with" in both.stderr


ONE_SHOT_FORBIDDEN = ("textual", "numpy", "soxr", "pyaudio", "zeroconf", "cryptography", "OpenSSL", "asyncio")


def _imported(*args: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "zcall", *args],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    lines = result.stderr.splitlines()
    return {line.split("|")[-1].strip() for line in lines if line.startswith("import time:")}


@pytest.mark.parametrize("args", [["trust", "list"], ["ctl", "status"], ["config", "show"], ["--version"]])
def test_one_shot_commands_import_only_what_they_need(tmp_path: Path, args: list[str]) -> None:
    imported = _imported("--home", str(tmp_path), *args)
    assert "zcall.cli" in imported
    assert sorted(m for m in imported if m.split(".")[0] in ONE_SHOT_FORBIDDEN) == []


def test_headless_does_not_import_textual(tmp_path: Path) -> None:
    imported = _imported("--home", str(tmp_path), "--headless", "--no-mdns", "--audio-in", "tone:abc")
    assert "zcall.headless" in imported
    assert not [m for m in imported if m.split(".")[0] == "textual"]


# What an idle phone must not have loaded (issue 17's footprint): the call machinery comes with the first
# call, the server path (TLS, DNS) with a configured server.
IDLE_FORBIDDEN = ("numpy", "soxr", "pyaudio", "OpenSSL", "dns", "pylibsrtp", "textual", "zcall.call",
                  "zcall.callcore", "zcall.keying", "zcall.dtls", "zcall.media.stream", "zcall.zrtp.session",
                  "zcall.server")


@pytest.mark.parametrize("mdns", [False, True])
def test_an_idle_headless_phone_loads_no_call_machinery(tmp_path: Path, mdns: bool) -> None:
    argv = [sys.executable, "-X", "importtime", "-m", "zcall", "--home", str(tmp_path), "--headless",
            "--bind", "127.0.0.1", "--sip-port", "0", "--audio-in", "tone:440", "--audio-out", "null",
            *([] if mdns else ["--no-mdns"])]  # fmt: skip
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert '"event":"ready"' in first, first + err
    imported = {line.split("|")[-1].strip() for line in err.splitlines() if line.startswith("import time:")}
    assert "zcall.engine" in imported
    loaded = sorted(m for m in imported for f in IDLE_FORBIDDEN if m == f or m.startswith(f + "."))
    assert loaded == []


def test_peers_reports_a_discovery_failure_on_stderr(tmp_path: Path) -> None:
    result = zcall("--home", str(tmp_path), "--bind", "203.0.113.254", "peers", "--json", "--wait", "0.2")
    assert result.returncode == ExitCode.FAILED
    assert result.stdout == "" and "mDNS" in result.stderr


@pytest.mark.parametrize("target", ["bob", "::::"])
def test_an_unreachable_target_fails_at_once_without_discovery(tmp_path: Path, target: str) -> None:
    """With --no-mdns no peer can show up: a name fails at once (it used to wait 15 s); `::::` is no name."""
    result = zcall(
        "--home", str(tmp_path), "--headless", "--no-mdns", "--bind", "127.0.0.1", "--sip-port", "0",
        "--rtp-port", "0", "--audio-in", "silence", "--audio-out", "null", "--call", target,
        "--exit-after-call", timeout=10,  # well under the 15 s a name may wait for discovery
    )  # fmt: skip
    assert result.returncode == ExitCode.FAILED
    errors = [line for line in result.stdout.splitlines() if '"event":"error"' in line]
    assert len(errors) == 1, result.stdout
    assert ("no peer named" if target == "bob" else "not a peer name") in errors[0]


def test_calling_a_closed_port_ends_at_once_with_a_clear_reason(tmp_path: Path) -> None:
    """ICMP port unreachable ends the call (it used to take 32 s and end in a 408 nobody sent)."""
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    result = zcall(
        "--home", str(tmp_path), "--headless", "--no-mdns", "--bind", "127.0.0.1", "--sip-port", "0",
        "--rtp-port", "0", "--audio-in", "silence", "--audio-out", "null",
        "--call", f"sip:x@127.0.0.1:{port}", "--exit-after-call", timeout=15,
    )  # fmt: skip
    ended = [line for line in result.stdout.splitlines() if '"event":"ended"' in line]
    assert result.returncode == ExitCode.FAILED and len(ended) == 1, result.stdout
    assert "port unreachable" in ended[0] and '"cause":"unreachable"' in ended[0] and "408" not in ended[0]


def test_a_name_not_on_the_lan_yet_says_that_it_waits(tmp_path: Path) -> None:
    """Issue 17 item 7 with mDNS on: a name may still show up, so it is waited for, but not in silence (the
    line is on stderr: stdout is the events). The name is one no unit on this machine announces."""
    name = f"nobody-{os.getpid()}-{tmp_path.name}"[:60]
    argv = [shutil.which("zcall", path=os.path.dirname(sys.executable)) or "zcall", "--home", str(tmp_path),
            "--headless", "--bind", "127.0.0.1", "--sip-port", "0", "--audio-in", "silence", "--audio-out",
            "null", "--call", name, "--exit-after-call"]  # fmt: skip
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stderr is not None and proc.stdout is not None
        line = proc.stderr.readline()  # before the 15 s are up: the wait is announced as it starts
        proc.terminate()
        out, _ = proc.communicate(timeout=30)  # SIGTERM ends the wait (it sat out the 15 s, then failed)
    assert line == f"zcall: waiting up to 15 s for {name!r} to show up on the LAN…\n"
    assert '"event":"ready"' in out and '"event":"error"' not in out
