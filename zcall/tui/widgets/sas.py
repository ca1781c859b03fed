"""The Short Authentication String in large letters: two words (B256) or four characters (B32)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.geometry import Size
from textual.widget import Widget

FONT = "small"
MAX_WORD = 32  # SAS words are at most a dozen letters; anything longer is shown plainly


def big(text: str) -> list[str]:
    """The text as figlet rows, trailing blank rows dropped."""
    # Imported on the first SAS shown, not at start: pyfiglet reads its fonts from disk when loaded.
    import pyfiglet

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
        block = max((len(r) for r in rows), default=0)
        if block > width:
            lines.append(" ".join(group.upper()))
        else:
            # One width per word, so centring each row keeps the letters' strokes lined up.
            lines.extend(row.ljust(block) for row in rows)
    return lines


class SasWords(Widget):
    """Shows the SAS large, or a placeholder while ZRTP is still agreeing keys.

    The text depends on the width (large letters, or spaced capitals when narrow), so it is laid out at
    render time and its height is reported to the layout for that same width.
    """

    DEFAULT_CSS = """
    SasWords { height: auto; width: 1fr; text-align: center; }
    """

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.words: tuple[str, ...] = ()
        self.sas_type = "B256"
        self.compact = False
        self.blank = "securing…"

    def show(
        self, words: tuple[str, ...], sas_type: str, compact: bool = False, blank: str = "securing…"
    ) -> None:
        """compact: plain capitals only, to leave room for an alarm on a small panel. blank: said without
        words (keys still being agreed, or a secure call that has none)."""
        if (words, sas_type, compact, blank) != (self.words, self.sas_type, self.compact, self.blank):
            self.words, self.sas_type, self.compact, self.blank = words, sas_type, compact, blank
            self.refresh(layout=True)

    def lines(self, width: int) -> list[str]:
        if not self.words:
            return [self.blank]
        plain = "  ".join(self.words)
        if self.compact:
            return [plain.upper()]
        # The plain words stay in the text too, so a screen reader (or capture-pane) finds them.
        return [*sas_lines(self.words, self.sas_type, max(width, 20)), plain]

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self.lines(width))

    def render(self) -> Text:
        style = "bold reverse" if self.compact and self.words else "bold"
        return Text("\n".join(self.lines(self.content_size.width)), style=style)
