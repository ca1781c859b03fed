"""coturn's `turnserver` as the bench's STUN/TURN server: one user (long-term credentials), UDP and TCP on one
port, TLS on another when given a certificate; on this host (loopback) or in a namespace.

Runs in the foreground with no config file, no CLI, no database; its log stays in its work directory.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from tests.support.netns import Host
from tests.support.prereq import require_binary


class CoturnError(RuntimeError):
    """turnserver did not start."""


class Coturn:
    def __init__(
        self,
        ip: str,
        *,
        host: Host | None = None,
        port: int = 3478,
        tls_port: int | None = None,
        cert: Path | None = None,
        key: Path | None = None,
        user: str = "zcall",
        password: str = "turn-secret",
        realm: str = "zcall.test",
        relay_ports: tuple[int, int] = (49152, 49999),
        workdir: Path | None = None,
    ) -> None:
        require_binary("turnserver")
        self.ip, self.host, self.port, self.tls_port = ip, host, port, tls_port
        self.user, self.password = user, password
        self.dir = workdir or Path(tempfile.mkdtemp(prefix="coturn-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir / "turnserver.log"
        argv = [
            "turnserver", "-n", "--no-cli", "--listening-ip", ip, "--relay-ip", ip,
            "--listening-port", str(port),
            "--min-port", str(relay_ports[0]), "--max-port", str(relay_ports[1]), "--lt-cred-mech",
            "--user", f"{user}:{password}", "--realm", realm, "--fingerprint", "--no-dtls",
            "--log-file", str(self.log_path), "--simple-log", "--no-stdout-log", "--verbose",
            "--pidfile", str(self.dir / "turnserver.pid"), "--allow-loopback-peers", "--no-multicast-peers",
        ]  # fmt: skip
        if tls_port is not None and cert is not None and key is not None:
            argv += ["--tls-listening-port", str(tls_port), "--cert", str(cert), "--pkey", str(key)]
        else:
            argv.append("--no-tls")
        self.argv = argv
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def stun_uri(self) -> str:
        return f"stun:{self.ip}:{self.port}"

    def turn_uri(self, transport: str = "udp") -> str:
        if transport == "tls":
            return f"turns:{self.ip}:{self.tls_port}?transport=tcp"
        return f"turn:{self.ip}:{self.port}?transport={transport}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _listening(self) -> bool:
        argv = ["ss", "-Hlntu", f"sport = :{self.port}"]
        out = (self.host.run(argv) if self.host is not None else subprocess.run(argv, capture_output=True,
                                                                                 text=True)).stdout
        return out.count(f"{self.ip}:{self.port}") >= 2  # UDP and TCP

    def start(self) -> Coturn:
        argv = self.host.argv(self.argv) if self.host is not None else self.argv
        self._proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                code = self._proc.returncode
                raise CoturnError(f"turnserver exited with {code}: {err}{self.log()[-2000:]}")
            if self._listening():
                return self
            time.sleep(0.05)
        self.stop()
        raise CoturnError("turnserver not listening after 10 s")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def __enter__(self) -> Coturn:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
