"""Phone.call(target, expected_zid): the device the user chose (a trust or history entry) must still be the
one the target resolves to. A LAN name now announced by another ZID is refused before anything is sent;
the same ZID is called. A real Phone on loopback; the LAN unit is a UDP socket recording what reaches it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.tui.helpers import phone_settings
from zcall.discovery.service import PeerUp
from zcall.engine import Phone, PhoneError
from zcall.paths import Paths

LOOP = "127.0.0.1"
CHOSEN = bytes.fromhex("c0" * 12)  # the device the user picked from the trust list
NOW_THERE = bytes.fromhex("ee" * 12)  # the unit announcing that name on the LAN today


@pytest.fixture
async def phone(tmp_path: Path) -> AsyncIterator[Phone]:
    phone = Phone(phone_settings("alice", LOOP, 0), Paths.for_home(tmp_path / "alice"), control=False)
    await phone.start()
    try:
        yield phone
    finally:
        await phone.close()


def lan_unit(phone: Phone, zid: bytes) -> socket.socket:
    """A unit named bob on loopback, as discovery reports it; the socket is its SIP port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((LOOP, 0))
    sock.setblocking(False)
    phone.peers.on_discovery(PeerUp("bob", zid, LOOP, 5353, sock.getsockname()[1]))
    return sock


async def received(sock: socket.socket, wait: float) -> bytes:
    try:
        return await asyncio.wait_for(asyncio.get_running_loop().sock_recv(sock, 65536), wait)
    except TimeoutError:
        return b""


async def test_a_name_now_held_by_another_device_is_refused_and_nothing_is_sent(phone: Phone) -> None:
    with lan_unit(phone, NOW_THERE) as bob:
        with pytest.raises(PhoneError, match=f"bob is another device now \\({NOW_THERE.hex()}\\)"):
            await phone.call("bob", expected_zid=CHOSEN)
        assert not phone.status()["calls"]
        assert await received(bob, 1.0) == b"", "no INVITE may reach the other device"


async def test_the_same_device_is_called(phone: Phone) -> None:
    with lan_unit(phone, CHOSEN) as bob:
        call_id = await phone.call("bob", expected_zid=CHOSEN)
        assert (await received(bob, 10.0)).startswith(b"INVITE sip:zcall@")
        phone.hangup(call_id)
