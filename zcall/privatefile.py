"""Owner-only files written atomically: a fresh temporary file (never one a crash left behind, never through a
link), fsync'ed, renamed over the target, then the folder fsync'ed so that the rename survives a power cut."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
from pathlib import Path

log = logging.getLogger(__name__)


def write_private(path: Path, data: bytes) -> None:
    """Replace `path` with `data`, mode 0600, all or nothing."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def keep_private(fd: int, path: Path) -> None:
    """A private file found open to others (a hand-made copy, a careless umask) is made owner-only again."""
    mode = stat.S_IMODE(os.fstat(fd).st_mode)
    if mode & 0o077:
        try:
            os.fchmod(fd, mode & 0o700)
        except OSError:  # not ours to change: say so, the read goes on
            log.warning("%s is readable by others (mode %o); it should be 0600", path, mode)
        else:
            log.warning("%s was readable by others (mode %o); made it 0600", path, mode)
