"""One emulated desk unit: QEMU (TCG, no KVM here) on a copy of the image, its serial console as a shell and
its monitor for screen dumps and power cuts. `pc()` and `virt()` are the two boards it can be."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

QEMU_NICE = 10
PROMPT = re.compile(rb"root@[\w-]+:[^\n]*# ")
_END = re.compile(rb"@@END:(\d+)@@")


class BootTestError(AssertionError):
    pass


def pc() -> list[str]:
    """The amd64 image's board: a PC that boots the image's own GRUB from the disk."""
    return [
        "qemu-system-x86_64", "-machine", "pc",
        # TCG's default CPU (qemu64) lacks SSE4.2/POPCNT; numpy 2 in zcall's venv needs x86-64-v2 and
        # dies with "Illegal instruction" without them.
        "-cpu", "max",
        "-audiodev", "none,id=snd", "-device", "intel-hda", "-device", "hda-duplex,audiodev=snd",
        "-vga", "std",
    ]


def virt(kernel: Path, initrd: Path, cmdline: str) -> list[str]:
    """The arm64 image's userland on QEMU's generic arm64 board, started with the image's own Debian kernel
    and initramfs (taken out of its root file system), as a Raspberry Pi's firmware would start them. QEMU
    7.2 has no board that boots a Raspberry Pi card the Pi's way (GPU firmware, config.txt)."""
    return [
        "qemu-system-aarch64", "-machine", "virt", "-cpu", "cortex-a72",
        "-kernel", str(kernel), "-initrd", str(initrd), "-append", cmdline,
        # A screen for tty1 (virtio-gpu: Debian's kernel drives it) and a sound card-less unit.
        "-device", "virtio-gpu-pci",
    ]


@dataclass
class Unit:
    """A unit named `name` running `image` on `board` (pc() or virt()); `net` are its -netdev arguments for
    the NIC (id `lan`), `wrap` what QEMU runs inside (the LAN switch's network namespace)."""

    name: str
    image: Path
    workdir: Path
    mac: str
    net: list[str]
    board: list[str] = field(default_factory=pc)
    wrap: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    boots: int = 0
    _serial: socket.socket | None = None
    _pump: threading.Thread | None = None
    _seen: int = 0  # how much of the serial log earlier waits consumed
    marks: dict[str, float] = field(default_factory=dict)

    @property
    def serial_log(self) -> Path:
        return self.workdir / f"{self.name}-serial.log"

    def start(self) -> None:
        self.boots += 1
        self.workdir.mkdir(parents=True, exist_ok=True)
        serial_sock = self.workdir / f"{self.name}.serial"
        monitor_sock = self.workdir / f"{self.name}.monitor"
        for path in (serial_sock, monitor_sock):
            path.unlink(missing_ok=True)
        argv = [
            # Niced to 10, not by 10: the machine is shared, but under `nice make boot-test` a relative
            # nice put QEMU at 19, where a few busy neighbours left the guests a few percent of a core.
            "nice", "-n", str(max(0, QEMU_NICE - os.nice(0))), *self.wrap,
            *self.board, "-nodefaults", "-accel", "tcg", "-m", "1024", "-smp", "1",
            "-drive", f"file={self.image},format=raw,if=virtio,cache=unsafe",
            "-device", f"virtio-net-pci,netdev=lan,mac={self.mac}", *self.net,
            # A PCI watchdog (Intel 6300ESB) on either board, which systemd arms. A missed deadline is logged,
            # not acted on: on this busy, emulated machine a guest can stall for longer than its 15 s (the
            # report counts the misses).
            "-device", "i6300esb", "-action", "watchdog=debug",
            "-display", "none",
            # No QEMU logfile: when the socket's reader falls behind, QEMU retries its writes and its logfile
            # records the characters twice (seen: '"sstate"'), which garbles the JSON read back. _copy() logs.
            "-chardev", f"socket,id=ser,path={serial_sock},server=on,wait=off",
            "-serial", "chardev:ser",
            "-monitor", f"unix:{monitor_sock},server=on,wait=off",
        ]
        with (self.workdir / f"{self.name}-qemu.log").open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while not serial_sock.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise BootTestError(f"{self.name}: QEMU did not start: {argv}")
            time.sleep(0.1)
        self.serial_log.touch()  # before the reader thread: waits read it at once
        self._seen = self.serial_log.stat().st_size
        self._serial = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._serial.connect(str(serial_sock))
        self._pump = threading.Thread(target=self._copy, args=(self._serial,), daemon=True)
        self._pump.start()
        self.marks[f"boot{self.boots}_started"] = time.monotonic()

    def _copy(self, serial: socket.socket) -> None:
        """Append everything the serial console says to the log, at once, so the guest never waits on us."""
        with self.serial_log.open("ab") as log:
            while True:
                try:
                    data = serial.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                log.write(data)
                log.flush()

    def log_text(self, since: int = 0) -> bytes:
        with self.serial_log.open("rb") as handle:
            handle.seek(since)
            return handle.read()

    def wait_for(self, pattern: bytes | re.Pattern[bytes], timeout: float) -> re.Match[bytes]:
        """Wait for `pattern` in serial output after what earlier waits consumed."""
        regex = pattern if isinstance(pattern, re.Pattern) else re.compile(re.escape(pattern))
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_text(self._seen)
            match = regex.search(text)
            if match:
                self._seen += match.end()
                return match
            if self.proc is not None and self.proc.poll() is not None:
                raise BootTestError(f"{self.name}: QEMU exited waiting for {regex.pattern!r}")
            if time.monotonic() > deadline:
                tail = text[-1500:].decode(errors="replace")
                raise BootTestError(f"{self.name}: no {regex.pattern!r} in {timeout:.0f} s; serial:\n{tail}")
            time.sleep(0.5)

    def send(self, line: str) -> None:
        assert self._serial is not None
        self._serial.sendall(line.encode() + b"\n")

    def login(self, timeout: float) -> None:
        """Wait for the root shell the test put on the serial console, and make it quiet and wide."""
        self.wait_for(PROMPT, timeout)
        self.marks[f"boot{self.boots}_shell"] = time.monotonic()
        self.run("stty -echo cols 1000; export TERM=dumb PAGER=cat SYSTEMD_PAGER=cat", timeout=60)

    def run(self, command: str, timeout: float = 60, check: bool = True) -> str:
        """Run a shell line on the serial console; its output (and status, if check)."""
        self.send(f"printf '@@%s@@\\n' BEGIN; {command}; printf '@@%s:%s@@\\n' END $?")
        self.wait_for(b"@@BEGIN@@", timeout)
        start = self._seen
        match = self.wait_for(_END, timeout)
        out = self.log_text(start)[: self._seen - start - len(match.group(0))]
        text = out.decode(errors="replace").replace("\r", "")
        if check and match.group(1) != b"0":
            raise BootTestError(f"{self.name}: `{command}` exited {match.group(1).decode()}:\n{text}")
        return text.strip("\n")

    def poll(self, command: str, accept: re.Pattern[str], timeout: float, every: float = 3) -> str:
        """Run `command` until its output matches `accept` (ignoring failures meanwhile)."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            last = self.run(command, timeout=max(30, timeout / 4), check=False)
            if accept.search(last):
                return last
            time.sleep(every)
        raise BootTestError(f"{self.name}: `{command}` never matched {accept.pattern!r}; last:\n{last}")

    def monitor(self, command: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as mon:
            mon.connect(str(self.workdir / f"{self.name}.monitor"))
            mon.settimeout(30)
            mon.recv(4096)  # the banner
            mon.sendall(command.encode() + b"\n")
            time.sleep(1)
            return mon.recv(65536).decode(errors="replace")

    def screendump(self, path: Path) -> None:
        self.monitor(f"screendump {path} -f png")
        deadline = time.monotonic() + 20
        while not (path.exists() and path.stat().st_size > 0):
            if time.monotonic() > deadline:
                raise BootTestError(f"{self.name}: no screen dump at {path}")
            time.sleep(0.2)

    def power_cut(self) -> None:
        """Pull the plug: QEMU dies at once, whatever the guest had not written is gone."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.close()

    def close(self) -> None:
        if self._serial is not None:
            with contextlib.suppress(OSError):
                self._serial.shutdown(socket.SHUT_RDWR)
            self._serial.close()
            self._serial = None
        if self._pump is not None:
            self._pump.join(timeout=10)
            self._pump = None
