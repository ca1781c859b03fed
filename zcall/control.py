"""`zcall ctl`: one JSON request line in, one JSON reply line out, over a unix socket in the instance's home.

The socket lives in a 0700 folder and is itself 0600: only this user drives the phone. This module is the
protocol's client side and stays light (a one-shot `zcall ctl` loads no asyncio); controlserver.py serves it.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from zcall.errors import ZcallError

MAX_REQUEST_BYTES = 4096
REPLY_TIMEOUT_S = 10.0


class ControlError(ZcallError):
    """A request the phone refused; the message is shown to the user."""


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
