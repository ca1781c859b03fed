"""baresip (Debian 1.0.0) as an independent SIP user agent: DTLS-SRTP, Opus, audio from a WAV file.

Control is over the ctrl_tcp module: netstring-framed JSON commands in, JSON responses and events out.
ctrl_tcp listens on the namespace's own loopback; we reach it by creating the socket from a thread that has
entered the namespace (a network namespace is per thread), so no helper process is needed.

Facts this module works around:
- `net_interface` must be set, or baresip advertises a wrong address in Contact and SDP.
- The first SIGTERM hangs; `quit` over ctrl_tcp exits cleanly (SIGKILL is only the fallback).
- 1.0.0 has no file player: the `sndfile` filter dumps what was decoded (and what was encoded) to WAV files in
  `snd_path`; the audio player is an `aubridge` device nobody reads, which never fails to open.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import json
import os
import queue
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.support.netns import Host
from tests.support.prereq import require_binary

_CLONE_NEWNET = 0x40000000
MAX_NETSTRING = 64 * 1024  # ctrl_tcp messages are small; anything bigger means a broken stream
_MAX_LENGTH_DIGITS = len(str(MAX_NETSTRING))


class BaresipError(RuntimeError):
    """baresip did not start, did not answer, or an expected event never came."""


class NetstringError(ValueError):
    """The ctrl_tcp byte stream is not well-formed netstrings (or one is over the size limit)."""


class NetstringDecoder:
    """Incremental netstring decoder: feed bytes, collect complete payloads."""

    def __init__(self, max_size: int = MAX_NETSTRING) -> None:
        self.max_size = max_size
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while self._buf:
            colon = self._buf.find(b":", 0, _MAX_LENGTH_DIGITS + 1)
            if colon < 0:
                if len(self._buf) > _MAX_LENGTH_DIGITS or not self._buf.isdigit():
                    raise NetstringError("bad netstring length prefix")
                break
            digits = bytes(self._buf[:colon])
            if not digits.isdigit() or (len(digits) > 1 and digits[0:1] == b"0"):
                raise NetstringError("bad netstring length prefix")
            length = int(digits)
            if length > self.max_size:
                raise NetstringError(f"netstring of {length} bytes is over the {self.max_size} limit")
            end = colon + 1 + length
            if len(self._buf) < end + 1:
                break
            if self._buf[end] != ord(","):
                raise NetstringError("netstring not terminated by ','")
            out.append(bytes(self._buf[colon + 1 : end]))
            del self._buf[: end + 1]
        return out


def encode_netstring(payload: bytes) -> bytes:
    return b"%d:%s," % (len(payload), payload)


def connect_in_netns(netns: str, address: tuple[str, int], timeout: float = 5.0) -> socket.socket:
    """Open a TCP connection from inside `netns` (the socket keeps that namespace once made)."""
    result: list[socket.socket | BaseException] = []

    def enter_and_connect() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/var/run/netns/{netns}", os.O_RDONLY)
            try:
                if libc.setns(fd, _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns failed")
            finally:
                os.close(fd)
            result.append(socket.create_connection(address, timeout=timeout))
        except BaseException as exc:  # handed to the caller's thread
            result.append(exc)

    # The thread ends right after, taking its namespace with it; the caller's thread never changes namespace.
    thread = threading.Thread(target=enter_and_connect, daemon=True)
    thread.start()
    thread.join(timeout + 1)
    if not result:
        raise TimeoutError(f"connecting to {address} in {netns}")
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]


@dataclass(frozen=True)
class Event:
    """One ctrl_tcp event: `type` is baresip's name (REGISTER_OK, CALL_ESTABLISHED, CALL_MENC, ...)."""

    type: str
    data: dict[str, Any]
    at: float  # time.monotonic() when it was read

    @property
    def param(self) -> str:
        return str(self.data.get("param", ""))


@dataclass
class _Pending:
    done: threading.Event = field(default_factory=threading.Event)
    response: dict[str, Any] = field(default_factory=dict)


def _config(
    host: Host, ctrl_port: int, audio_wav: Path | None, snd_dir: Path, rtp_ports: str, rtcp_mux: bool
) -> str:
    source = f"aufile,{audio_wav}" if audio_wav is not None else "ausine,440"
    return f"""poll_method epoll
sip_listen {host.ip}:0
sip_trans_def udp
call_local_timeout 60
call_max_calls 4
audio_player aubridge,sink
audio_alert aubridge,alert
audio_source {source}
ausrc_srate 48000
auplay_srate 48000
ausrc_channels 1
auplay_channels 1
audio_buffer 20-160
rtp_ports {rtp_ports}
rtcp_mux {"yes" if rtcp_mux else "no"}
jitter_buffer_delay 2-10
net_interface {host.iface}
module_path /usr/lib/baresip/modules
module opus.so
module sndfile.so
module aufile.so
module ausine.so
module aubridge.so
module dtls_srtp.so
module_tmp account.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen 127.0.0.1:{ctrl_port}
snd_path {snd_dir}
menu_bell no
opus_bitrate 32000
opus_stereo no
opus_sprop_stereo no
"""


class Baresip:
    """One baresip user agent in `host`'s namespace, registered through `registrar` (a SIP URI).

    `audio_wav` (48 kHz mono s16) is played to the far end (without one, a 440 Hz sine); it must outlast the
    call, because aufile ends the call at end of file. Two instances on one host need distinct `ctrl_port`s.
    After `quit`, `record_wav` holds what the far end sent (baresip's decoded audio).
    `extra_config` replaces single-valued config settings (not `module` lines).
    `outbound` routes every request through that proxy URI. Events: REGISTER_OK/REGISTER_FAIL, CALL_INCOMING,
    CALL_RINGING, CALL_ESTABLISHED, CALL_MENC (DTLS-SRTP complete), CALL_CLOSED (param = reason).
    """

    def __init__(
        self,
        host: Host,
        user: str,
        password: str,
        *,
        registrar: str,
        outbound: str | None = None,
        audio_wav: Path | None = None,
        record_wav: Path | None = None,
        media_enc: str | None = "dtls_srtp",
        transport: str = "tls",
        ctrl_port: int = 4444,
        rtp_ports: str = "20000-20100",
        workdir: Path | None = None,
        verbose: bool = False,
        sip_trace: bool = False,
        rtcp_mux: bool = False,
        register: bool = True,
        extra_config: dict[str, str] | None = None,
        turn: tuple[str, str, str] | None = None,
    ) -> None:
        """`turn`: (host:port, user, password) of a TURN server over UDP that carries all media (baresip's
        medianat=turn: its c= is the relay; no ICE)."""
        require_binary("baresip")
        self.host = host
        self.user = user
        self.registrar = registrar
        self.record_wav = record_wav
        self.ctrl_port = ctrl_port
        self.verbose = verbose
        self.sip_trace = sip_trace
        self.dir = Path(tempfile.mkdtemp(prefix=f"baresip-{user}-")) if workdir is None else workdir
        self.snd_dir = self.dir / "snd"
        self.snd_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir / "baresip.log"
        domain = registrar.split(":", 1)[1].split(";", 1)[0]
        self.aor = f"sip:{user}@{domain};transport={transport}"
        # Opus is the only codec module loaded, so every call is Opus.
        # register=False: a peer reached by direct SIP URI only (regint=0 sends no REGISTER).
        params = [f"auth_pass={password}", f"regint={600 if register else 0}", "answermode=manual"]
        if media_enc:
            params.append(f"mediaenc={media_enc}")
        if outbound:
            params.append(f'outbound="{outbound}"')
        if turn is not None:
            server, turn_user, turn_password = turn
            params += ["medianat=turn", f"stunserver=turn:{server}", f"stunuser={turn_user}",
                       f"stunpass={turn_password}"]  # fmt: skip
        # The account is added over ctrl_tcp after connecting (`uanew`), so its REGISTER_OK cannot be missed.
        self.account = f"<{self.aor}>;" + ";".join(params)
        (self.dir / "accounts").write_text("")
        (self.dir / "contacts").write_text("")
        config = _config(host, ctrl_port, audio_wav, self.snd_dir, rtp_ports, rtcp_mux)
        if turn is not None:
            config += "module turn.so\n"
        # baresip reads the first line for a key, so an override replaces the default line.
        for key, value in (extra_config or {}).items():
            kept = [line for line in config.splitlines() if line.split(" ", 1)[0] != key]
            config = "\n".join([*kept, f"{key} {value}"]) + "\n"
        (self.dir / "config").write_text(config)
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._events: queue.Queue[Event] = queue.Queue()
        self.events: list[Event] = []  # everything consumed by wait_event, in order
        self._pending: dict[str, _Pending] = {}
        self._tokens = itertools.count(1)
        self._lock = threading.Lock()
        self.reader_error: BaseException | None = None
        self.exit_code: int | None = None  # set by quit(); -9 means `quit` did not work and it was killed

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> Baresip:
        argv = ["baresip", "-f", str(self.dir)]
        argv += (["-v"] if self.verbose else []) + (["-s"] if self.sip_trace else [])
        with self.log_path.open("wb") as log:
            self._proc = self.host.popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                raise BaresipError(f"baresip exited with {self._proc.returncode}:\n{self.log()[-3000:]}")
            try:
                self._sock = connect_in_netns(self.host.netns, ("127.0.0.1", self.ctrl_port), timeout=1.0)
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.kill()
                    raise BaresipError(f"ctrl_tcp never listened:\n{self.log()[-3000:]}") from None
                time.sleep(0.05)
        self._sock.settimeout(None)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        self._reader = threading.Thread(target=self._read_loop, name=f"baresip-{self.user}", daemon=True)
        self._reader.start()
        self.started_at = time.monotonic()
        self.command("uanew", self.account)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def quit(self, timeout: float = 5.0) -> int | None:
        """Exit cleanly with `quit`; SIGKILL if baresip does not go."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None and self._sock is not None:
            with contextlib.suppress(OSError, BaresipError):
                self.command("quit", timeout=timeout, expect_response=False)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self._close()
        self._collect_recording()
        self.exit_code = proc.returncode
        return proc.returncode

    def kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(5)
        self._close()

    def _close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
            self._sock = None
        if self._reader is not None:
            self._reader.join(2)
            self._reader = None

    def __enter__(self) -> Baresip:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.quit()

    # -- control ---------------------------------------------------------------------------------------------

    def _read_loop(self) -> None:
        decoder = NetstringDecoder()
        sock = self._sock
        assert sock is not None
        try:
            while chunk := sock.recv(65536):
                now = time.monotonic()
                # ctrl_tcp writes each event separately with Nagle on: ACK at once, or the next event waits
                # for our delayed ACK (~40 ms) and event timings are late. Linux clears the flag: re-arm.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
                for payload in decoder.feed(chunk):
                    self._dispatch(json.loads(payload), now)
        except (OSError, ValueError) as exc:
            self.reader_error = exc

    def _dispatch(self, message: dict[str, Any], now: float) -> None:
        if message.get("event") is True:
            self._events.put(Event(str(message.get("type", "")), message, now))
        elif message.get("response") is True:
            with self._lock:
                pending = self._pending.pop(str(message.get("token", "")), None)
            if pending is not None:
                pending.response = message
                pending.done.set()

    def command(
        self, name: str, params: str = "", timeout: float = 5.0, expect_response: bool = True
    ) -> dict[str, Any]:
        """Run one baresip command (as the menu knows it: dial, accept, hangup, quit, ...)."""
        if self._sock is None:
            raise BaresipError("baresip is not running")
        token = str(next(self._tokens))
        pending = _Pending()
        with self._lock:
            self._pending[token] = pending
        body = json.dumps({"command": name, "params": params, "token": token}).encode()
        self._sock.sendall(encode_netstring(body))
        if not expect_response:
            return {}
        if not pending.done.wait(timeout):
            raise BaresipError(f"no response to {name!r} within {timeout}s")
        if not pending.response.get("ok", False):
            raise BaresipError(f"{name!r} failed: {pending.response.get('data')}")
        return pending.response

    def dial(self, uri: str) -> dict[str, Any]:
        return self.command("dial", uri)

    def answer(self) -> dict[str, Any]:
        return self.command("accept")

    def hangup(self) -> dict[str, Any]:
        return self.command("hangup")

    def wait_event(
        self, type_: str, timeout: float = 10.0, where: Callable[[Event], bool] | None = None
    ) -> Event:
        """Consume events until one of `type_` (matching `where`) arrives; fail on REGISTER_FAIL meanwhile."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                seen = ", ".join(e.type for e in self.events[-20:])
                raise BaresipError(f"{self.user}: no {type_} within {timeout}s (recent: {seen})")
            try:
                event = self._events.get(timeout=min(left, 0.5))
            except queue.Empty:
                if self._proc is not None and self._proc.poll() is not None:
                    raise BaresipError(f"{self.user}: baresip exited waiting for {type_}") from None
                continue
            self.events.append(event)
            if event.type == type_ and (where is None or where(event)):
                return event
            if event.type == "REGISTER_FAIL" and type_ == "REGISTER_OK":
                raise BaresipError(f"{self.user}: registration failed: {event.param}")

    def wait_registered(self, timeout: float = 10.0) -> Event:
        return self.wait_event("REGISTER_OK", timeout)

    def wait_secure(self, timeout: float = 10.0) -> Event:
        """Audio is keyed: CALL_MENC "0,audio,RTP" (0 = secure) once DTLS and the fingerprint check pass."""
        return self.wait_event("CALL_MENC", timeout, where=lambda e: e.param.startswith("0,audio"))

    # -- audio -----------------------------------------------------------------------------------------------

    def dumps(self, kind: str = "dec") -> list[Path]:
        """sndfile's WAVs of this run, oldest first: `dec` is what was received, `enc` what was sent."""
        return sorted(self.snd_dir.glob(f"dump-*-{kind}.wav"), key=lambda p: p.stat().st_mtime)

    def _collect_recording(self) -> None:
        if self.record_wav is not None and (dumps := self.dumps("dec")):
            shutil.copyfile(dumps[-1], self.record_wav)
