"""zcall-firstboot's partitioning on a real (loop) block device shaped like a freshly flashed card: a boot
partition and an ext4 root with free space after it. The state partition must appear after the grown root,
fill the rest, carry its label and full data journalling, and a second run must change nothing.

On the unit the root is mounted and grown online; that needs CAP_SYS_RESOURCE, which a container (like this
test machine) may lack, so here the root file system is left unmounted and resize2fs grows it offline."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.packaging import layout
from tests.support.prereq import require_binary, require_root

SCRIPT = layout.FIRMWARE / "kiosk" / "zcall-firstboot"
MIB = 1024 * 1024
CARD_MIB, BOOT_MIB, ROOT_MIB, HEADROOM_MIB = 512, 32, 160, 64


def _sh(*argv: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{argv}: {result.stdout}{result.stderr}"
    return result.stdout


def _sectors(partition: str) -> tuple[int, int]:
    name = os.path.basename(partition)
    sys = Path("/sys/class/block", name)
    return int((sys / "start").read_text()), int((sys / "size").read_text())


def _wait_for(path: str) -> None:
    deadline = time.monotonic() + 10
    while not os.path.exists(path):
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.1)


@pytest.fixture
def card(tmp_path: Path) -> Iterator[str]:
    """A loop device with the image's layout; yields the device."""
    require_root()
    require_binary("losetup", "sfdisk", "partx", "mkfs.ext4", "resize2fs", "tune2fs", "dumpe2fs", "blkid")
    require_binary("lsblk")
    image = tmp_path / "card.img"
    with image.open("wb") as handle:
        handle.truncate(CARD_MIB * MIB)
    layout_script = f"label: dos\nstart=8192, size={BOOT_MIB}MiB, type=c\nsize={ROOT_MIB}MiB, type=83\n"
    subprocess.run(["sfdisk", "--quiet", str(image)], input=layout_script, text=True, check=True)
    device = _sh("losetup", "--find", "--show", "--partscan", str(image)).strip()
    try:
        # The scan at attach time can miss the table on this kernel; partx makes the kernel read it again.
        subprocess.run(["partx", "--update", device], capture_output=True)
        _wait_for(f"{device}p2")
        _sh("mkfs.ext4", "-q", "-L", "rootfs", f"{device}p2")
        yield device
    finally:
        subprocess.run(["losetup", "--detach", device], capture_output=True)


def _firstboot(device: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ZCALL_FIRSTBOOT_ROOT_DEV": f"{device}p2", "ZCALL_FIRSTBOOT_STEPS": "partition",
           "ROOT_HEADROOM_MIB": str(HEADROOM_MIB)}
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=300)


def _fs_bytes(partition: str) -> int:
    header = dict(
        line.split(":", 1) for line in _sh("dumpe2fs", "-h", partition).splitlines() if ":" in line
    )
    return int(header["Block count"]) * int(header["Block size"])


def test_state_partition_after_the_grown_root(card: str) -> None:
    device = card
    if subprocess.run(["blkid", "-L", "zcall-data"], capture_output=True).returncode == 0:
        pytest.skip("this machine already has a zcall-data partition; the script would reuse it")
    root_before = _fs_bytes(f"{device}p2")
    root_start, root_size = _sectors(f"{device}p2")

    result = _firstboot(device)
    assert result.returncode == 0, result.stdout + result.stderr

    start, size = _sectors(f"{device}p2")
    assert (start, size) == (root_start, root_size + HEADROOM_MIB * 2048)
    grown = _fs_bytes(f"{device}p2") - root_before
    assert grown == HEADROOM_MIB * MIB, "the root file system must fill its grown partition"

    _wait_for(f"{device}p3")
    data_start, data_size = _sectors(f"{device}p3")
    assert data_start >= start + size
    assert (data_start + data_size) * 512 > (CARD_MIB - 2) * MIB, "the state partition must fill the card"
    assert _sh("blkid", "-o", "value", "-s", "LABEL", f"{device}p3").strip() == "zcall-data"
    assert "journal_data" in _sh("tune2fs", "-l", f"{device}p3")

    again = _firstboot(device)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _sectors(f"{device}p3") == (data_start, data_size)
    assert _sectors(f"{device}p2") == (start, size)
