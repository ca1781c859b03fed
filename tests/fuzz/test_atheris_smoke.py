"""A few seconds of coverage-guided fuzzing per atheris target (the long run is `make fuzz`): the kept corpus
in tests/fuzz/corpus replays first, so every input that once found new code is checked on every test run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.atheris.targets import TARGETS

pytest.importorskip("atheris")

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "fuzz" / "corpus"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_fuzz_target_smoke(target: str, tmp_path: Path) -> None:
    kept = CORPUS / target
    dirs = [str(tmp_path / "new")] + ([str(kept)] if kept.is_dir() else [])
    proc = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.atheris.run", target, "-max_total_time=3", "-timeout=10",
         "-seed=1", f"-artifact_prefix={tmp_path}/", *dirs],
        cwd=ROOT, capture_output=True, text=True, timeout=110,
    )  # fmt: skip
    tail = proc.stderr[-3000:]
    assert proc.returncode == 0, tail
    assert "Done " in tail and not list(tmp_path.glob("crash-*")) and not list(tmp_path.glob("timeout-*"))
