"""A DNS server for the test bench: dnsmasq in one host's namespace serving the records a test gives it, and
the resolv.conf that points another host's processes at it.

`ip netns exec NAME` bind-mounts /etc/netns/NAME/resolv.conf over /etc/resolv.conf, so a process started in
a namespace reads the nameserver written there; `resolv_conf()` writes that file and removes it afterwards.
dnsmasq answers only from its own records (no upstream, no /etc/hosts): other names in `domains` are NXDOMAIN.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from tests.support.netns import Host
from tests.support.prereq import require_binary


class DnsmasqError(RuntimeError):
    """dnsmasq did not start."""


class Dnsmasq:
    """dnsmasq on `host`'s address, port 53. Records: A (`hosts`), SRV (`srv`) and NAPTR (`naptr`)."""

    def __init__(
        self,
        host: Host,
        *,
        domains: tuple[str, ...],
        hosts: dict[str, str] | None = None,
        srv: list[tuple[str, str, int, int, int]] | None = None,  # name, target, port, priority, weight
        naptr: list[tuple[str, int, int, str, str, str]] | None = None,  # name, order, pref, flags, svc, repl
        workdir: Path | None = None,
    ) -> None:
        require_binary("dnsmasq")
        self.host = host
        self.dir = workdir or Path(tempfile.mkdtemp(prefix="dnsmasq-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir / "dnsmasq.log"
        lines = [
            "no-resolv", "no-hosts", "bind-interfaces", f"listen-address={host.ip}", "except-interface=lo",
            "log-queries", f"log-facility={self.log_path}", f"pid-file={self.dir / 'dnsmasq.pid'}",
            "user=root",
        ]  # fmt: skip
        lines += [f"local=/{domain}/" for domain in domains]
        lines += [f"host-record={name},{address}" for name, address in (hosts or {}).items()]
        for name, target, port, prio, weight in srv or []:
            lines.append(f"srv-host={name},{target},{port},{prio},{weight}")
        lines += [
            f'naptr-record={name},{order},{pref},"{flags}","{service}","",{repl}'
            for name, order, pref, flags, service, repl in naptr or []
        ]
        self.conf_path = self.dir / "dnsmasq.conf"
        self.conf_path.write_text("\n".join(lines) + "\n")
        self._proc: subprocess.Popen[bytes] | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def queries(self) -> list[str]:
        """The 'query[TYPE] name' lines dnsmasq logged, in order."""
        lines = [line for line in self.log().splitlines() if "query[" in line]
        return [line.split(": ", 1)[1].rsplit(" from ", 1)[0] for line in lines]

    def start(self) -> Dnsmasq:
        self._proc = self.host.popen(["dnsmasq", "--keep-in-foreground", f"--conf-file={self.conf_path}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise DnsmasqError(f"dnsmasq exited with {self._proc.returncode}: {err}")
            if f"{self.host.ip}:53 " in self.host.run(["ss", "-Hlun", "sport = :53"]).stdout + " ":
                return self
            time.sleep(0.05)
        self.stop()
        raise DnsmasqError("dnsmasq not listening after 10 s")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def __enter__(self) -> Dnsmasq:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@contextlib.contextmanager
def _netns_file(host: Host, name: str, text: str) -> Iterator[Path]:
    """/etc/netns/NAME/<name>, seen as /etc/<name> by processes `ip netns exec` starts there from now on."""
    directory = Path("/etc/netns") / host.netns
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            directory.rmdir()  # only once the namespace's other files are gone too


def resolv_conf(host: Host, nameserver: str) -> contextlib.AbstractContextManager[Path]:
    """Processes started in `host`'s namespace from now on resolve through `nameserver` (and nothing else)."""
    # Short timeouts: a silent server must show up as a timeout within a test's patience.
    return _netns_file(host, "resolv.conf", f"nameserver {nameserver}\noptions timeout:1 attempts:2\n")


def hosts_file(host: Host, names: dict[str, str]) -> contextlib.AbstractContextManager[Path]:
    """Processes started in `host`'s namespace from now on find `names` (name -> address) in /etc/hosts
    (for peers such as linphonec whose TLS checks a name, not an address)."""
    lines = ["127.0.0.1 localhost", *(f"{address} {name}" for name, address in names.items())]
    return _netns_file(host, "hosts", "\n".join(lines) + "\n")
