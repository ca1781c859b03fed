"""The TUI under Pilot sees a real peer appear and leave on the LAN by mDNS.

The test process is in the root namespace, so the TUI's Phone binds to the root end of a veth made here;
`zcall --headless` runs in a namespace on the other end. Dialing from the list (Enter on the peer) reaches it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.events import Key
from textual.widgets import DataTable

from tests.support.netns import Host
from tests.support.prereq import require_binary, require_root
from tests.support.waiting import until
from tests.support.zcall_peer import ZcallPeer
from tests.tui.helpers import free_port, phone_settings
from zcall import events
from zcall.engine import Phone
from zcall.paths import Paths
from zcall.tui.app import ZcallApp
from zcall.tui.screens.home import PeerTable
from zcall.tui.screens.incall import InCallScreen
from zcall.tui.screens.incoming import IncomingScreen

pytestmark = [pytest.mark.netns, pytest.mark.timeout(90)]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@contextlib.contextmanager
def root_veth() -> Iterator[tuple[str, Host]]:
    """(root-side address, the namespace host at the far end); the namespace and both ends go at exit."""
    tag = f"{os.getpid() % 10000}"
    ns, root_if = f"zctui{tag}", f"zt{tag}r"
    subnet = f"10.{200 + os.getpid() % 50}.{os.getpid() % 250}"
    _ip("netns", "add", ns)
    try:
        _ip("link", "add", root_if, "type", "veth", "peer", "name", f"zt{tag}p")
        _ip("link", "set", f"zt{tag}p", "netns", ns)
        _ip("-n", ns, "link", "set", f"zt{tag}p", "name", "eth0")
        _ip("addr", "add", f"{subnet}.1/24", "dev", root_if)
        _ip("link", "set", root_if, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "addr", "add", f"{subnet}.2/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", "eth0")
        yield f"{subnet}.1", Host(ns, "eth0", f"{subnet}.2")
    finally:
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), 9)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", root_if], capture_output=True)


async def test_peer_appears_is_called_from_the_list_and_leaves(tmp_path: Path) -> None:
    require_root()
    require_binary("ip")
    with root_veth() as (my_ip, far):
        paths = Paths.for_home(tmp_path / "alice")
        phone = Phone(phone_settings("alice", my_ip, free_port(my_ip), mdns=True), paths)
        app = ZcallApp(phone, paths)
        placed: list[events.Event] = []
        phone.subscribe(lambda event: placed.append(event) if isinstance(event, events.Call) else None)
        bob = ZcallPeer(far, tmp_path / "bob", name="bob", auto_answer=True)
        async with app.run_test(size=(60, 20)) as pilot:
            await until(lambda: app.started, what="the phone to start")
            with bob:
                await until(lambda: any(p.name == "bob" for p in app.view.peers.values()), timeout=15,
                            what="bob to appear")  # fmt: skip
                table: DataTable[object] = app.screen.query_one(PeerTable)
                await until(lambda: table.row_count == 1, what="bob's row")
                assert [str(cell) for cell in table.get_row_at(0)] == ["bob", far.ip, "new"]
                (bob_zid,) = [p.zid for p in app.view.peers.values() if p.name == "bob"]
                # Two presses of OK faster than the app handles them (a bouncing button): one call, not two.
                for _ in range(2):
                    app.post_message(Key("enter", "\r"))
                secure = await asyncio.to_thread(bob.wait_event, "secure")
                await pilot.pause(0.5)
                dialed = [e for e in placed if isinstance(e, events.Call) and e.state == "dialing"]
                assert len(dialed) == 1, dialed
                screen = app.screen
                assert isinstance(screen, InCallScreen)
                await until(lambda: screen.call is not None and screen.call.secure is not None, what="secure")
                assert screen.call is not None and screen.call.secure is not None
                assert screen.call.secure.sas_words == tuple(secure["sas_words"])
                assert screen.call.zid == bob_zid  # the call carries the ZID it was chosen by
                await pilot.press("h")
                await asyncio.to_thread(bob.wait_event, "ended")
                await until(lambda: not isinstance(app.screen, InCallScreen), what="home after the call")
                # bob calls back by name; alice's screen rings and Escape rejects
                await asyncio.to_thread(bob.ctl, "call", "alice")
                await until(lambda: isinstance(app.screen, IncomingScreen), what="alice's phone to ring")
                await pilot.press("escape")
                ended = await asyncio.to_thread(bob.wait_event, "ended")
                assert ended["reason"].startswith("603"), ended
                await until(lambda: not isinstance(app.screen, IncomingScreen), what="ringing to stop")
                assert app.phone is not None and app.phone.sounds.looping is None
            # bob's process is gone: its goodbye takes him off the list
            await until(lambda: bob_zid not in app.view.peers, timeout=15, what="bob to leave")
            await until(lambda: app.screen.query(PeerTable) and table.row_count == 0, what="an empty list")
