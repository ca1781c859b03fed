"""What one running phone uses: the config file's values with the command line's overrides on top."""

from __future__ import annotations

import argparse
import socket
from dataclasses import dataclass, field

from zcall.config import AutoAnswer, Config, ConfigError, NatConfig
from zcall.natconfig import NatSettings, parse_stun_uri, parse_turn_uri


@dataclass(frozen=True)
class PhoneSettings:
    name: str
    bind: str
    sip_port: int
    rtp_port: int
    mdns: bool
    audio_in: str
    audio_out: str
    auto_answer: AutoAnswer
    on_mismatch: str
    sas_types: tuple[str, ...]
    key_agreements: tuple[str, ...]
    server_uri: str
    server_user: str
    server_password: str = field(repr=False)
    server_ca: str
    outbound_proxy: str
    server_keepalive: int
    echo_cancel: str = "auto"
    ring_timeout: int = 60
    nat: NatSettings = field(default_factory=NatSettings)
    sounds: bool = True


def _pick(override: object, value: object) -> object:
    return value if override is None else override


def merge(config: Config, args: argparse.Namespace | None = None) -> PhoneSettings:
    """Config values, overridden by the options given on the command line (None means not given)."""

    def arg(name: str) -> object:
        return getattr(args, name, None) if args is not None else None

    name = str(_pick(arg("name"), config.unit.name)) or socket.gethostname()
    return PhoneSettings(
        name=name,
        bind=str(_pick(arg("bind"), config.network.bind)),
        sip_port=int(str(_pick(arg("sip_port"), config.network.sip_port))),
        rtp_port=int(str(_pick(arg("rtp_port"), config.network.rtp_port))),
        mdns=config.network.mdns and not bool(arg("no_mdns")),
        audio_in=str(_pick(arg("audio_in"), config.audio.input)),
        audio_out=str(_pick(arg("audio_out"), config.audio.output)),
        echo_cancel=config.audio.echo_cancel,
        sounds=config.audio.sounds,
        # --auto-answer (tests, demos) means everyone.
        auto_answer=AutoAnswer.ALL if arg("auto_answer") else AutoAnswer(config.call.auto_answer),
        on_mismatch=str(_pick(arg("on_mismatch"), config.security.on_mismatch)),
        ring_timeout=config.call.ring_timeout,
        sas_types=config.security.sas_types,
        key_agreements=config.security.key_agreements,
        server_uri=str(_pick(arg("server"), config.server.uri)),
        server_user=str(_pick(arg("user"), config.server.user)),
        server_password=str(_pick(arg("password"), config.server.password)),
        server_ca=str(_pick(arg("server_ca"), config.server.ca_file)),
        outbound_proxy=config.server.outbound_proxy,
        server_keepalive=config.server.keepalive,
        nat=nat_settings(config.nat, arg("turn_password")),
    )


def nat_settings(nat: NatConfig, password_override: object = None) -> NatSettings:
    """[nat] as the ICE agent takes it (the URIs were checked when the file was read). A TURN server needs
    an account: a missing user or password is a config error, not a relay that silently never comes."""
    password = nat.turn_password if password_override is None else str(password_override)
    turn = parse_turn_uri(nat.turn) if nat.turn else None
    if nat.relay_only and turn is None:
        raise ConfigError("nat.relay_only needs nat.turn (a TURN server to relay through)")
    if turn is not None and not (nat.turn_user and password):
        raise ConfigError(
            "nat.turn needs nat.turn_user and a password (nat.turn_password, ZCALL_TURN_PASSWORD or "
            "--turn-password-file)"
        )
    return NatSettings(
        stun=parse_stun_uri(nat.stun) if nat.stun else None,
        turn=turn,
        turn_user=nat.turn_user,
        turn_password=password,
        relay_only=nat.relay_only,
    )


def startup_warnings(settings: PhoneSettings) -> list[str]:
    """What a person starting this phone should be told before it runs."""
    warnings = []
    if settings.auto_answer is AutoAnswer.ALL:
        warnings.append(
            "auto-answer is on for every caller: anyone on the LAN (or via the server) can listen to this "
            'room. Use [call] auto_answer = "verified" to answer only devices whose words you compared.'
        )
    return warnings
