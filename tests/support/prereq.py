"""Missing prerequisites: skipped on a developer's machine, a loud failure in CI (CI=true)."""

from __future__ import annotations

import os
import shutil

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, what: str) -> None:
    """Fail (in CI) or skip (elsewhere) when a prerequisite is missing."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"prerequisite missing in CI: {what}", pytrace=False)
    pytest.skip(f"prerequisite missing: {what}")


def require_root() -> None:
    require(os.geteuid() == 0, "root (network namespaces)")


def require_binary(*names: str) -> None:
    for name in names:
        require(shutil.which(name) is not None, f"the {name} binary")
