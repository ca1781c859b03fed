"""This device's ZID file (identity/zid: 24 hex digits and a newline), read without the crypto stack.

The TUI shows the ZID on its first screen, before the engine (and cryptography) is loaded; zcall.identity
writes the file and reads it with the same parser.
"""

from __future__ import annotations

import re
from pathlib import Path

ZID_BYTES = 12
FILE_NAME = "zid"
MAX_FILE_BYTES = 64  # 24 hex digits and a newline, with room for stray whitespace
_HEX_ZID = re.compile(rf"[0-9a-fA-F]{{{ZID_BYTES * 2}}}")


def parse(text: str) -> bytes:
    """The ZID a file's text holds; ValueError unless it is exactly 24 hex digits (whitespace around)."""
    digits = text.strip()
    if not _HEX_ZID.fullmatch(digits):
        raise ValueError(f"a ZID is {ZID_BYTES * 2} hex digits")
    return bytes.fromhex(digits)


def read(directory: Path) -> bytes | None:
    """The ZID stored in an identity folder, or None when there is none yet or it cannot be used (the
    engine's start reports why)."""
    try:
        with (directory / FILE_NAME).open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            return None
        return parse(data.decode("ascii"))
    except (OSError, ValueError):
        return None
