"""`zcall ctl`: one JSON request line in, one JSON reply line out, over a unix socket in the instance's home.

The socket lives in a 0700 folder and is itself 0600: only this user drives the phone.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from zcall.errors import ZcallError

MAX_REQUEST_BYTES = 4096
REPLY_TIMEOUT_S = 10.0

Handler = Callable[[str, dict[str, Any]], Awaitable[Any]]


class ControlError(ZcallError):
    """A request the phone refused; the message is shown to the user."""


class ControlServer:
    """The socket and, next to it, a lock file held (flock) for as long as this instance runs: the lock, not
    the socket file, says whether the home is taken, so only its holder ever removes the socket."""

    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._lock_fd: int | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._take_lock()
        try:
            if self.path.exists() or self.path.is_symlink():
                if _is_live(self.path):  # a live socket without the lock: an instance we cannot take over
                    raise ControlError(f"another zcall is running on {self.path}")
                self.path.unlink()  # a stale socket from a crashed run
            old_umask = os.umask(0o177)
            try:
                self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
            finally:
                os.umask(old_umask)
        except BaseException:
            self._release_lock()
            raise

    def _take_lock(self) -> None:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ControlError(f"another zcall is running in this home ({self.path.parent})") from None
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = None

    async def close(self) -> None:
        """Stop serving; the socket file is removed only by the instance that holds the lock."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self._lock_fd is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self._release_lock()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            reply = await self._answer(reader)
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader) -> dict[str, Any]:
        try:
            line = await asyncio.wait_for(reader.readuntil(b"\n"), REPLY_TIMEOUT_S)
        except asyncio.LimitOverrunError:
            return {"ok": False, "error": "request too long"}
        except (asyncio.IncompleteReadError, TimeoutError):
            return {"ok": False, "error": "incomplete request"}
        if len(line) > MAX_REQUEST_BYTES:
            return {"ok": False, "error": "request too long"}
        try:
            request = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return {"ok": False, "error": "request is not JSON"}
        if not isinstance(request, dict) or not isinstance(request.get("cmd"), str):
            return {"ok": False, "error": "request needs a string 'cmd'"}
        args = request.get("args", {})
        if not isinstance(args, dict):
            return {"ok": False, "error": "'args' must be an object"}
        try:
            return {"ok": True, "result": await self._handler(request["cmd"], args)}
        except ControlError as exc:
            return {"ok": False, "error": str(exc)}


def _is_live(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def request(
    path: Path, cmd: str, args: dict[str, Any] | None = None, timeout: float = REPLY_TIMEOUT_S
) -> Any:
    """Send one request to a running instance; return its result or raise ControlError."""
    payload = json.dumps({"cmd": cmd, "args": args or {}}).encode() + b"\n"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        try:
            conn.connect(str(path))
        except OSError as exc:
            raise ControlError(f"no running zcall at {path} ({exc.strerror})") from exc
        conn.sendall(payload)
        data = b""
        while not data.endswith(b"\n"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    try:
        reply = json.loads(data)
    except json.JSONDecodeError as exc:
        raise ControlError("the running zcall sent a malformed reply") from exc
    if not reply.get("ok"):
        raise ControlError(str(reply.get("error", "refused")))
    return reply.get("result")
