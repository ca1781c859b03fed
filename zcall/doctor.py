"""`zcall doctor`: check this machine for everything zcall needs, one line per check."""

from __future__ import annotations

import ctypes.util
import errno
import importlib
import importlib.metadata
import socket
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from zcall import config as configmod
from zcall import identity
from zcall.media import audio, audiospec
from zcall.paths import Paths
from zcall.settings import PhoneSettings


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True


def _library(module: str, distribution: str) -> Callable[[Paths], Check]:
    def check(paths: Paths) -> Check:
        try:
            importlib.import_module(module)
        except Exception as exc:  # an import can fail in many ways (missing .so, bad ABI)
            return Check(distribution, False, f"cannot import {module}: {exc}")
        return Check(distribution, True, importlib.metadata.version(distribution))

    return check


def _libopus(paths: Paths) -> Check:
    found = ctypes.util.find_library("opus")
    return Check("libopus", found is not None, found or "not found (apt-get install libopus0)")


def _ffdh(paths: Paths) -> Check:
    # ZRTP's mandatory DH3k needs finite-field DH, which `cryptography` has deprecated.
    from cryptography.hazmat.primitives.asymmetric import dh

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            dh.generate_parameters(generator=2, key_size=512).generate_private_key()
        except Exception as exc:
            return Check("finite-field DH (DH3k)", False, str(exc))
    return Check("finite-field DH (DH3k)", True, "available")


def _dtls(paths: Paths) -> Check:
    from OpenSSL import SSL

    ok = hasattr(SSL, "DTLS_METHOD") and hasattr(SSL.Context, "set_tlsext_use_srtp")
    return Check("DTLS-SRTP in pyOpenSSL", ok, "DTLS_METHOD and use_srtp" if ok else "missing")


def _config(paths: Paths) -> Check:
    try:
        configmod.load(paths.config_file)
    except configmod.ConfigError as exc:
        return Check("config", False, str(exc))
    state = "present" if paths.config_file.exists() else "defaults (no file)"
    return Check("config", True, f"{paths.config_file}: {state}")


def _identity(paths: Paths) -> Check:
    try:
        ident = identity.load_or_create(paths.identity_dir)
    except (identity.IdentityError, OSError) as exc:
        return Check("identity", False, str(exc))
    return Check("identity", True, f"ZID {ident.zid_hex}")


CHECKS: list[Callable[[Paths], Check]] = [
    lambda paths: Check("python", sys.version_info >= (3, 11), sys.version.split()[0]),
    _library("cryptography", "cryptography"),
    _ffdh,
    _library("OpenSSL", "pyOpenSSL"),
    _dtls,
    _library("pylibsrtp", "pylibsrtp"),
    _libopus,
    _library("opuslib", "opuslib"),
    _library("pyaudio", "PyAudio"),
    _library("zeroconf", "zeroconf"),
    _library("textual", "textual"),
    _config,
    _identity,
]


# --- what this phone would use: config.toml with the command line's options on top ---


def _udp_port(name: str, host: str, port: int, paths: Paths) -> Check:
    if port == 0:
        return Check(name, True, "any free port")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                return Check(name, False, f"{host}:{port}: {exc.strerror}")
            if _phone_runs_here(paths):
                return Check(name, True, f"{host}:{port} in use by the zcall running in this home")
            return Check(name, False, f"{host}:{port} is in use by another program")
    return Check(name, True, f"{host}:{port} free")


def _phone_runs_here(paths: Paths) -> bool:
    from zcall import control

    try:
        control.request(paths.control_socket, "status", timeout=2.0)
    except control.ControlError:
        return False
    return True


def _bind(settings: PhoneSettings) -> Check:
    if not settings.bind:
        from zcall.discovery.lan import local_ipv4_addresses

        found = local_ipv4_addresses()
        detail = f"all interfaces; calls will say {found[0]}" if found else "no IPv4 address on this machine"
        return Check("bind address", bool(found), detail)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((settings.bind, 0))
        except OSError as exc:
            why = f"{exc.strerror} (not an address of this machine?)"
            return Check("bind address", False, f"{settings.bind}: {why}")
    return Check("bind address", True, settings.bind)


def _audio(name: str, spec: str, check: Callable[[str], None]) -> Check:
    try:
        check(spec)
    except audio.AudioSpecError as exc:
        return Check(name, False, f"{spec}: {exc}")
    return Check(name, True, spec)


def _nat(settings: PhoneSettings) -> Check:
    """[nat] set: gather as a call would, and say what came back (a mapped address from STUN tells the
    address a NAT gives us; a relay from TURN proves the account). A warning, not a failure: calls on the
    LAN and to public peers work without."""
    nat = settings.nat
    if not nat.enabled:
        return Check("NAT traversal", True, "[nat] not set: no ICE through the server", required=False)
    import asyncio

    from zcall.discovery.lan import local_ipv4_addresses
    from zcall.ice import IceAgent

    local = settings.bind or next(iter(local_ipv4_addresses()), "")
    if not local:
        return Check("NAT traversal", False, "no IPv4 address to gather from", required=False)

    async def gather() -> list[str]:
        agent = IceAgent(nat, local, controlling=True, on_datagram=lambda d, a: None, on_lost=lambda r: None,
                         tls_ca=settings.server_ca)  # fmt: skip
        try:
            return [f"{c.type} {c.host}:{c.port}" for c in (await agent.gather()).candidates]
        finally:
            await agent.aclose()

    found = asyncio.run(gather())
    missing = [what for what, server, kind in (("STUN", nat.stun, "srflx"), ("TURN", nat.turn, "relay"))
               if server is not None and not any(c.startswith(kind) for c in found)]  # fmt: skip
    detail = ", ".join(found) or "no candidates"
    if missing:
        detail += f"; no answer from the {' and '.join(missing)} server (address, port, account?)"
    return Check("NAT traversal", not missing, detail, required=False)


def _speaker_to_microphone(settings: PhoneSettings) -> Check:
    """`zcall audio test`'s measurement: a microphone that delivers nothing fails; a sweep not heard (a
    headset, a muted speaker) only warns."""
    from zcall import audiocmd  # numpy: only when there are devices to test

    name = "speaker to microphone"
    try:
        result = audiocmd.run_test(settings.audio_in, settings.audio_out, seconds=2.0)
    except audio.AudioSpecError as exc:
        return Check(name, False, str(exc))
    if result.captured_frames == 0:
        return Check(name, False, f"{settings.audio_in} delivered no audio")
    return Check(name, result.delay_ms is not None, audiocmd.format_line(result), required=False)


def phone_checks(settings: PhoneSettings, paths: Paths) -> list[Check]:
    host = settings.bind or "0.0.0.0"
    checks = [
        _nat(settings),
        _bind(settings),
        _udp_port("SIP port", host, settings.sip_port, paths),
        _udp_port("RTP port", host, settings.rtp_port, paths),
        _audio("audio input", settings.audio_in, audiospec.check_source),
        _audio("audio output", settings.audio_out, audiospec.check_sink),
    ]
    if checks[-1].ok and checks[-2].ok and audiospec.is_device(settings.audio_in) \
            and audiospec.is_device(settings.audio_out):
        checks.append(_speaker_to_microphone(settings))
    return checks


def run(paths: Paths, settings: PhoneSettings) -> int:
    results = [check(paths) for check in CHECKS]
    if all(r.ok for r in results if r.name == "config"):  # then check what the phone would run with
        results += phone_checks(settings, paths)
    width = max(len(result.name) for result in results)
    for result in results:
        mark = "ok  " if result.ok else ("FAIL" if result.required else "warn")
        print(f"{mark} {result.name.ljust(width)}  {result.detail}")
    failed = [r for r in results if r.required and not r.ok]
    print("all checks passed" if not failed else f"{len(failed)} check(s) failed")
    return 0 if not failed else 1
