"""Where the packaging and firmware files are, and small readers for their formats (shared by the tests)."""

from __future__ import annotations

import os
import re
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
PACKAGING = TOP / "packaging"
FIRMWARE = TOP / "firmware"
TESTS = Path(__file__).resolve().parent

# Sourced shell fragments have no shebang; shellcheck gets told their dialect.
SOURCED_FRAGMENTS = [
    FIRMWARE / "pi-gen" / "config",
    FIRMWARE / "pi-gen" / "stage-zcall" / "EXPORT_IMAGE",
]

# linux/include/uapi/linux/input-event-codes.h: the keys the TUI binds, as firmware/README.md states them
# (test_layer.py checks the overlay itself against the kernel's header and zcall/tui/keys.py).
KEYCODES = {"KEY_ENTER": 28, "KEY_ESC": 1, "KEY_UP": 103, "KEY_DOWN": 108, "KEY_M": 50, "KEY_N": 49}

_SHELL_SHEBANG = re.compile(rb"^#!\s*/(usr/)?bin/(env\s+)?(ba|da)?sh\b")


def shell_scripts() -> list[Path]:
    """Every shell script the packaging and firmware carry: files with a shell shebang, plus fragments."""
    found: set[Path] = set(SOURCED_FRAGMENTS)
    for root in (PACKAGING, FIRMWARE, TESTS):
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if d not in (".cache", "__pycache__")]  # chroots, not ours
            for name in files:
                path = Path(folder, name)
                with path.open("rb") as handle:
                    if _SHELL_SHEBANG.match(handle.readline()):
                        found.add(path)
    return sorted(found)


def config_txt_settings(path: Path) -> list[tuple[str, str, dict[str, str]]]:
    """config.txt lines as (directive, name, params): `dtoverlay=gpio-key,gpio=5` -> ("dtoverlay",
    "gpio-key", {"gpio": "5"}); `dtparam=audio=off` -> ("dtparam", "audio", {"audio": "off"})."""
    settings: list[tuple[str, str, dict[str, str]]] = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("["):
            continue
        directive, _, value = line.partition("=")
        if directive not in ("dtoverlay", "dtparam"):
            settings.append((directive, value, {}))
            continue
        parts = value.split(",")
        params = {p.partition("=")[0]: p.partition("=")[2] for p in parts}
        name = parts[0].split("=", 1)[0]
        if directive == "dtoverlay":
            del params[parts[0]]
        settings.append((directive, name, params))
    return settings


def overlay_list() -> dict[str, set[str]]:
    """firmware/overlays.txt: section name -> the names listed under it."""
    sections: dict[str, set[str]] = {}
    current = ""
    for raw in (FIRMWARE / "overlays.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            sections[current] = set()
        else:
            sections[current].add(line)
    return sections


def nft_defines(path: Path) -> dict[str, str]:
    return dict(re.findall(r"^define\s+(\w+)\s*=\s*(.+?)\s*$", path.read_text(), re.MULTILINE))
