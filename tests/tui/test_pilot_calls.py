"""The TUI under Pilot with a real Phone, against a real headless zcall on loopback (no fakes).

Alice is the TUI app in this process; bob is `zcall --headless` in a subprocess. Alice dials bob by URI, bob
answers; both show the same SAS words; alice verifies with Y and hangs up; bob calls back, alice's screen
rings and Enter answers, and the call comes up verified; the trust screen lists bob as verified. Then alice's
retained secrets are overwritten, so the next call mismatches: a red alarm, the microphone stays muted, and N
hangs up.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest
from textual.events import Key
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from tests.support.waiting import until
from tests.support.zcall_peer import ZcallPeer
from tests.tui.helpers import free_port, phone_settings
from zcall.engine import Phone
from zcall.history import CallRecord, History
from zcall.paths import Paths
from zcall.tui.app import ZcallApp
from zcall.tui.screens.history import HistoryScreen
from zcall.tui.screens.home import HomeScreen
from zcall.tui.screens.incall import InCallScreen
from zcall.tui.screens.incoming import IncomingScreen
from zcall.tui.screens.trust import TrustScreen
from zcall.tui.widgets.sas import SasWords

pytestmark = [pytest.mark.timeout(150)]


async def peer_event(peer: ZcallPeer, kind: str, **fields: Any) -> dict[str, Any]:
    return await asyncio.to_thread(peer.wait_event, kind, **fields)


async def peer_ctl(peer: ZcallPeer, *args: str) -> dict[str, Any]:
    return await asyncio.to_thread(peer.ctl, *args)


def in_call(app: ZcallApp) -> InCallScreen | None:
    screen = app.screen
    return screen if isinstance(screen, InCallScreen) else None


def secure_call(app: ZcallApp) -> bool:
    screen = in_call(app)
    return screen is not None and screen.call is not None and screen.call.secure is not None


async def dial(pilot: Pilot[None], app: ZcallApp, target: str) -> None:
    await pilot.press("d")
    await until(lambda: isinstance(app.focused, Input), what="the dial screen")
    assert isinstance(app.focused, Input)
    app.focused.value = target
    await pilot.press("enter")


async def test_call_sas_verify_trust_and_mismatch_alarm(tmp_path: Path) -> None:
    alice_port, bob_port = free_port(), free_port()
    bob = ZcallPeer(
        None,
        tmp_path / "bob",
        name="bob",
        audio_in="tone:660",
        sip_port=bob_port,
        extra=["--bind", "127.0.0.1", "--no-mdns", "--on-mismatch", "continue"],
    )
    paths = Paths.for_home(tmp_path / "alice")
    phone = Phone(phone_settings("alice", "127.0.0.1", alice_port, on_mismatch="continue"), paths)
    app = ZcallApp(phone, paths)
    bob_uri = f"sip:zcall@127.0.0.1:{bob_port}"
    with bob:
        await peer_event(bob, "ready")
        async with app.run_test(size=(80, 24)) as pilot:
            await until(lambda: app.started, what="the phone to start")

            # 1. Alice dials, bob's side rings and answers; both show the same words.
            await dial(pilot, app, bob_uri)
            await peer_event(bob, "call", state="incoming")
            await peer_ctl(bob, "answer")
            bob_secure = await peer_event(bob, "secure")
            await until(lambda: secure_call(app), what="alice's call to go secure")
            screen = in_call(app)
            assert screen is not None and screen.call is not None and screen.call.secure is not None
            assert screen.query_one(SasWords).words == tuple(bob_secure["sas_words"])
            assert screen.call.secure.cache == "new" and not screen.call.verified
            bob_zid = bytes.fromhex(screen.call.secure.peer_zid or "")
            await pilot.press("y")
            assert screen.call.verified
            assert [r.verified for r in phone.cache.peers() if r.zid == bob_zid] == [True]
            await peer_ctl(bob, "verify")
            await pilot.press("h")
            await peer_event(bob, "ended")
            await until(lambda: isinstance(app.screen, HomeScreen), what="home after hang-up")
            assert app.history.entries and app.history.entries[0].reason == "local hangup"

            # 2. Bob calls back: alice's screen rings; Enter answers; the call is verified on both sides, and
            #    alice sees bob by the name her trust entry gives him, not the one he calls himself.
            phone.cache.set_name(bob_zid, "Bob upstairs")
            await peer_ctl(bob, "call", f"sip:zcall@127.0.0.1:{alice_port}")
            await until(lambda: isinstance(app.screen, IncomingScreen), what="alice's phone to ring")
            assert app.phone is not None and app.phone.sounds.looping == "ring"
            incoming = app.screen.query_one("#incoming", Static)
            await until(lambda: "bob" in str(incoming.content), what="the caller's name")
            # ... and where the call comes from, not only the name bob chose (issue 17 item 14)
            assert f"{bob_uri}\nfrom 127.0.0.1:{bob_port}" in str(incoming.content), incoming.content
            for _ in range(2):  # a double press of OK answers once and does not hang up what it answered
                app.post_message(Key("enter", "\r"))
            bob_secure = await peer_event(bob, "secure")
            await until(lambda: secure_call(app), what="the second call to go secure")
            assert app.phone is not None and app.phone.sounds.looping is None
            screen = in_call(app)
            assert screen is not None and screen.call is not None and screen.call.secure is not None
            assert screen.query_one(SasWords).words == tuple(bob_secure["sas_words"])
            assert screen.call.secure.cache == "match" and screen.call.verified
            assert bob_secure["verified"] is True
            status = screen.query_one("#status", Static)
            await until(lambda: "← Bob upstairs" in str(status.content), what="the trust entry's name")
            assert "VERIFIED" in str(status.content)
            who = str(screen.query_one("#who", Static).content)
            assert "Bob upstairs (calls itself bob) · verified" in who, who
            await pilot.pause(0.5)
            assert screen.call.ended is None, "the second OK press hung nothing up"
            assert len(phone.status()["calls"]) == 1
            await pilot.press("h")
            await peer_event(bob, "ended")
            await until(lambda: isinstance(app.screen, HomeScreen), what="home again")

            # 3. The trust screen shows bob verified.
            await pilot.press("t")
            await until(lambda: isinstance(app.screen, TrustScreen), what="the trust screen")
            table: DataTable[Any] = app.screen.query_one(DataTable)
            assert table.row_count == 1
            assert str(table.get_row_at(0)[1]) == "verified"
            await pilot.press("escape")

            # 4. Alice's retained secrets no longer match bob's: the next call raises the alarm.
            for _ in range(2):  # rs1 and rs2 both replaced
                phone.cache.store_new_rs1(bob_zid, os.urandom(32), 3600, time.time())
            await dial(pilot, app, bob_uri)
            await peer_event(bob, "call", state="incoming")
            await peer_ctl(bob, "answer")
            await until(lambda: secure_call(app), what="the mismatched call to go secure")
            screen = in_call(app)
            assert screen is not None and screen.call is not None
            call_id = screen.call.id
            alarm = screen.query_one("#alarm", Static)
            await until(lambda: alarm.has_class("shown"), what="the alarm")
            assert "SECURITY ALARM" in str(alarm.content)
            assert alarm.styles.background.rgb == (255, 0, 0)
            assert phone.is_muted(call_id), "audio stays muted until the user chooses"
            await pilot.press("m", "m")  # un-muting by hand does not lift the alarm's mute
            assert phone.is_muted(call_id)
            await pilot.press("n")  # the words differ: hang up
            await peer_event(bob, "ended")
            await until(lambda: screen.call is not None and screen.call.ended is not None, what="the end")
            assert app.screen is screen, "the warning stays until the user has read it"
            await pilot.press("escape")
            await until(lambda: isinstance(app.screen, HomeScreen), what="home after the alarm")
            assert [r.verified for r in phone.cache.peers() if r.zid == bob_zid] == [False]


async def test_history_survives_restart_and_calls_back_from_history_and_trust(tmp_path: Path) -> None:
    """Issue 17 item 15: with mDNS off, a device once called is called again from History or Trust."""
    bob_port = free_port()
    bob = ZcallPeer(
        None, tmp_path / "bob", name="bob", sip_port=bob_port, auto_answer=True,
        extra=["--bind", "127.0.0.1", "--no-mdns"],
    )
    paths = Paths.for_home(tmp_path / "alice")
    bob_uri = f"sip:zcall@127.0.0.1:{bob_port}"

    def alice() -> ZcallApp:
        return ZcallApp(Phone(phone_settings("alice", "127.0.0.1", free_port()), paths), paths)

    async def call_goes_through(app: ZcallApp, pilot: Pilot[None]) -> None:
        await peer_event(bob, "secure")
        await until(lambda: secure_call(app), what="a secure call")
        await pilot.press("h")
        await peer_event(bob, "ended")
        await until(lambda: isinstance(app.screen, (HomeScreen, TrustScreen, HistoryScreen)), what="back")

    with bob:
        await peer_event(bob, "ready")
        app = alice()
        async with app.run_test(size=(80, 24)) as pilot:
            await until(lambda: app.started, what="the phone to start")
            await dial(pilot, app, bob_uri)
            await call_goes_through(app, pilot)
        assert paths.history_file.stat().st_mode & 0o777 == 0o600
        app = alice()  # a restart: same home, new process state
        async with app.run_test(size=(80, 24)) as pilot:
            await until(lambda: app.started, what="the phone to start again")
            recent = str(app.screen.query_one("#recent", Static).content)
            assert "→ " in recent and "local hangup" in recent, recent
            [record] = app.history.entries
            assert record.uri == bob_uri and record.zid and record.secure
            await pilot.press("t")
            await until(lambda: isinstance(app.screen, TrustScreen), what="the trust screen")
            await pilot.press("c")  # bob is not on the LAN (no mDNS): called at the URI that reached him
            await call_goes_through(app, pilot)
            await pilot.press("escape", "r")
            await until(lambda: isinstance(app.screen, HistoryScreen), what="the history screen")
            await pilot.press("enter")
            await call_goes_through(app, pilot)
            assert [r.zid for r in app.history.entries] == [record.zid] * 3


async def test_a_device_called_from_history_or_trust_must_answer_as_itself(tmp_path: Path) -> None:
    """Issue 17: a call placed from a history or trust entry carries that entry's ZID, even when it is
    dialled at the URI kept for it. Another unit answering at that address (here mallory, a zcall with an
    identity of its own, on the port bob had) raises identity_mismatch: a red alarm, the microphone muted."""
    port = free_port()
    uri = f"sip:zcall@127.0.0.1:{port}"
    bob_zid = os.urandom(12)
    paths = Paths.for_home(tmp_path / "alice")
    phone = Phone(phone_settings("alice", "127.0.0.1", free_port(), on_mismatch="continue"), paths)
    phone.cache.touch(bob_zid, time.time(), name="bob")  # bob was met at that URI before, and verified
    phone.cache.set_verified(bob_zid, True)  # (so the trust screen lists him first)
    History(paths.history_file).add(CallRecord(
        at=time.time(), direction="out", peer="bob", zid=bob_zid.hex(), uri=uri, reason="local hangup",
        duration_s=12.0, secure=True,
    ))  # fmt: skip
    mallory = ZcallPeer(
        None, tmp_path / "mallory", name="bob", sip_port=port, auto_answer=True,
        extra=["--bind", "127.0.0.1", "--no-mdns"],
    )  # fmt: skip
    app = ZcallApp(phone, paths)

    async def impostor_raises_the_alarm(pilot: Pilot[None]) -> None:
        await peer_event(mallory, "secure")
        await until(lambda: secure_call(app), what="the call to go secure")
        screen = in_call(app)
        assert screen is not None and screen.call is not None
        alarm = screen.query_one("#alarm", Static)
        await until(lambda: alarm.has_class("shown"), what="the identity alarm")
        assert [a.alert for a in screen.call.alerts] == ["identity_mismatch"]
        assert "not the device you chose" in str(alarm.content)
        assert screen.call.muted and phone.is_muted(screen.call.id)
        await pilot.press("n")  # the words are not compared: hang up
        await peer_event(mallory, "ended")
        await until(lambda: screen.call is not None and screen.call.ended is not None, what="the end")
        await pilot.press("escape")

    with mallory:
        await peer_event(mallory, "ready")
        async with app.run_test(size=(80, 24)) as pilot:
            await until(lambda: app.started, what="the phone to start")
            await pilot.press("r")
            await until(lambda: isinstance(app.screen, HistoryScreen), what="the history screen")
            await pilot.press("enter")  # bob's record: called at its URI, bound to its ZID
            await impostor_raises_the_alarm(pilot)
            await until(lambda: isinstance(app.screen, HistoryScreen | HomeScreen), what="back")
            await pilot.press("escape", "t")
            await until(lambda: isinstance(app.screen, TrustScreen), what="the trust screen")
            await pilot.press("c")  # bob is not on the LAN (no mDNS): called at the URI kept for him
            await impostor_raises_the_alarm(pilot)


async def test_words_that_differ_with_a_verified_device_revoke_it(tmp_path: Path) -> None:
    """The boot test's finding: a desk unit that answers a verified device and whose user presses N (words
    differ) must no longer list that device as verified, in its cache and on its Trust screen."""
    alice_port, bob_port = free_port(), free_port()
    bob = ZcallPeer(None, tmp_path / "bob", name="bob", sip_port=bob_port,
                    extra=["--bind", "127.0.0.1", "--no-mdns"])
    paths = Paths.for_home(tmp_path / "alice")
    phone = Phone(phone_settings("alice", "127.0.0.1", alice_port), paths)
    app = ZcallApp(phone, paths)
    bob_uri, alice_uri = f"sip:zcall@127.0.0.1:{bob_port}", f"sip:zcall@127.0.0.1:{alice_port}"
    with bob:
        await peer_event(bob, "ready")
        async with app.run_test(size=(80, 24)) as pilot:
            await until(lambda: app.started, what="the phone to start")
            await dial(pilot, app, bob_uri)  # pairing: both say the words match
            await peer_event(bob, "call", state="incoming")
            await peer_ctl(bob, "answer")
            await peer_event(bob, "secure")
            await until(lambda: secure_call(app), what="the pairing call to go secure")
            await pilot.press("y")
            await peer_ctl(bob, "verify")
            await pilot.press("h")
            await peer_event(bob, "ended")
            await until(lambda: isinstance(app.screen, HomeScreen), what="home after pairing")

            await peer_ctl(bob, "call", alice_uri)  # bob calls again; alice answers; the words differ
            await until(lambda: isinstance(app.screen, IncomingScreen), what="alice's phone to ring")
            await pilot.press("enter")
            await peer_event(bob, "secure")
            await until(lambda: secure_call(app), what="the second call to go secure")
            screen = in_call(app)
            assert screen is not None and screen.call is not None and screen.call.secure is not None
            assert screen.call.secure.cache == "match" and screen.call.verified
            bob_zid = bytes.fromhex(screen.call.secure.peer_zid or "")
            await pilot.press("n")
            await peer_event(bob, "ended")
            await until(lambda: screen.call is not None and screen.call.ended is not None, what="the end")
            assert [r.verified for r in phone.cache.peers() if r.zid == bob_zid] == [False]
            await pilot.press("escape")
            await until(lambda: isinstance(app.screen, HomeScreen), what="home after the differing call")
            await pilot.press("t")
            await until(lambda: isinstance(app.screen, TrustScreen), what="the trust screen")
            table: DataTable[Any] = app.screen.query_one(DataTable)
            assert str(table.get_row_at(0)[1]) != "verified"
