"""The running phone's side of `zcall ctl`: serves the control socket and holds the home's instance lock."""

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

from zcall.control import MAX_REQUEST_BYTES, REPLY_TIMEOUT_S, ControlError

Handler = Callable[[str, dict[str, Any]], Awaitable[Any]]


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
