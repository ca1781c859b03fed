"""The desk-unit layer, fast and static: one install script that every image recipe runs, every file it
installs present, the buttons overlay compiling with dtc and sending the keys the TUI binds, first boot's
read-only root keeping the state partition writable. (The image itself is booted by tests/boot, opt-in.)"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.packaging import layout
from tests.support.prereq import require_binary
from zcall.tui.keys import HARDWARE_KEYS

LAYER = layout.FIRMWARE / "install-layer.sh"
DTS = layout.FIRMWARE / "overlays" / "zcall-buttons.dts"
INPUT_CODES = Path("/usr/include/linux/input-event-codes.h")  # linux-libc-dev, the kernel's own list
# Textual's key names are KEY_<NAME> in the kernel's list, except this one.
LINUX_NAME = {"escape": "KEY_ESC"}


def _layer_sources() -> set[str]:
    """The firmware/ files install-layer.sh reads ("$fw/..."), as paths relative to firmware/."""
    return {m.rstrip("/") for m in re.findall(r"\$fw/([\w./@-]+)", LAYER.read_text())}


def test_every_recipe_runs_the_one_layer() -> None:
    pigen = (layout.FIRMWARE / "pi-gen" / "stage-zcall" / "01-zcall" / "00-run.sh").read_text()
    debian = (layout.FIRMWARE / "image" / "build.sh").read_text()
    assert re.search(r'install-layer\.sh" "\$\{ROOTFS_DIR\}" .* pi-os', pigen)
    assert re.search(r"install-layer\.sh .*\$flavour", debian)
    # Nothing that belongs to the layer is installed by a recipe on its own.
    for recipe in (pigen, debian):
        code = "\n".join(line for line in recipe.splitlines() if not line.lstrip().startswith("#"))
        for private in ("zcall-kiosk", "zcall-firstboot", "nftables.conf", "asound.conf", "zcall-watchdog"):
            assert private not in code


def test_layer_installs_every_file_it_names_and_every_layer_file() -> None:
    sources = _layer_sources()
    for rel in sources:
        assert (layout.FIRMWARE / rel).exists(), f"install-layer.sh reads firmware/{rel}, which is missing"
    shipped = {
        p.relative_to(layout.FIRMWARE).as_posix()
        for sub in ("kiosk", "systemd", "alsa", "zcall", "overlays")
        for p in (layout.FIRMWARE / sub).rglob("*") if p.is_file()
    } | {"nftables.conf", "packages.txt", "config/base.txt", "config/buttons.txt"}
    missing = shipped - sources
    assert not missing, f"firmware files no recipe installs: {sorted(missing)}"


def test_layer_packages_exist_in_debian() -> None:
    require_binary("apt-cache")
    names = [w for line in (layout.FIRMWARE / "packages.txt").read_text().splitlines()
             for w in line.split("#")[0].split()]
    # overlayroot's initramfs script runs grep & co.: without busybox the root is silently left writable.
    assert {"overlayroot", "busybox", "nftables"} <= set(names)
    argv = ["apt-cache", "show", "--no-all-versions", *names]
    result = subprocess.run(argv, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_read_only_root_never_overlays_the_state_partition() -> None:
    """overlayroot's default (recurse=1) puts a RAM overlay on every other mount too, /var/lib/zcall included,
    and the trust cache would be lost at each boot: both ways of switching it on must say recurse=0."""
    firstboot = (layout.FIRMWARE / "kiosk" / "zcall-firstboot").read_text()
    assert 'overlayroot="tmpfs:recurse=0"' in firstboot
    assert "overlayroot=tmpfs:recurse=0" in firstboot.split("raspi-config nonint do_overlayfs 0", 1)[1]


def test_initramfs_mounts_the_root_read_only() -> None:
    """overlayroot puts its RAM overlay over the root as the initramfs mounted it. Mounted rw (as
    raspi-firmware's cmdline.txt says), the "read-only" lower stayed writable on the arm64 boot test. Both
    Debian recipes end the kernel command line with ro (the last of ro and rw wins, kernel and initramfs)."""
    grub = (layout.FIRMWARE / "image" / "grub.cfg").read_text()
    assert re.search(r"^linux /vmlinuz root=\S+ ro ", grub, re.MULTILINE), grub
    layer = LAYER.read_text().split("\n    debian-raspi)\n", 1)[1].split(";;", 1)[0]
    extra = layer.index('echo ro >"$root/etc/default/raspi-extra-cmdline"')
    assert extra < layer.index("z50-raspi-firmware"), "the hook must run after the extra line is written"


def _compile(dts: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["dtc", "-@", "-q", "-I", "dts", "-O", "dtb", "-o", str(out), str(dts)],
                          capture_output=True, text=True)


def _buttons(dtbo: Path) -> dict[str, tuple[str, int]]:
    """node name -> (label, linux,code) of each gpio-keys child, read back from the compiled overlay."""
    text = subprocess.run(["dtc", "-q", "-I", "dtb", "-O", "dts", str(dtbo)], capture_output=True, text=True,
                          check=True).stdout
    block = text.split("zcall-buttons {", 1)[1]
    nodes = re.findall(r'\n\t*\s*([\w-]+) \{\s*label = "([^"]+)";\s*linux,code = <(0x[0-9a-f]+)>;', block)
    return {name: (label, int(code, 16)) for name, label, code in nodes}


def _kernel_codes() -> dict[str, int]:
    return {m[0]: int(m[1], 0) for m in re.findall(r"^#define\s+(KEY_\w+)\s+(0x[0-9a-fA-F]+|\d+)\b",
                                                   INPUT_CODES.read_text(), re.MULTILINE)}


def _check_against_tui(buttons: dict[str, tuple[str, int]]) -> None:
    codes = _kernel_codes()
    assert 4 <= len(buttons) <= 6
    assert set(buttons) <= set(HARDWARE_KEYS), f"buttons for keys the TUI does not bind: {set(buttons)}"
    for key, (label, code) in buttons.items():
        linux = LINUX_NAME.get(key, f"KEY_{key.upper()}")
        assert code == codes[linux], f"{label}: code {code}, the TUI wants {linux}={codes[linux]}"
        assert label == HARDWARE_KEYS[key], f"{key!r}: {label}, the TUI says {HARDWARE_KEYS[key]}"


@pytest.fixture
def dtc_and_codes() -> None:
    require_binary("dtc")
    if not INPUT_CODES.is_file():
        pytest.skip("no linux/input-event-codes.h (linux-libc-dev)")


@pytest.mark.usefixtures("dtc_and_codes")
def test_buttons_overlay_compiles_and_sends_the_tui_keys(tmp_path: Path) -> None:
    compiled = _compile(DTS, tmp_path / "zcall-buttons.dtbo")
    assert compiled.returncode == 0, compiled.stderr
    buttons = _buttons(tmp_path / "zcall-buttons.dtbo")
    assert set(buttons) == set(HARDWARE_KEYS), "one button per hardware key of the TUI"
    _check_against_tui(buttons)


@pytest.mark.usefixtures("dtc_and_codes")
def test_buttons_check_catches_a_wrong_code(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.dts"
    wrong.write_text(DTS.read_text().replace("linux,code = <1>;", "linux,code = <14>;", 1))  # KEY_BACKSPACE
    assert _compile(wrong, tmp_path / "wrong.dtbo").returncode == 0
    with pytest.raises(AssertionError, match="BACK"):
        _check_against_tui(_buttons(tmp_path / "wrong.dtbo"))


@pytest.mark.usefixtures("dtc_and_codes")
def test_broken_overlay_does_not_compile(tmp_path: Path) -> None:
    broken = tmp_path / "broken.dts"
    broken.write_text(DTS.read_text().replace("linux,code = <28>;", "linux,code = <28>", 1))
    assert _compile(broken, tmp_path / "broken.dtbo").returncode != 0


def test_boot_config_loads_our_overlay() -> None:
    settings = layout.config_txt_settings(layout.FIRMWARE / "config" / "buttons.txt")
    assert ("dtoverlay", DTS.stem, {}) in settings
    overrides = re.search(r"__overrides__ \{(.*?)\};", DTS.read_text(), re.DOTALL)
    assert overrides and "mute" in overrides.group(1) and "differ" in overrides.group(1)
