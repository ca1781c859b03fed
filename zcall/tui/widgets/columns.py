"""Column widths for a DataTable on a narrow console: the first column wraps, the others fit their cells."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

CELL_PADDING = 2  # DataTable's one cell of padding on each side
MIN_FIRST = 8


def fit_widths(headers: Sequence[str], rows: Sequence[Sequence[Text]], width: int) -> tuple[int, ...]:
    """Every column but the first as wide as its widest cell or header; the first takes the rest (at least
    MIN_FIRST, at most what it needs) and its cells wrap within it (rows added with height=None)."""
    needed = [
        max([len(header), *(row[i].cell_len for row in rows)]) for i, header in enumerate(headers)
    ]
    room = width - sum(needed[1:]) - CELL_PADDING * len(headers)
    return (max(MIN_FIRST, min(needed[0], room)), *needed[1:])
