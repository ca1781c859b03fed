"""Command line: the TUI by default, --headless, and the subcommands of the contract (see DESIGN.md)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Callable, Sequence

from zcall import __version__, control, doctor, headless, peers, settings, trust
from zcall import config as configmod
from zcall.exitcodes import ExitCode
from zcall.exitcodes import describe as describe_exit_codes
from zcall.paths import Paths
from zcall.zrtp.cache import CacheError


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port number 0-65535")
    return value


def _bind(text: str) -> str:
    if not configmod.is_bind_address(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not {configmod.BIND_EXPECTED}")
    return text


def _seconds(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zcall",
        description="Secure desk-phone calls: SIP, ZRTP with SAS words, Opus over SRTP.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit codes:\n" + describe_exit_codes(),
    )
    parser.add_argument("--version", action="version", version=f"zcall {__version__}")
    parser.add_argument("--home", metavar="DIR", help="keep every file of this instance under DIR")
    parser.add_argument("--config", metavar="FILE", help="read this config file instead of the default")

    run = parser.add_argument_group("headless mode")
    run.add_argument("--headless", action="store_true", help="no UI; events as JSON lines on stdout")
    run.add_argument("--events", choices=["jsonl"], default="jsonl", help="event output format")
    run.add_argument("--name", help="this unit's display name")
    run.add_argument("--bind", type=_bind, metavar="IP", help="the address to listen on")
    run.add_argument("--sip-port", type=_port, metavar="N")
    run.add_argument("--rtp-port", type=_port, metavar="N")
    run.add_argument("--no-mdns", action="store_true", help="neither advertise nor browse on the LAN")
    run.add_argument("--audio-in", metavar="SPEC", help="default|DEVICE|file:PATH.wav|tone:HZ|silence")
    run.add_argument("--audio-out", metavar="SPEC", help="default|DEVICE|file:PATH.wav|null")
    run.add_argument("--auto-answer", action="store_true")
    run.add_argument("--call", metavar="TARGET", help="a peer's name, a ZID, or a SIP URI")
    run.add_argument(
        "--hangup-after", type=_seconds, metavar="SECONDS", help="hang up this long after secure"
    )
    run.add_argument("--exit-after-call", action="store_true")
    run.add_argument("--server", metavar="SIPS_URI")
    run.add_argument("--user", metavar="U")
    run.add_argument("--password", metavar="P")
    run.add_argument("--server-ca", metavar="PEM")
    run.add_argument("--on-mismatch", choices=list(configmod.ON_MISMATCH))

    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    peers = sub.add_parser("peers", help="list zcall units on the LAN")
    peers.add_argument("--wait", type=_seconds, default=3.0, metavar="S")
    peers.add_argument("--json", action="store_true", help="one JSON object per peer")

    trust = sub.add_parser("trust", help="the devices this unit has talked to")
    trust_sub = trust.add_subparsers(dest="trust_command", metavar="ACTION", required=True)
    trust_sub.add_parser("list")
    for action in ("verify", "unverify", "forget"):
        trust_sub.add_parser(action).add_argument("peer", help="a ZID (hex) or a peer name")
    rename = trust_sub.add_parser("rename")
    rename.add_argument("peer")
    rename.add_argument("new_name")

    sub.add_parser("doctor", help="check this machine for what zcall needs")

    ctl = sub.add_parser("ctl", help="drive the running instance of this --home")
    ctl_sub = ctl.add_subparsers(dest="ctl_command", metavar="ACTION", required=True)
    ctl_sub.add_parser("call").add_argument("target")
    ctl_sub.add_parser("answer").add_argument("id", nargs="?")
    ctl_sub.add_parser("hangup").add_argument("id", nargs="?")
    verify = ctl_sub.add_parser("verify", help="the SAS words match (or --differ: they do not; hang up)")
    verify.add_argument("id", nargs="?")
    verify.add_argument("--differ", action="store_true")
    ctl_sub.add_parser("status")

    cfg = sub.add_parser("config", help="show, locate or create the config file")
    cfg_sub = cfg.add_subparsers(dest="config_command", metavar="ACTION", required=True)
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
    command = args.ctl_command
    request_args = {
        k: v
        for k, v in (("target", getattr(args, "target", None)), ("id", getattr(args, "id", None)))
        if v is not None
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
    merged = settings.merge(configmod.load(paths.config_file), args)
    return asyncio.run(peers.list_peers(merged, paths, args.wait, args.json))


COMMANDS: dict[str, Callable[[argparse.Namespace, Paths], int]] = {
    "config": _config_command,
    "doctor": lambda args, paths: doctor.run(paths),
    "peers": _peers_command,
    "trust": trust.run,
    "ctl": _ctl_command,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    paths = Paths.resolve(args.home, args.config)
    try:
        if args.command is not None:
            return COMMANDS[args.command](args, paths)
        config = configmod.load(paths.config_file)  # a bad config is reported before anything starts
        merged = settings.merge(config, args)
        for warning in settings.startup_warnings(merged):
            print(f"zcall: warning: {warning}", file=sys.stderr)
        if not args.headless:
            from zcall.tui import app  # imported late: Textual is not needed by the other commands

            return app.run(merged, paths)
        return asyncio.run(headless.run(merged, paths, args))
    except configmod.ConfigError as exc:
        print(f"zcall: config error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except CacheError as exc:
        print(f"zcall: {exc}", file=sys.stderr)
        return ExitCode.FAILED
    except OSError as exc:  # a home or file we cannot use (--home /dev/null/x, a read-only folder)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"zcall: {where}{exc.strerror or exc}", file=sys.stderr)
        return ExitCode.FAILED


if __name__ == "__main__":
    sys.exit(main())
