"""Waiting for a condition with a deadline, not for a fixed time: a loaded machine runs late, not wrong."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def until(predicate: Callable[[], object], timeout: float = 20.0, what: str = "condition") -> None:
    """Let the event loop run until predicate() holds; after `timeout` seconds, fail naming `what`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
