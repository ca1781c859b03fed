"""The Short Authentication String in large letters: two words (B256) or four characters (B32)."""

from __future__ import annotations

import pyfiglet
from rich.text import Text
from textual.widgets import Static

FONT = "small"
MAX_WORD = 32  # SAS words are at most a dozen letters; anything longer is shown plainly


def big(text: str) -> list[str]:
    """The text as figlet rows, trailing blank rows dropped."""
    rows = pyfiglet.figlet_format(text[:MAX_WORD], font=FONT, width=400).rstrip("\n").split("\n")
    while rows and not rows[-1].strip():
        rows.pop()
    return [row.rstrip() for row in rows]


def sas_lines(words: tuple[str, ...], sas_type: str, width: int) -> list[str]:
    """Rows to draw: B256 words one above the other; B32 as one group of characters.

    Falls back to spaced capitals when the panel is too narrow for the large letters.
    """
    groups = [" ".join(words)] if sas_type == "B32" else list(words)
    lines: list[str] = []
    for group in groups:
        rows = big(group)
        if max((len(r) for r in rows), default=0) > width:
            rows = [" ".join(group.upper())]
        lines.extend(rows)
    return lines


class SasWords(Static):
    """Shows the SAS large, or a placeholder while ZRTP is still agreeing keys."""

    DEFAULT_CSS = """
    SasWords { height: auto; content-align: center middle; text-align: center; }
    """

    def __init__(self, **kw: object) -> None:
        super().__init__("", **kw)  # type: ignore[arg-type]
        self.words: tuple[str, ...] = ()
        self.sas_type = "B256"
        self.compact = False
        self._drawn = False

    def show(self, words: tuple[str, ...], sas_type: str, compact: bool = False) -> None:
        """compact: plain capitals only, to leave room for an alarm on a small panel."""
        if (words, sas_type, compact) != (self.words, self.sas_type, self.compact) or not self._drawn:
            self.words, self.sas_type, self.compact = words, sas_type, compact
            self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        self._drawn = True
        if not self.words:
            self.update(Text("securing…", style="bold"))
            return
        plain = "  ".join(self.words)
        if self.compact:
            self.update(Text(plain.upper(), style="bold reverse"))
            return
        lines = sas_lines(self.words, self.sas_type, max(self.content_size.width, 20))
        # The plain words stay in the text too, so a screen reader (or capture-pane) finds them.
        self.update(Text("\n".join([*lines, plain]), style="bold"))
