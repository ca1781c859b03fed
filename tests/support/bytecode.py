"""Start-up benches run zcall byte-compiled, as an installed zcall runs (the package compiles its modules; a
checkout writes __pycache__ on its first run). PYTHONDONTWRITEBYTECODE in the caller's environment would
make every start compile zcall from source; the .pyc files go to a folder of the bench's, not the checkout."""

from __future__ import annotations

from pathlib import Path


def compiled(pycache: Path) -> dict[str, str]:
    """Environment variables for a child that writes and reuses .pyc files under `pycache` (the first start
    writes them: run one untimed). An empty PYTHONDONTWRITEBYTECODE is off."""
    return {"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": str(pycache)}
