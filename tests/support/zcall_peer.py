"""A real `zcall --headless` process (in a namespace or on this host), read through its JSON event stream.

with ZcallPeer(host, home, name="alice", audio_in="tone:440") as alice:
    alice.wait_event("ready")
    call_id = alice.ctl("call", target="bob")["id"]
    secure = alice.wait_event("secure")
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.support.netns import Host

ZCALL = [sys.executable, "-m", "zcall"]
DEFAULT_TIMEOUT = 20.0


class ZcallPeer:
    def __init__(
        self,
        host: Host | None,
        home: Path,
        *,
        name: str,
        audio_in: str = "silence",
        audio_out: str = "null",
        auto_answer: bool = False,
        extra: list[str] | None = None,
        sip_port: int = 5060,
        wrapper: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.host = host
        self.home = home
        self.name = name
        argv = [
            *(wrapper or []),  # e.g. chrt: what runs zcall, inside the namespace
            *ZCALL,
            "--home",
            str(home),
            "--headless",
            "--name",
            name,
            "--sip-port",
            str(sip_port),
            "--audio-in",
            audio_in,
            "--audio-out",
            audio_out,
        ]
        if host is not None:
            argv += ["--bind", host.ip]
        if auto_answer:
            argv.append("--auto-answer")
        self.argv = argv + (extra or [])
        self.env = env or {}  # on top of ours (e.g. ALSA_CONFIG_PATH for the test sound devices)
        self.events: list[dict[str, Any]] = []
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._seen = 0
        self.proc: subprocess.Popen[str] | None = None
        self.stderr_path = home.parent / f"{home.name}.stderr"

    # --- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> ZcallPeer:
        self.home.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, PYTHONUNBUFFERED="1", **self.env)
        stderr = self.stderr_path.open("w")
        argv = self.host.argv(self.argv) if self.host is not None else self.argv
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
            cwd=str(Path(__file__).resolve().parents[2]),
        )
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                event = {"event": "unparsed", "line": line}
            event["_t"] = time.monotonic()  # when the test saw it: for timing what the user would see
            self._queue.put(event)
        self._queue.put(None)

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._drain()
        return self.proc.returncode

    def __enter__(self) -> ZcallPeer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- events -------------------------------------------------------------------------------------------

    def _drain(self, timeout: float = 0.0) -> bool:
        """Move queued events to self.events; False once the stream has ended."""
        try:
            item = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
        except queue.Empty:
            return True
        while True:
            if item is None:
                return False
            self.events.append(item)
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return True

    def mark(self) -> int:
        self._drain()
        return len(self.events)

    def wait_event(
        self, kind: str, timeout: float = DEFAULT_TIMEOUT, since: int | None = None, **fields: Any
    ) -> dict[str, Any]:
        """The first `kind` event with these field values after `since` (default: after the last wait)."""
        start = self._seen if since is None else since
        deadline = time.monotonic() + timeout
        while True:
            for index in range(start, len(self.events)):
                event = self.events[index]
                if event.get("event") == kind and all(event.get(k) == v for k, v in fields.items()):
                    self._seen = index + 1
                    return event
            start = len(self.events)
            left = deadline - time.monotonic()
            alive = self._drain(timeout=min(0.2, max(left, 0.01)))
            if left <= 0 or (not alive and start == len(self.events)):
                raise AssertionError(
                    f"{self.name}: no {kind} {fields or ''} within {timeout} s; events: {self.events[-15:]}; "
                    f"stderr: {self.stderr_path.read_text()[-2000:] if self.stderr_path.exists() else ''}"
                )

    # --- control ------------------------------------------------------------------------------------------

    def ctl(self, *args: str, **kw: str) -> dict[str, Any]:
        argv = [*ZCALL, "--home", str(self.home), "ctl", *args, *kw.values()]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise AssertionError(f"zcall ctl {args} failed: {result.stderr}")
        parsed: dict[str, Any] = json.loads(result.stdout)
        return parsed

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*ZCALL, "--home", str(self.home), *args],
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
