"""The boot tests' JSON report (each test module names its REPORT_DIR and IMAGE), and the test's own outcome
for it: a fixture's teardown is not told whether the test failed (the report once said "passed" for a run
that had failed)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

OUTCOME = pytest.StashKey[pytest.TestReport]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call" or report.failed:
        item.stash[OUTCOME] = report
    return report


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Iterator[dict[str, object]]:
    """What the test puts in it, plus its result, duration and the host's load, in REPORT_DIR/report.json."""
    report_dir: Path = request.module.REPORT_DIR
    report_dir.mkdir(parents=True, exist_ok=True)
    data: dict[str, object] = {"image": str(request.module.IMAGE), "checks": {}, "timings_s": {},
                               "result": "did not finish"}
    started = time.monotonic()
    loads: list[float] = []
    done = threading.Event()

    def sample_load() -> None:  # the host is shared: how busy it was explains the timings
        while not done.wait(30 if loads else 0):
            loads.append(os.getloadavg()[0])

    sampler = threading.Thread(target=sample_load, daemon=True)
    sampler.start()
    try:
        yield data
    finally:
        done.set()
        sampler.join(timeout=5)
        outcome = request.node.stash.get(OUTCOME, None)
        if outcome is not None:
            crash = getattr(outcome.longrepr, "reprcrash", None)  # the error itself, not the locals
            why = crash.message if crash is not None else outcome.longreprtext
            data["result"] = "passed" if outcome.passed else f"failed: {why[:4000]}"
        data["total_s"] = round(time.monotonic() - started, 1)
        if loads:
            data["host_load_1min"] = {"min": min(loads), "mean": round(sum(loads) / len(loads), 2),
                                      "max": max(loads), "cores": os.cpu_count()}
        (report_dir / "report.json").write_text(json.dumps(data, indent=2) + "\n")
