"""Settings and trust screens under Pilot, on real files: config.toml, the trust cache, WAV output."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from textual.widgets import DataTable, Input, Static

from tests.support.audio_check import read_wav
from tests.support.waiting import until
from tests.tui import scenes
from tests.tui.helpers import free_port, phone_settings
from zcall import audiocmd, events
from zcall import config as configmod
from zcall.engine import Phone
from zcall.exitcodes import ExitCode
from zcall.history import CallRecord, History
from zcall.identity import load_or_create
from zcall.media.audio import WavSink
from zcall.media.output import GainSink
from zcall.paths import Paths
from zcall.tui.app import ZcallApp
from zcall.tui.screens.home import HomeScreen
from zcall.tui.screens.settings import SettingsScreen
from zcall.tui.screens.trust import ConfirmDialog, RenameDialog, TrustScreen
from zcall.zrtp.cache import ZrtpCache


async def test_settings_meter_tone_and_save(tmp_path: Path) -> None:
    app = scenes.make_app(tmp_path / "home")
    app.live = True  # the meter and the tone run for real here
    audio = configmod.AudioConfig(input="tone:1000", output=f"file:{tmp_path / 'tone.wav'}")
    configmod.save(configmod.Config(audio=audio), app.paths.config_file)
    app.config = configmod.load(app.paths.config_file)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("s")
        await until(lambda: isinstance(app.screen, SettingsScreen), what="settings")
        level = app.screen.query_one("#level", Static)
        await until(lambda: "dBFS" in str(level.content), what="a live level")
        assert "-13 dBFS" in str(level.content)  # tone:HZ is a 0.3 amplitude sine: about -13.5 dBFS
        await pilot.press("ctrl+t")  # zcall audio test's code: the sweep out, the tone in

        def test_line() -> str | None:
            return next((line for line in app.view.log if "audio test:" in line), None)

        await until(lambda: test_line() is not None, what="the audio test's result", timeout=20)
        line = test_line()
        assert line is not None and "input level -13" in line and "sweep not heard" in line, line
        await until(lambda: "dBFS" in str(level.content), what="the meter back")
        name = app.screen.query_one("#name", Input)
        name.value = "desk-7"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert configmod.load(app.paths.config_file).unit.name == "desk-7"
        name.value = "bad\tname"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert configmod.load(app.paths.config_file).unit.name == "desk-7", "an invalid value is not saved"
        await pilot.press("escape")
    samples, rate = read_wav(tmp_path / "tone.wav")  # what the test played: the sweep, twice
    assert samples.size >= rate * 1.9
    delay, loss = audiocmd.measure(audiocmd.sweep(), samples)
    assert delay is not None and loss is not None and abs(loss) < 1, (delay, loss)


async def test_trust_rename_unverify_forget(tmp_path: Path) -> None:
    app: ZcallApp = scenes.make_app(tmp_path / "home")
    cache = app.cache
    assert cache is not None
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.press("t")
        await until(lambda: isinstance(app.screen, TrustScreen), what="trust")
        table: DataTable[Any] = app.screen.query_one(DataTable)
        assert [str(table.get_row_at(i)[0]) for i in range(table.row_count)] == ["bob", "Carol (front desk)"]
        await pilot.press("u")  # bob is first (verified first)
        assert not next(r for r in cache.peers() if r.zid == scenes.BOB_ZID).verified
        await pilot.press("r")
        await until(lambda: isinstance(app.screen, RenameDialog), what="the rename dialog")
        app.screen.query_one(Input).value = "Bob upstairs"
        await pilot.press("enter")
        await until(lambda: isinstance(app.screen, TrustScreen), what="trust again")
        assert {r.name for r in cache.peers()} == {"Bob upstairs", "Carol (front desk)"}
        await pilot.press("down", "f")
        await until(lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
        await pilot.press("n")  # no: nothing is forgotten
        assert len(cache.peers()) == 2
        await pilot.press("f")
        await until(lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
        await pilot.press("y")
        await pilot.pause()
        names = [r.name for r in cache.peers()]
        assert len(names) == 1 and names[0] in ("Bob upstairs", "Carol (front desk)")
        assert table.row_count == 1


def test_gain_sink_scales_playback(tmp_path: Path) -> None:
    out = tmp_path / "gain.wav"
    sink = GainSink(WavSink(out), 50)
    frame = np.full(960, 10000, np.int16).tobytes()
    sink.write_frame(frame)
    sink.percent = 100
    sink.write_frame(frame)
    sink.close()
    samples, _ = read_wav(out)
    assert abs(float(np.mean(samples[:960])) * 2 - float(np.mean(samples[960:]))) < 200


async def test_sip_port_busy_says_so_offers_no_dial_and_exits_non_zero(tmp_path: Path) -> None:
    """Issue 17 item 5: it used to stay at "starting…", offer Dial and exit 0."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        paths = Paths.for_home(tmp_path / "alice")
        # As `zcall` starts it: the app builds its Phone itself once the first screen is up.
        settings = phone_settings("alice", "127.0.0.1", port)
        app = ZcallApp(None, paths, settings=settings, build_phone=True)
        async with app.run_test(size=(80, 24)) as pilot:
            failure = app.screen.query_one("#failure", Static)
            await until(lambda: failure.display, what="the failure to show")
            assert f"cannot listen for SIP on 127.0.0.1:{port}" in str(failure.content)
            assert "starting" not in str(app.screen.query_one("#me", Static).content)
            shown = app.screen.active_bindings.values()
            footer = " ".join(b.binding.description for b in shown if b.binding.show)
            assert "Dial" not in footer and "Call" not in footer and "Quit" in footer
            await pilot.press("d")
            assert isinstance(app.screen, HomeScreen), "no dial screen for a phone that is not running"
            await pilot.press("q")
        assert app.return_code == ExitCode.FAILED


@pytest.mark.parametrize(
    ("audio_in", "said"),
    [("file:{home}/missing.wav", "missing.wav"), ("file:{home}/not.wav", "not.wav"), ("tone:abc", "abc")],
)
async def test_an_audio_source_no_call_could_open_stops_the_phone_at_start(
    tmp_path: Path, audio_in: str, said: str
) -> None:
    """Issue 17 item 4, in the TUI: it said ready, every call then died at setup, and it exited 0."""
    (tmp_path / "not.wav").write_text("not a WAV file")
    paths = Paths.for_home(tmp_path / "alice")
    settings = dataclasses.replace(
        phone_settings("alice", "127.0.0.1", free_port()), audio_in=audio_in.format(home=tmp_path)
    )
    app = ZcallApp(None, paths, settings=settings, build_phone=True)
    async with app.run_test(size=(80, 24)) as pilot:
        failure = app.screen.query_one("#failure", Static)
        await until(lambda: failure.display, what="the failure to show")
        assert "audio:" in str(failure.content) and said in str(failure.content)
        assert app.phone is None  # nothing was started: no SIP port, no control socket
        await pilot.press("q")
    assert app.return_code == ExitCode.FAILED


async def test_a_missing_sound_device_is_a_warning_and_the_phone_starts(tmp_path: Path) -> None:
    """A sound card can still come (a desk unit's at boot), and a desk unit has no q key: the phone starts and
    says what is missing, once, in the log and a notification."""
    settings = phone_settings("alice", "127.0.0.1", free_port())
    settings = dataclasses.replace(settings, audio_out="no-such-card")
    app = ZcallApp(None, Paths.for_home(tmp_path / "alice"), settings=settings, build_phone=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(lambda: app.started, what="the phone to start")
        assert app.failure == ""
        warned = [line for line in app.view.log if "audio:" in line]
        assert len(warned) == 1 and "no-such-card" in warned[0], list(app.view.log)
        await pilot.press("q")
    assert app.return_code == ExitCode.OK


async def test_settings_show_the_values_in_effect(tmp_path: Path) -> None:
    """Issue 17 item 11: the screen showed config.toml's values; the running phone's are what count."""
    paths = Paths.for_home(tmp_path / "alice")
    paths.ensure_private_dirs()
    configmod.save(configmod.Config(audio=configmod.AudioConfig(volume=70)), paths.config_file)
    port = free_port()
    settings = dataclasses.replace(
        phone_settings("alice", "127.0.0.1", port, on_mismatch="continue"),
        auto_answer=configmod.AutoAnswer.ALL,
        rtp_port=40400,
    )
    app = ZcallApp(Phone(settings, paths), paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(lambda: app.started, what="the phone to start")
        await pilot.press("s")
        await until(lambda: isinstance(app.screen, SettingsScreen), what="settings")
        rows = app.screen.query("#in_effect .value").results(Static)
        shown = "\n".join(str(row.content) for row in rows)
        for expected in (
            f"alice · sip:zcall@127.0.0.1:{port}",
            f"bind 127.0.0.1 · SIP port {port} · RTP port 40400 · mDNS off",
            "in tone:440 · out null · volume 70%",
            "auto-answer all · on mismatch: continue",
            "none (LAN only)",
        ):
            assert expected in shown, (expected, shown)
        await pilot.press("escape", "q")


async def test_first_screen_shows_this_unit_from_its_files_before_the_engine(tmp_path: Path) -> None:
    """Issue 17 (first screen): Home came up as "zcall · starting…", with recent calls under the names the
    peers gave themselves, until the engine was loaded; the name, the ZID and the trust names are on disk."""
    paths = Paths.for_home(tmp_path / "alice")
    paths.ensure_private_dirs()
    zid = load_or_create(paths.identity_dir).zid_hex
    with ZrtpCache(paths.cache_file) as cache:
        cache.touch(scenes.BOB_ZID, scenes.NOW, name="Bob upstairs")
    call = CallRecord(scenes.NOW, "in", "vm", scenes.BOB_ZID.hex(), "", "remote hangup", 3.0, secure=True)
    History(paths.history_file).add(call)
    app = ZcallApp(None, paths, settings=phone_settings("alice", "127.0.0.1", free_port()))  # no engine
    async with app.run_test(size=(80, 24)) as pilot:
        title = app.screen.query_one("#me", Static)
        assert str(title.content) == f"zcall · alice · starting… · ZID {zid[:8]}…"
        assert "Bob upstairs" in str(app.screen.query_one("#recent", Static).content)
        # `ready` says what is in effect: discovery may have renamed the unit.
        await pilot.resize_terminal(40, 15)  # the desk console's narrowest: the title wraps, nothing is cut
        await pilot.pause()
        assert title.size.height == 2
        app.feed(events.Ready(name="alice (2)", zid=zid, sip_uri="sip:zcall@127.0.0.1:5060"))
        await pilot.pause()
        assert str(title.content) == f"zcall · alice (2) · ZID {zid[:8]}…"
        assert title.size.height == 1
