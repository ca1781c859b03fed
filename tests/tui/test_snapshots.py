"""Snapshots of every screen at 80×24, 60×20 and 40×15, from fixed scenes.

Update after an intended change with: .venv/bin/pytest tests/tui/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from tests.tui import scenes
from zcall import events
from zcall.tui.app import ZcallApp

SIZES = [
    pytest.param((80, 24), id="80x24"),
    pytest.param((60, 20), id="60x20"),  # a 3.5" panel's console
    pytest.param((40, 15), id="40x15"),  # the smallest the desk unit's console can be set to
]
Scene = Callable[[ZcallApp, Pilot[None]], Awaitable[None]]


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Times on screen are local: pin the zone so snapshots match on every machine."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


async def feed(app: ZcallApp, pilot: Pilot[None], items: list[events.Event]) -> None:
    for event in items:
        app.feed(event)
        await pilot.pause()
    await pilot.pause()


async def home(app: ZcallApp, pilot: Pilot[None]) -> None:
    await feed(app, pilot, scenes.home_events())
    app.clear_notifications()  # the busy call's toast would otherwise sit on every screen
    await pilot.pause()


async def port_busy(app: ZcallApp, pilot: Pilot[None]) -> None:
    app.failure = "cannot listen for SIP on 0.0.0.0:5060: Address already in use"
    await pilot.pause()


async def dial(app: ZcallApp, pilot: Pilot[None]) -> None:
    await home(app, pilot)
    await pilot.press("d")
    await pilot.press(*"sip:bob@10.0.0.5")


async def incoming(app: ZcallApp, pilot: Pilot[None]) -> None:
    await home(app, pilot)
    ringing = events.Call(
        id="1ca11ed1", state="incoming", direction="in", peer="bob-desk", uri="sip:zcall@10.0.0.7:5060",
        address="10.0.0.7", port=5060,
    )
    await feed(app, pilot, [ringing])


async def in_call(app: ZcallApp, pilot: Pilot[None]) -> None:
    await home(app, pilot)
    await feed(app, pilot, scenes.in_call_events())


async def in_call_b32(app: ZcallApp, pilot: Pilot[None]) -> None:
    await home(app, pilot)
    await feed(app, pilot, scenes.b32_events())


async def alarm(app: ZcallApp, pilot: Pilot[None]) -> None:
    await home(app, pilot)
    await feed(app, pilot, scenes.alarm_events())


async def alarm_ended(app: ZcallApp, pilot: Pilot[None]) -> None:
    """The default on_mismatch=hangup: the call ends at once and the alarm stays to be read."""
    await alarm(app, pilot)
    await feed(app, pilot, [events.Ended(id="a1a2a3a4", reason="cache mismatch", duration_s=0.0)])
    app.clear_notifications()
    await pilot.pause()


async def unbound(app: ZcallApp, pilot: Pilot[None]) -> None:
    """Through the server, someone else's DTLS session keys the audio: channel_binding_mismatch."""
    await home(app, pilot)
    await feed(app, pilot, scenes.unbound_events())


async def downgrade(app: ZcallApp, pilot: Pilot[None]) -> None:
    """A verified device reached through the server without words."""
    await home(app, pilot)
    await feed(app, pilot, scenes.downgrade_events())


async def securing(app: ZcallApp, pilot: Pilot[None]) -> None:
    await home(app, pilot)
    await feed(app, pilot, scenes.in_call_events()[:3])


async def trust(app: ZcallApp, pilot: Pilot[None]) -> None:
    await home(app, pilot)
    await pilot.press("t")


async def history(app: ZcallApp, pilot: Pilot[None]) -> None:
    """Recent calls: the busy one from Home's scene and a call with carol, longer and answered."""
    await home(app, pilot)
    await feed(app, pilot, scenes.carol_call_events())
    app.clear_notifications()
    await pilot.press("r")


async def settings(app: ZcallApp, pilot: Pilot[None]) -> None:
    await home(app, pilot)
    await pilot.press("s")


async def log(app: ZcallApp, pilot: Pilot[None]) -> None:
    await home(app, pilot)
    await feed(app, pilot, scenes.in_call_events())
    await feed(app, pilot, [events.Ended(id="5ca1ab1e", reason="remote hangup", duration_s=62.0)])
    app.clear_notifications()
    await pilot.press("l")


SCENES: dict[str, Scene] = {
    "home": home,
    "port_busy": port_busy,
    "dial": dial,
    "incoming": incoming,
    "securing": securing,
    "in_call": in_call,
    "in_call_b32": in_call_b32,
    "alarm": alarm,
    "alarm_ended": alarm_ended,
    "unbound": unbound,
    "downgrade": downgrade,
    "trust": trust,
    "history": history,
    "settings": settings,
    "log": log,
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("scene", list(SCENES))
def test_screen(snap_compare: Any, tmp_path: Path, scene: str, size: tuple[int, int]) -> None:
    app = scenes.make_app(tmp_path / "home")

    async def run_before(pilot: Pilot[None]) -> None:
        await SCENES[scene](app, pilot)
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)
