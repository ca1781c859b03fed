"""Helpers for the TUI tests: settings for a real Phone on one address, free ports, waiting under Pilot."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path

from zcall import config as configmod
from zcall import settings as settingsmod
from zcall.settings import PhoneSettings


def free_port(ip: str = "127.0.0.1") -> int:
    """A UDP port free right now on ip (SIP is UDP here)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((ip, 0))
        return int(sock.getsockname()[1])


def phone_settings(
    name: str, bind: str, sip_port: int, *, mdns: bool = False, on_mismatch: str = "hangup"
) -> PhoneSettings:
    """Real settings, as the command line would merge them, with audio that needs no sound card."""
    merged = settingsmod.merge(configmod.Config())
    return PhoneSettings(
        **{
            **merged.__dict__,
            "name": name,
            "bind": bind,
            "sip_port": sip_port,
            "mdns": mdns,
            "audio_in": "tone:440",
            "audio_out": "null",
            "on_mismatch": on_mismatch,
        }
    )


async def wait_for_peer(peer_wait: Callable[..., object], *args: object, **kw: object) -> object:
    """Run a blocking ZcallPeer.wait_event in a thread so the app's loop keeps serving the engine."""
    return await asyncio.to_thread(peer_wait, *args, **kw)


def home(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.mkdir(parents=True, exist_ok=True)
    return path
