"""`make boot-test ARCH=arm64`: the arm64 (Raspberry Pi) image's userland, booted on QEMU's `virt` board.

QEMU 7.2 (Debian 12) has no machine that boots a Raspberry Pi card the Pi's way (the GPU firmware reading
config.txt, then the kernel): its `raspi3b` takes -kernel/-dtb and skips them, and a `raspi4b` came only in
QEMU 9.0. So this test starts the image's own Debian kernel and initramfs (linux-image-arm64, taken out of
the image's root file system) with the image's own kernel command line (cmdline.txt, with the Pi's serial
console swapped for the board's) on `-M virt -cpu cortex-a72`, the image as a virtio disk. What it proves:
the arm64 root file system (its packages, the layer, zcall's venv built from the aarch64 wheelhouse) boots,
first boot makes the state partition, names the unit and protects the root, and the phone runs on tty1 and
answers `zcall ctl status`; every library of the venv loads on an arm64 CPU (`zcall doctor`). What it does
not: the Pi's boot firmware, config.txt, the device tree with our overlays, the Pi's watchdog, sound or
buttons (the two-unit amd64 test covers the layer's behaviour; tests/packaging checks the overlay).

Report: build/boot-test-arm64/report.json, the serial log and a screen dump beside it. Opt-in
(ZCALL_BOOT_TEST=1 and the image, `make image ARCH=arm64`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.boot.disk import boot_files, partitions, prepare, sh
from tests.boot.firstboot import check_protected_unit
from tests.boot.qemu import Unit, virt
from tests.boot.switch import switch
from tests.support.prereq import require_binary, require_root

TOP = Path(__file__).resolve().parents[2]
IMAGE = Path(os.environ.get("ZCALL_BOOT_IMAGE_ARM64", TOP / "dist" / "zcall-desk-arm64.img"))
REPORT_DIR = TOP / "build" / "boot-test-arm64"
GROW_MIB = 1536
NAME = "Desk Arm"
STATUS = "zcall --home /var/lib/zcall ctl status"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(2400),
    pytest.mark.skipif(os.environ.get("ZCALL_BOOT_TEST") != "1", reason="opt-in: make boot-test ARCH=arm64"),
]


def virt_cmdline(image: Path) -> str:
    """The image's own kernel command line (what raspi-firmware wrote to cmdline.txt for the Pi), with its
    consoles replaced by the virt board's: the screen (tty1, the phone) and the PL011 serial port, last, so
    that it is the system console the test reads first boot's progress from."""
    boot = partitions(image)[0]
    pi = sh("mtype", "-i", f"{image}@@{boot['start']}", "::cmdline.txt").split()
    assert any(word.startswith("root=") for word in pi), pi
    kept = [word for word in pi if not word.startswith("console=")]
    return " ".join([*kept, "console=tty1", "console=ttyAMA0,115200"])


@pytest.fixture
def unit(tmp_path: Path) -> Iterator[Unit]:
    require_root()
    require_binary("qemu-system-aarch64", "mcopy", "mtype", "sfdisk", "losetup", "dnsmasq")
    if not IMAGE.is_file():
        pytest.fail(f"no image at {IMAGE}: make image ARCH=arm64", pytrace=False)
    scratch = os.environ.get("ZCALL_BOOT_TMP", "/var/tmp")
    work = Path(tempfile.mkdtemp(prefix="zcall-boot-arm64-", dir=scratch))
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    for old in REPORT_DIR.glob("*.log"):
        old.unlink()
    try:
        with switch(["arm"], REPORT_DIR) as lan:
            copy = work / "arm.img"
            prepare(IMAGE, copy, NAME, work, GROW_MIB)
            kernel, initrd = boot_files(copy, work)
            made = Unit("arm", copy, REPORT_DIR, "52:54:00:7a:00:64", lan.netdev("arm"),
                        board=virt(kernel, initrd, virt_cmdline(copy)), wrap=lan.inside([]))
            try:
                yield made
            finally:
                made.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _status(unit: Unit) -> dict[str, object]:
    out = unit.run(STATUS, timeout=120)
    return dict(json.loads(out[out.index("{"):]))


def test_arm64_unit_boots(unit: Unit, report: dict[str, object]) -> None:
    checks: dict[str, object] = report["checks"]  # type: ignore[assignment]
    timings: dict[str, float] = report["timings_s"]  # type: ignore[assignment]
    t0 = time.monotonic()

    def mark(what: str) -> None:
        timings[what] = round(time.monotonic() - t0, 1)

    report["board"] = "qemu-system-aarch64 -M virt -cpu cortex-a72 (TCG); the image's kernel and initramfs"
    report["kernel_cmdline"] = unit.board[unit.board.index("-append") + 1]
    unit.start()
    unit.wait_for(b"zcall-firstboot: adding the state partition", timeout=1200)
    unit.wait_for(b"zcall-firstboot: naming this unit", timeout=300)
    unit.wait_for(b"zcall-firstboot: switching the root file system to a read-only overlay", timeout=300)
    mark("first_boot_protecting")
    unit.login(timeout=1200)
    mark("second_boot_shell")

    machine = unit.run("uname -m; uname -r; dpkg --print-architecture; cat /proc/device-tree/compatible "
                       "| tr '\\0' ' '; echo")
    assert machine.splitlines()[0] == "aarch64" and machine.splitlines()[2] == "arm64", machine
    # The board's watchdog here is QEMU's PCI i6300esb (a Pi has its SoC's): what systemd arms is generic.
    checks["first_boot"] = {"machine": machine.splitlines(), **check_protected_unit(unit, "desk-arm", NAME)}
    mark("first_boot_checked")

    # The phone runs on tty1 (it makes the unit's identity at its first start).
    unit.poll(STATUS, re.compile(r'"zid"'), timeout=900, every=5)
    status = _status(unit)
    assert status["name"] == NAME, status
    screen = unit.poll("cat /dev/vcs1 | tr -s ' '", re.compile(re.escape(NAME)), timeout=300)
    png = REPORT_DIR / "arm-tty1.png"
    unit.screendump(png)
    exits = unit.run("journalctl -b -q --no-pager -t zcall-kiosk")
    checks["phone"] = {"status": status, "tty1_text": screen[:2000], "screendump": str(png),
                       "phone_exits": exits, "tty1_process": unit.run("ps -o pid,user,args -t tty1")}
    assert not exits, exits
    mark("phone_up")
    # Every library in zcall's venv (the aarch64 wheels and the PyAudio built in the arm64 chroot) loads on
    # an arm64 CPU.
    doctor = unit.run("setpriv --reuid zcall --regid zcall --init-groups zcall --home /var/lib/zcall doctor",
                      timeout=300, check=False)
    checks["zcall_doctor"] = doctor.splitlines()
    for check in ("cryptography", "pyOpenSSL", "pylibsrtp", "opuslib", "PyAudio", "zeroconf", "textual",
                  "libopus", "finite-field DH", "DTLS-SRTP in pyOpenSSL", "identity", "config"):
        assert re.search(rf"^ok +{re.escape(check)} ", doctor, re.MULTILINE), (check, doctor)
    mark("doctor")
    qemu_log = (REPORT_DIR / "arm-qemu.log").read_text(errors="replace")
    report["watchdog_misses_under_emulation"] = qemu_log.count("watchdog")
    report["serial_log"] = str(unit.serial_log)
