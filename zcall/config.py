"""config.toml: read with tomllib, validated section by section; errors name the key and what it expects."""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import json
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from zcall.errors import ZcallError
from zcall.natconfig import is_stun_uri, is_turn_uri
from zcall.privatefile import keep_private, write_private

MAX_CONFIG_BYTES = 64 * 1024

KEY_AGREEMENTS = ("X255", "EC25", "DH3k", "DH2k", "EC38")
SAS_TYPES = ("B256", "B32")
ON_MISMATCH = ("hangup", "continue")
ECHO_MODES = ("auto", "on", "off")


class AutoAnswer(enum.StrEnum):
    """[call] auto_answer: which incoming calls are answered without a person."""

    OFF = "off"
    VERIFIED = "verified"  # only a device whose words were compared (the call core checks the ZID)
    ALL = "all"  # anyone on the LAN or via the server: they can listen to the room (tests, intercoms)


class ConfigError(ZcallError, ValueError):
    """A config file that cannot be used; the message names the file and the key."""


BIND_EXPECTED = "an IPv4 address of this machine (e.g. 192.168.1.20), or empty for all"


def is_bind_address(text: str) -> bool:
    """An IPv4 literal (SIP, SDP and mDNS here are IPv4); a name could resolve to anything."""
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class UnitConfig:
    name: str = ""  # empty: the host name


@dataclass(frozen=True)
class NetworkConfig:
    bind: str = ""  # empty: all interfaces
    sip_port: int = 5060
    rtp_port: int = 0  # 0: any free port per call
    mdns: bool = True


@dataclass(frozen=True)
class AudioConfig:
    input: str = "default"
    output: str = "default"
    volume: int = 100
    echo_cancel: str = "auto"  # auto: on for a speaker + microphone, off for a headset, files and tones
    sounds: bool = True  # ring, ringback, busy, the secure chime and the alarm on the output


@dataclass(frozen=True)
class SecurityConfig:
    sas_types: tuple[str, ...] = SAS_TYPES
    key_agreements: tuple[str, ...] = KEY_AGREEMENTS
    on_mismatch: str = "continue"  # stay up muted and ask for the words; "hangup" ends at once


@dataclass(frozen=True)
class CallConfig:
    auto_answer: str = AutoAnswer.OFF.value
    ring_timeout: int = 60  # seconds an incoming call rings before it is refused with 480


@dataclass(frozen=True)
class ServerConfig:
    uri: str = ""  # sips:registrar.example.org; empty: LAN only
    user: str = ""
    password: str = field(default="", repr=False)  # never in a log line or traceback
    ca_file: str = ""  # empty: the system store
    outbound_proxy: str = ""
    keepalive: int = 25  # seconds between CRLF pings on the TLS flow (RFC 5626); keeps NAT bindings open


@dataclass(frozen=True)
class NatConfig:
    """NAT traversal on the server path (ICE runs when a STUN or TURN server is set)."""

    stun: str = ""  # stun:host[:port]
    turn: str = ""  # turn:host[:port][?transport=udp|tcp] or turns:host[:port]
    turn_user: str = ""
    turn_password: str = ""  # also from ZCALL_TURN_PASSWORD or --turn-password-file
    relay_only: bool = False  # media only through the TURN relay: the peer never learns our addresses


@dataclass(frozen=True)
class Config:
    unit: UnitConfig = field(default_factory=UnitConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    call: CallConfig = field(default_factory=CallConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    nat: NatConfig = field(default_factory=NatConfig)


# Per-key checks beyond the type: (predicate, what is expected).
Check = tuple[Callable[[Any], bool], str]
_CHECKS: dict[str, Check] = {
    "unit.name": (lambda v: len(v) <= 63 and v.isprintable(), "a printable name of at most 63 characters"),
    "network.bind": (lambda v: v == "" or is_bind_address(v), BIND_EXPECTED),
    "network.sip_port": (lambda v: 1 <= v <= 65535, "a port number 1-65535"),
    "network.rtp_port": (lambda v: 0 <= v <= 65535 and v % 2 == 0, "0 or an even port number up to 65534"),
    "audio.volume": (lambda v: 0 <= v <= 100, "a volume 0-100"),
    "audio.echo_cancel": (lambda v: v in ECHO_MODES, f"one of {list(ECHO_MODES)}"),
    "security.sas_types": (
        lambda v: len(v) > 0 and set(v) <= set(SAS_TYPES),
        f"a non-empty list from {list(SAS_TYPES)}",
    ),
    "security.key_agreements": (
        lambda v: len(v) > 0 and set(v) <= set(KEY_AGREEMENTS),
        f"a non-empty list from {list(KEY_AGREEMENTS)}",
    ),
    "security.on_mismatch": (lambda v: v in ON_MISMATCH, f"one of {list(ON_MISMATCH)}"),
    "call.auto_answer": (
        lambda v: v in {a.value for a in AutoAnswer}, f"one of {[a.value for a in AutoAnswer]}"
    ),
    "call.ring_timeout": (lambda v: 5 <= v <= 600, "seconds of ringing, 5-600"),
    "server.uri": (lambda v: v == "" or v.startswith(("sips:", "sip:")), "a SIP URI (sips:host[:port])"),
    "server.keepalive": (lambda v: 2 <= v <= 3600, "seconds between keep-alive pings, 2-3600"),
    "nat.stun": (lambda v: v == "" or is_stun_uri(v), "a STUN URI stun:host[:port] (no stuns:)"),
    "nat.turn": (
        lambda v: v == "" or is_turn_uri(v),
        "a TURN URI turn:host[:port][?transport=udp|tcp] or turns:host[:port] (no TURN over DTLS)",
    ),
    "nat.turn_user": (lambda v: len(v) <= 256 and v.isprintable(), "a printable user name, at most 256 long"),
    "nat.turn_password": (lambda v: len(v) <= 256 and v.isprintable(), "a printable password, 256 at most"),
}

_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false"}

T = TypeVar("T")


def _convert(key: str, value: Any, default: Any) -> Any:
    """Check one value against the type of its default."""
    if isinstance(default, tuple):
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ConfigError(f"{key}: expected a list of strings, got {value!r}")
        return tuple(value)
    expected = type(default)
    # bool is an int in Python; keep the two apart in the file.
    if isinstance(value, bool) != (expected is bool) or not isinstance(value, expected):
        raise ConfigError(f"{key}: expected {_TYPE_NAMES[expected]}, got {value!r}")
    return value


def _section(cls: type[T], name: str, table: Any) -> T:
    if not isinstance(table, Mapping):
        raise ConfigError(f"[{name}]: expected a table, got {table!r}")
    defaults = cls()
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    for key in table:
        if key not in known:
            raise ConfigError(f"{name}.{key}: unknown key (known: {', '.join(sorted(known))})")
    values: dict[str, Any] = {}
    for key, raw in table.items():
        dotted = f"{name}.{key}"
        if dotted == "call.auto_answer" and isinstance(raw, bool):
            raw = (AutoAnswer.ALL if raw else AutoAnswer.OFF).value  # files from before the three values
        value = _convert(dotted, raw, getattr(defaults, key))
        check = _CHECKS.get(dotted)
        if check is not None and not check[0](value):
            raise ConfigError(f"{dotted}: expected {check[1]}, got {raw!r}")
        values[key] = value
    return replace(defaults, **values)  # type: ignore[type-var]


def from_mapping(data: Mapping[str, Any]) -> Config:
    sections = {f.name: f.type for f in fields(Config)}
    for name in data:
        if name not in sections:
            raise ConfigError(f"[{name}]: unknown section (known: {', '.join(sections)})")
    defaults = Config()
    parts = {
        name: _section(type(getattr(defaults, name)), name, data[name]) for name in sections if name in data
    }
    return replace(defaults, **parts)


def load(path: Path) -> Config:
    """Read a config file; a missing file means the defaults."""
    try:
        with path.open("rb") as handle:
            keep_private(handle.fileno(), path)  # it may hold the server password
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return Config()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return from_mapping(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    # JSON's escapes are TOML's too; TOML also wants DEL escaped, and no surrogate pairs (so no ensure_ascii).
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def to_toml(config: Config, *, redact: bool = False) -> str:
    lines: list[str] = []
    for section in fields(config):
        lines.append(f"[{section.name}]")
        part = getattr(config, section.name)
        for item in fields(part):
            value = getattr(part, item.name)
            if redact and item.name.endswith("password") and value:
                value = "********"
            lines.append(f"{item.name} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def save(config: Config, path: Path) -> None:
    """Write atomically, owner-only (it may hold the server password)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, to_toml(config).encode("utf-8"))


def as_dict(config: Config) -> dict[str, Any]:
    return dataclasses.asdict(config)
