"""What first boot must have left on a desk unit, checked from its serial console (both boot tests)."""

from __future__ import annotations

import re

from tests.boot.qemu import Unit


def check_protected_unit(unit: Unit, hostname: str, name: str) -> dict[str, object]:
    """A read-only root over an overlay, the state partition (labelled, data-journalled) writable, the boot
    partition read-only, the unit named from zcall-name.txt (which is then gone), and the watchdog armed and
    petted by systemd. Returns what it saw, for the report."""
    mounts = unit.run("for m in / /var/lib/zcall /boot/firmware; do "
                      "findmnt -rno TARGET,FSTYPE,OPTIONS -M $m; done")
    root_fs = re.search(r"^/ (\S+) ", mounts, re.MULTILINE)
    state = re.search(r"^/var/lib/zcall ext4 (\S+)", mounts, re.MULTILINE)
    boot = re.search(r"^/boot/firmware vfat (\S+)", mounts, re.MULTILINE)
    assert root_fs and root_fs.group(1) == "overlay", mounts
    assert state and "rw" in state.group(1).split(","), mounts
    assert boot and "ro" in boot.group(1).split(","), mounts
    lower = unit.run("findmnt -rno FSTYPE,OPTIONS /media/root-ro")
    assert lower.startswith("ext4 ro"), lower
    label = unit.run("blkid -o value -s LABEL $(findmnt -no SOURCE /var/lib/zcall)")
    journal = unit.run("tune2fs -l $(findmnt -no SOURCE /var/lib/zcall) | grep -i 'mount options'")
    assert label == "zcall-data" and "journal_data" in journal, (label, journal)
    seen_hostname = unit.run("hostname")
    config_name = unit.run("grep '^name' /var/lib/zcall/config.toml")
    assert seen_hostname == hostname, seen_hostname
    assert config_name == f'name = "{name}"', config_name
    unit.run("test ! -e /boot/firmware/zcall-name.txt")
    watchdog = unit.run("cat /sys/class/watchdog/watchdog0/identity /sys/class/watchdog/watchdog0/state "
                        "/sys/class/watchdog/watchdog0/timeout")
    assert watchdog.splitlines()[1] == "active", watchdog
    petting = unit.run("systemctl show -p RuntimeWatchdogUSec --value")
    assert petting == "15s", petting
    # Where the second boot's time went, as the guest counts it (not yet finished: the phone is starting).
    boot_time = unit.run("systemd-analyze time; systemd-analyze blame --no-pager | head -n 8", check=False)
    return {"mounts": mounts.splitlines(), "state_label": label, "hostname": seen_hostname,
            "config": config_name, "watchdog": watchdog.splitlines(), "systemd_runtime_watchdog": petting,
            "second_boot_systemd_analyze": boot_time.splitlines()}
