"""The test's copies of a desk-unit image: made as a person would flash them onto a bigger card (with a
zcall-name.txt), plus the test's only way in, a root shell on the serial console (never in the image itself).
For the arm64 image, also its own kernel and initramfs, which QEMU's `virt` board starts directly."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

# Every serial console (ttyS0 on the PC, ttyAMA0 on arm64's virt board): root, logged in.
SERIAL_ROOT = """[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --keep-baud 115200,57600,38400,9600 %I $TERM
"""


def sh(*argv: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{argv}: {result.stdout}{result.stderr}"
    return result.stdout


def partitions(image: Path) -> list[dict[str, int]]:
    table = json.loads(sh("sfdisk", "--json", str(image)))["partitiontable"]
    return [{"start": p["start"] * 512, "size": p["size"] * 512} for p in table["partitions"]]


@contextlib.contextmanager
def mounted_root(image: Path, mnt: Path, *options: str) -> Iterator[Path]:
    """The image's root file system (partition 2) mounted on `mnt`."""
    root = partitions(image)[1]
    mnt.mkdir(exist_ok=True)
    where = ["--offset", str(root["start"]), "--sizelimit", str(root["size"])]
    loop = sh("losetup", "--find", "--show", *where, str(image)).strip()
    try:
        sh("mount", *options, loop, str(mnt))
        try:
            yield mnt
        finally:
            sh("umount", str(mnt))
    finally:
        subprocess.run(["losetup", "-d", loop], capture_output=True)


def prepare(image: Path, copy: Path, name: str, scratch: Path, grow_mib: int) -> None:
    """`image` copied to `copy` as on a card `grow_mib` bigger, with zcall-name.txt; plus the test's shell."""
    sh("cp", "--sparse=always", str(image), str(copy))
    boot = partitions(copy)[0]
    name_file = scratch / "zcall-name.txt"
    name_file.write_text(name + "\n")
    sh("mcopy", "-o", "-i", f"{copy}@@{boot['start']}", str(name_file), "::zcall-name.txt")
    with mounted_root(copy, scratch / "root") as mnt:
        dropin = mnt / "etc/systemd/system/serial-getty@.service.d"
        dropin.mkdir(parents=True, exist_ok=True)
        (dropin / "zcall-boot-test.conf").write_text(SERIAL_ROOT)
    with copy.open("r+b") as handle:
        handle.truncate(copy.stat().st_size + grow_mib * 1024 * 1024)


def boot_files(image: Path, scratch: Path) -> tuple[Path, Path]:
    """The kernel and initramfs the image boots, copied out: the one linux-image package's /boot files."""
    kernel, initrd = scratch / "vmlinuz", scratch / "initrd.img"
    with mounted_root(image, scratch / "root", "-o", "ro") as mnt:
        (found,) = sorted((mnt / "boot").glob("vmlinuz-*"))
        sh("cp", str(found), str(kernel))
        sh("cp", str(found.with_name(found.name.replace("vmlinuz-", "initrd.img-"))), str(initrd))
    return kernel, initrd
