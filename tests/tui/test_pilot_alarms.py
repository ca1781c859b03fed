"""The server path's alarms on the in-call screen, fed the engine's events in the order it emits them:
channel_binding_mismatch (muted, and equal words refused) and downgrade (loud, microphone left on)."""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Static

from tests.support.waiting import until
from tests.tui import scenes
from zcall import events
from zcall.tui.app import ZcallApp
from zcall.tui.screens.incall import InCallScreen

RED = (255, 0, 0)


async def _alarm_shown(
    app: ZcallApp, pilot: Pilot[None], call_events: list[events.Event]
) -> tuple[InCallScreen, Static]:
    """Feed the home screen's events and then the call's; wait for the in-call screen and its alarm."""
    for event in [*scenes.home_events(), *call_events]:
        app.feed(event)
        await pilot.pause()
    await until(lambda: isinstance(app.screen, InCallScreen), what="the in-call screen")
    screen = app.screen
    assert isinstance(screen, InCallScreen)
    alarm = screen.query_one("#alarm", Static)
    await until(lambda: alarm.has_class("shown"), what="the alarm")
    return screen, alarm


async def test_channel_binding_mismatch_is_a_red_alarm_that_words_cannot_lift(tmp_path: Path) -> None:
    app = scenes.make_app(tmp_path / "home")
    async with app.run_test(size=(80, 24)) as pilot:
        screen, alarm = await _alarm_shown(app, pilot, scenes.unbound_events())
        assert "can listen" in str(alarm.content) and "equal words cannot" in str(alarm.content)
        assert alarm.styles.background.rgb == RED
        audio = screen.query_one("#audio", Static)
        assert "MUTED" in str(audio.content)
        await pilot.press("y")  # the words match: refused, the call stays unverified and muted
        await pilot.pause()
        call = app.view.calls["d715b0d0"]
        assert not call.verified and call.muted
        assert "MUTED" in str(audio.content) and "NOT VERIFIED" in str(screen.query_one("#status").render())
        assert any("cannot make this call safe" in str(n.message) for n in app._notifications)
        assert "cannot make this call safe" in str(screen.query_one("#hint", Static).content)


async def test_downgrade_is_a_red_alarm_with_the_microphone_on(tmp_path: Path) -> None:
    app = scenes.make_app(tmp_path / "home")
    async with app.run_test(size=(80, 24)) as pilot:
        screen, alarm = await _alarm_shown(app, pilot, scenes.downgrade_events())
        assert "no words to compare" in str(alarm.content) and "microphone is ON" in str(alarm.content)
        assert alarm.styles.background.rgb == RED
        assert not app.view.calls["d0e1d0e1"].muted  # the engine leaves it on (keying: mutes=False)
        assert "mic live" in str(screen.query_one("#audio", Static).content)
        assert screen.keeps_open()  # after the call ends the warning stays to be read
