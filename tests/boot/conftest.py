"""Hands the boot test its own outcome for the JSON report: a fixture's teardown is not told whether the
test failed (the report once said "passed" for a run that had failed)."""

from __future__ import annotations

from collections.abc import Generator

import pytest

OUTCOME = pytest.StashKey[pytest.TestReport]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call" or report.failed:
        item.stash[OUTCOME] = report
    return report
