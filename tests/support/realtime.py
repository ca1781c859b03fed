"""Real-time scheduling for the processes of a real-time audio test, as a phone's audio process has: they keep
their 20 ms rhythm while the rest of the machine is busy. Where it is not allowed (no CAP_SYS_NICE), none."""

from __future__ import annotations

import functools
import os
import subprocess


@functools.cache
def realtime_prefix() -> tuple[str, ...]:
    """`chrt --rr 10` to put before a command, or () where it is not allowed."""
    probe = subprocess.run(["chrt", "--rr", "10", "true"], capture_output=True)
    return ("chrt", "--rr", "10") if probe.returncode == 0 else ()


def make_this_thread_realtime() -> bool:
    """From inside a process: the calling thread under SCHED_RR 10, the threads it starts later too (not
    those already running: a device's own threads may spin, and at real-time priority would take a core).
    False where it is not allowed."""
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(10))
    except PermissionError:
        return False
    return True
