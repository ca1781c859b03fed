from __future__ import annotations

import asyncio
import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest

from zcall import control, controlserver


async def _handler(cmd: str, args: dict[str, Any]) -> Any:
    if cmd == "echo":
        return args
    raise control.ControlError(f"unknown command {cmd!r}")


async def _with_server(path: Path, fn: Any) -> Any:
    server = controlserver.ControlServer(path, _handler)
    await server.start()
    try:
        return await asyncio.to_thread(fn)
    finally:
        await server.close()


async def test_request_and_reply(tmp_path: Path) -> None:
    path = tmp_path / "run" / "zcall.sock"
    result = await _with_server(path, lambda: control.request(path, "echo", {"x": 1}))
    assert result == {"x": 1}
    assert not path.exists()  # removed on close


async def test_socket_is_private(tmp_path: Path) -> None:
    path = tmp_path / "run" / "zcall.sock"

    def mode() -> int:
        return stat.S_IMODE(os.stat(path).st_mode)

    assert await _with_server(path, mode) == 0o600


async def test_refusals_reach_the_client(tmp_path: Path) -> None:
    path = tmp_path / "zcall.sock"

    def call() -> None:
        control.request(path, "dance")

    with pytest.raises(control.ControlError, match="unknown command 'dance'"):
        await _with_server(path, call)


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"not json\n", "request is not JSON"),
        (b"[1]\n", "request needs a string 'cmd'"),
        (b'{"cmd":"echo","args":3}\n', "'args' must be an object"),
        (b'{"cmd":"echo","pad":"' + b"x" * 5000 + b'"}\n', "request too long"),
    ],
)
async def test_malformed_requests_get_an_error(tmp_path: Path, raw: bytes, error: str) -> None:
    path = tmp_path / "zcall.sock"

    def send() -> bytes:
        with socket.socket(socket.AF_UNIX) as conn:
            conn.connect(str(path))
            conn.sendall(raw)
            return conn.recv(4096)

    reply = await _with_server(path, send)
    assert error.encode() in reply


def test_no_running_instance(tmp_path: Path) -> None:
    with pytest.raises(control.ControlError, match="no running zcall"):
        control.request(tmp_path / "none.sock", "status")


async def test_stale_socket_is_replaced_but_live_one_is_not(tmp_path: Path) -> None:
    path = tmp_path / "zcall.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # the file remains, nobody listens
    assert await _with_server(path, lambda: control.request(path, "echo", {})) == {}
    first = controlserver.ControlServer(path, _handler)
    await first.start()
    try:
        with pytest.raises(control.ControlError, match="another zcall"):
            await controlserver.ControlServer(path, _handler).start()
    finally:
        await first.close()


async def test_a_refused_instance_leaves_the_live_socket_alone(tmp_path: Path) -> None:
    path = tmp_path / "run" / "zcall.sock"
    live = controlserver.ControlServer(path, _handler)
    await live.start()
    try:
        for _ in range(2):  # the second instance is refused and cleans up; a third must be refused too
            refused = controlserver.ControlServer(path, _handler)
            with pytest.raises(control.ControlError, match="another zcall"):
                await refused.start()
            await refused.close()
            assert path.exists()
            assert await asyncio.to_thread(control.request, path, "echo", {"a": 1}) == {"a": 1}
    finally:
        await live.close()
    assert not path.exists()


async def test_an_instance_that_never_started_removes_nothing(tmp_path: Path) -> None:
    # The phone closes its control server after any failed start (e.g. its SIP port was busy).
    path = tmp_path / "run" / "zcall.sock"
    live = controlserver.ControlServer(path, _handler)
    await live.start()
    try:
        await controlserver.ControlServer(path, _handler).close()
        assert await asyncio.to_thread(control.request, path, "echo", {}) == {}
    finally:
        await live.close()
