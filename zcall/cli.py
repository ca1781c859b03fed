"""Command line: the TUI by default, --headless, and the subcommands (docs/cli.md).

Each command imports only what it needs, inside its handler: a one-shot like `trust list` or `ctl status`
must not pay for asyncio, cryptography, zeroconf, numpy or Textual.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence

from zcall import __version__
from zcall import config as configmod
from zcall.errors import ZcallError
from zcall.exitcodes import ExitCode
from zcall.exitcodes import describe as describe_exit_codes
from zcall.paths import Paths

MAX_SECRET_FILE_BYTES = 4096
PASSWORD_ENV = "ZCALL_PASSWORD"
TURN_PASSWORD_ENV = "ZCALL_TURN_PASSWORD"

EPILOG = f"""\
TUI keys (the footer always shows them):
  Home      Up/Down pick a peer, Enter call it, d dial a SIP URI, r recent calls, t trust, s settings,
            l log, q quit
  Recent    Enter call back, Escape back
  Incoming  Enter or a answer, Escape or r reject
  In call   y or Enter words match (verify), n words differ (hang up), m mute, Up/Down or +/- volume,
            h or Escape hang up
  Trust     c or Enter call, r rename, v verify, u unverify, f forget, Escape back
  Settings  Ctrl+S save to config.toml, Ctrl+T test tone, Escape back
  A desk unit's buttons are keys: UP, DOWN, OK = Enter, BACK = Escape, MUTE = m, DIFFER = n.

files (under --home DIR, else $XDG_CONFIG_HOME/zcall and $XDG_DATA_HOME/zcall):
  config.toml              settings, mode 0600 (`zcall config init` writes the defaults)
  data/identity/           this device's ZID, certificate and key, mode 0600
  data/cache.sqlite        the trust cache: retained secrets, verified flag, names
  data/history.jsonl       the last 200 calls (TUI), mode 0600
  run/zcall.sock           the control socket `zcall ctl` talks to (run/ is $XDG_RUNTIME_DIR/zcall)

the server password: --password-file FILE or ${PASSWORD_ENV} (--password is visible in `ps`), or [server]
password in config.toml. The TURN password likewise: --turn-password-file FILE, ${TURN_PASSWORD_ENV}, or [nat]
turn_password.

exit codes:
{describe_exit_codes()}
"""


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port number 0-65535")
    return value


def _bind(text: str) -> str:
    if not configmod.is_bind_address(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not {configmod.BIND_EXPECTED}")
    return text


def _zid(text: str) -> str:
    if len(text) != 24 or any(c not in "0123456789abcdef" for c in text.lower()):
        raise argparse.ArgumentTypeError("a ZID is 24 hex digits")
    return text.lower()


def _seconds(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds")
    return value


def _actions(
    parser: argparse.ArgumentParser, dest: str
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    return parser.add_subparsers(dest=dest, metavar="ACTION", required=True, title="actions")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zcall",
        description="Secure desk-phone calls: SIP, ZRTP with SAS words, Opus over SRTP. "
        "With no command: the desk-phone screen (TUI).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"zcall {__version__}")
    parser.add_argument("--home", metavar="DIR", help="keep every file of this instance under DIR")
    parser.add_argument("--config", metavar="FILE", help="read this config file instead of the default")

    phone = parser.add_argument_group("phone options (TUI and --headless; they override config.toml)")
    phone.add_argument("--name", help="this unit's display name (default: [unit] name, else the host name)")
    phone.add_argument("--bind", type=_bind, metavar="IP", help="the IPv4 address to listen on (default all)")
    phone.add_argument("--sip-port", type=_port, metavar="N", help="SIP port (default 5060; 0: any free)")
    phone.add_argument("--rtp-port", type=_port, metavar="N", help="media port (default 0: any free)")
    phone.add_argument("--no-mdns", action="store_true", help="neither advertise nor browse on the LAN")
    phone.add_argument("--audio-in", metavar="SPEC", help="default|DEVICE|file:PATH.wav|tone:HZ|silence")
    phone.add_argument("--audio-out", metavar="SPEC", help="default|DEVICE|file:PATH.wav|null")
    phone.add_argument("--auto-answer", action="store_true", help="answer every incoming call by itself")
    phone.add_argument("--server", metavar="SIPS_URI", help="register with this SIP server over TLS")
    phone.add_argument("--user", metavar="U", help="the account's user name on --server")
    secret = phone.add_mutually_exclusive_group()
    secret.add_argument("--password", metavar="P", help=f"the account's password (visible in ps: prefer "
                        f"--password-file or ${PASSWORD_ENV})")
    secret.add_argument("--password-file", metavar="FILE", help="read the account's password from FILE")
    phone.add_argument("--turn-password-file", metavar="FILE",
                       help=f"read [nat] turn_password from FILE (or ${TURN_PASSWORD_ENV})")
    phone.add_argument("--server-ca", metavar="PEM", help="trust this CA for --server (default: system)")
    phone.add_argument(
        "--on-mismatch", choices=list(configmod.ON_MISMATCH),
        help="a key mismatch hangs up, or continues muted until the words are compared",
    )

    run = parser.add_argument_group("headless mode")
    run.add_argument("--headless", action="store_true", help="no UI; events as JSON lines on stdout")
    run.add_argument("--events", choices=["jsonl"], default="jsonl", help="event output format")
    run.add_argument("--call", metavar="TARGET", help="call a peer's name, a ZID, or a SIP URI at start")
    run.add_argument(
        "--hangup-after", type=_seconds, metavar="SECONDS", help="hang up this long after secure"
    )
    run.add_argument(
        "--exit-after-call", action="store_true", help="exit when the first call ends (see exit codes)"
    )

    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    peers = sub.add_parser("peers", help="list zcall units on the LAN")
    peers.add_argument("--wait", type=_seconds, default=3.0, metavar="S", help="browse this long (default 3)")
    peers.add_argument("--json", action="store_true", help="one JSON object per peer")

    trust = sub.add_parser("trust", help="the devices this unit has keys with")
    trust_sub = _actions(trust, "trust_command")
    trust_sub.add_parser("list", help="every known device: ZID, name, trust, first and last seen")
    peer_help = "the device: its name, its ZID or a unique ZID prefix (4+ hex digits)"
    for action, text in (
        ("verify", "mark the device verified (you compared the words)"),
        ("unverify", "clear the verified mark"),
        ("forget", "delete the device and its secrets"),
    ):
        trust_sub.add_parser(action, help=text).add_argument("peer", help=peer_help)
    rename = trust_sub.add_parser("rename", help="give the device a name of your own")
    rename.add_argument("peer", help=peer_help)
    rename.add_argument("new_name", help="the new name")

    sub.add_parser(
        "doctor", help="check this machine for what zcall needs (with the phone options given before it)"
    )

    snd = sub.add_parser("audio", help="sound devices: list them, or test speaker to microphone")
    snd_sub = _actions(snd, "audio_command")
    snd_sub.add_parser("list", help="devices by name, the defaults marked").add_argument(
        "--json", action="store_true", help="as JSON")
    snd_test = snd_sub.add_parser(
        "test", help="play a sweep on --audio-out, record --audio-in: level, delay, echo return loss")
    snd_test.add_argument("--json", action="store_true", help="as JSON")
    snd_test.add_argument("--seconds", type=_seconds, default=2.0, metavar="S", help="how long (default 2)")

    ctl = sub.add_parser("ctl", help="drive the running instance of this --home")
    ctl_sub = _actions(ctl, "ctl_command")
    ctl_call = ctl_sub.add_parser("call", help="call a peer's name, a ZID, or a SIP URI")
    ctl_call.add_argument("target", help="a peer's name, a ZID, or a SIP URI")
    ctl_call.add_argument(
        "--zid", type=_zid, help="the device it must be (e.g. a trust entry called at its URI): ZRTP meeting "
        "another raises identity_mismatch",
    )  # fmt: skip
    call_id = "the call's id (default: the only call)"
    ctl_sub.add_parser("answer", help="answer the ringing call").add_argument("id", nargs="?", help=call_id)
    ctl_sub.add_parser("hangup", help="hang up or reject").add_argument("id", nargs="?", help=call_id)
    verify = ctl_sub.add_parser("verify", help="the SAS words match (or --differ: they do not; hang up)")
    verify.add_argument("id", nargs="?", help=call_id)
    verify.add_argument("--differ", action="store_true", help="the words differ: hang up, keep no secret")
    ctl_sub.add_parser("status", help="this unit, its calls and the LAN peers, as JSON")

    cfg = sub.add_parser("config", help="show, locate or create the config file")
    cfg_sub = _actions(cfg, "config_command")
    cfg_sub.add_parser("show", help="the effective configuration (password hidden)")
    cfg_sub.add_parser("path", help="where the config file is")
    init = cfg_sub.add_parser("init", help="write a config file with the defaults")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    return parser


def _config_command(args: argparse.Namespace, paths: Paths) -> int:
    if args.config_command == "path":
        print(paths.config_file)
        return 0
    if args.config_command == "init":
        if paths.config_file.exists() and not args.force:
            print(f"zcall: {paths.config_file} exists; use --force to overwrite", file=sys.stderr)
            return 1
        configmod.save(configmod.Config(), paths.config_file)
        print(paths.config_file)
        return 0
    print(configmod.to_toml(configmod.load(paths.config_file), redact=True), end="")
    return 0


def _ctl_command(args: argparse.Namespace, paths: Paths) -> int:
    from zcall import control

    command = args.ctl_command
    request_args = {
        k: v
        for k in ("target", "id", "zid")
        if (v := getattr(args, k, None)) is not None
    }
    if command == "verify" and args.differ:
        request_args["match"] = False
    try:
        result = control.request(paths.control_socket, command, request_args)
    except control.ControlError as exc:
        print(f"zcall: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2 if command == "status" else None))
    return 0


def _peers_command(args: argparse.Namespace, paths: Paths) -> int:
    from zcall import control

    if paths.control_socket.exists():
        # A phone runs in this home: it already knows the LAN, and a second browser would only repeat it.
        with contextlib.suppress(control.ControlError):
            for p in control.request(paths.control_socket, "status")["peers"]:
                print(
                    json.dumps(p)
                    if args.json
                    else f"{p['name']}\t{p['zid']}\tsip:zcall@{p['address']}:{p['port']}"
                )
            return 0
    import asyncio

    from zcall import peers, settings

    merged = settings.merge(configmod.load(paths.config_file), args)
    return asyncio.run(peers.list_peers(merged, paths, args.wait, args.json))


def _doctor_command(args: argparse.Namespace, paths: Paths) -> int:
    from zcall import doctor, settings

    try:
        config = configmod.load(paths.config_file)
    except configmod.ConfigError:
        config = configmod.Config()  # doctor reports the config error itself, as one of its checks
    return doctor.run(paths, settings.merge(config, args))


def _audio_command(args: argparse.Namespace, paths: Paths) -> int:
    from zcall import audiocmd, settings

    merged = settings.merge(configmod.load(paths.config_file), args)
    return audiocmd.command(args.audio_command, merged.audio_in, merged.audio_out, args.json,
                            getattr(args, "seconds", 2.0))


def _trust_command(args: argparse.Namespace, paths: Paths) -> int:
    from zcall import trust

    return trust.run(args, paths)


COMMANDS: dict[str, Callable[[argparse.Namespace, Paths], int]] = {
    "audio": _audio_command,
    "config": _config_command,
    "doctor": _doctor_command,
    "peers": _peers_command,
    "trust": _trust_command,
    "ctl": _ctl_command,
}


def _read_secret_file(name: str, option: str = "--password-file") -> str:
    """The first line of FILE (a password file holds one secret; a trailing newline is not part of it)."""
    try:
        with open(name, "rb") as handle:
            raw = handle.read(MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        raise configmod.ConfigError(f"{option} {name}: cannot read: {exc.strerror}") from exc
    if len(raw) > MAX_SECRET_FILE_BYTES:
        raise configmod.ConfigError(f"{option} {name}: larger than {MAX_SECRET_FILE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise configmod.ConfigError(f"{option} {name}: not UTF-8 text") from None
    lines = text.splitlines()
    if not lines or not lines[0]:
        raise configmod.ConfigError(f"{option} {name}: empty first line")
    return lines[0]


def _password_override(args: argparse.Namespace, env: dict[str, str]) -> str | None:
    """--password-file, else $ZCALL_PASSWORD, else --password (warned about), else None: the config's."""
    if args.password_file is not None:
        return _read_secret_file(args.password_file)
    if args.password is not None:
        print(
            f"zcall: warning: --password is visible to every user of this machine (ps); "
            f"use --password-file FILE or ${PASSWORD_ENV}",
            file=sys.stderr,
        )
        return str(args.password)
    return env.get(PASSWORD_ENV) or None


def _turn_password_override(args: argparse.Namespace, env: dict[str, str]) -> str | None:
    """--turn-password-file, else $ZCALL_TURN_PASSWORD, else None: [nat] turn_password."""
    if args.turn_password_file is not None:
        return _read_secret_file(args.turn_password_file, "--turn-password-file")
    return env.get(TURN_PASSWORD_ENV) or None


def _run_phone(args: argparse.Namespace, paths: Paths) -> int:
    from zcall import settings

    config = configmod.load(paths.config_file)  # a bad config is reported before anything starts
    args.password = _password_override(args, dict(os.environ))
    args.turn_password = _turn_password_override(args, dict(os.environ))
    merged = settings.merge(config, args)
    for warning in settings.startup_warnings(merged):
        print(f"zcall: warning: {warning}", file=sys.stderr)
    if not args.headless:
        from zcall.tui import app

        return app.run(merged, paths)
    import asyncio

    from zcall import headless

    return asyncio.run(headless.run(merged, paths, args))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    paths = Paths.resolve(args.home, args.config)
    try:
        if args.command is not None:
            return COMMANDS[args.command](args, paths)
        return _run_phone(args, paths)
    except configmod.ConfigError as exc:
        print(f"zcall: config error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except ZcallError as exc:  # the trust cache, the identity: a refusal the user can act on
        print(f"zcall: {exc}", file=sys.stderr)
        return ExitCode.FAILED
    except OSError as exc:  # a home or file we cannot use (--home /dev/null/x, a read-only folder)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"zcall: {where}{exc.strerror or exc}", file=sys.stderr)
        return ExitCode.FAILED


if __name__ == "__main__":
    sys.exit(main())
