"""What `zcall` exits with; scripts rely on these numbers (listed in `zcall --help` and docs/cli.md)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    ALERT = 3


MEANING = {
    ExitCode.OK: "success; with --exit-after-call: the call was secure and ended without an alert",
    ExitCode.FAILED: "could not start or do the command; with --exit-after-call: the call was never secure",
    ExitCode.USAGE: "bad command line or config file (nothing was started)",
    ExitCode.ALERT: "with --exit-after-call: the call raised a security alert (mismatch, words differ, ...)",
}


def describe() -> str:
    """One line per code, for --help."""
    return "\n".join(f"  {code.value}  {text}" for code, text in MEANING.items())
