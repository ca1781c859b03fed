"""The docs stand alone and stay true: links resolve inside the repository, and the references list what the
code has (every option, exit code, event, alert kind and end cause)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from zcall import cli, events
from zcall.exitcodes import ExitCode

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_links_stay_inside_the_repository(doc: Path) -> None:
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text()):
        if target.startswith(("http://", "https://")):
            continue
        resolved = (doc.parent / target).resolve()
        assert resolved.is_relative_to(ROOT), f"{doc.name} links outside the repository: {target}"
        assert resolved.exists(), f"{doc.name} links to a missing file: {target}"


def test_readme_first_screen_keeps_the_two_commands() -> None:
    first = ROOT.joinpath("README.md").read_text().split("\n---\n", 1)[0]
    block = first.split("```", 2)[1]
    commands = [line.split()[0:2] for line in block.splitlines() if line.strip()]
    assert commands == [["make", "run"], ["make", "test"]]


def _long_options(parser: argparse.ArgumentParser) -> set[str]:
    found = {o for a in parser._actions for o in a.option_strings if o.startswith("--") and o != "--help"}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _long_options(sub)
    return found


def test_the_cli_reference_lists_every_option_and_exit_code() -> None:
    text = ROOT.joinpath("docs", "cli.md").read_text()
    options = _long_options(cli.build_parser())
    assert sorted(o for o in options if not re.search(rf"[`\[ ]{o}\b", text)) == []
    for code in ExitCode:
        assert f"| {code.value} |" in text


def test_the_event_reference_lists_every_event_and_value() -> None:
    text = ROOT.joinpath("docs", "events.md").read_text()
    for kind in events.EVENT_TYPES:
        assert f'"event":"{kind}"' in text
    for value in [*events.AlertKind, *events.EndCause, *events.CallState]:
        assert str(value) in text, value
