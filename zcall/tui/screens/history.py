"""History: the recent calls (kept across restarts by zcall.history); Enter calls the highlighted one back."""

from __future__ import annotations

import time
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Static

from zcall.history import CallRecord
from zcall.tui.screens.base import ZScreen
from zcall.tui.widgets.columns import fit_widths

COLUMNS = ("Who", "When", "How it ended")


def call_line(record: CallRecord, nickname: str = "") -> Text:
    """One line: time, direction, who (the trust entry's name if there is one), length, how it ended."""
    at = time.strftime("%H:%M", time.localtime(record.at))
    arrow = "→" if record.direction == "out" else "←"
    return Text(f"{at} {arrow} {nickname or record.peer} · {record.duration_s:.0f} s · {record.reason}")


class CallTable(DataTable[Text]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "select_cursor", "Call")]


class HistoryScreen(ZScreen):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "app.pop_screen", "Back")]

    def compose(self) -> ComposeResult:
        yield Static("Recent calls", classes="title")
        yield CallTable(id="calls", cursor_type="row", zebra_stripes=True)
        yield Static("", id="detail", classes="hint")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(CallTable).focus()
        self.watch(self.app, "recent", self._show)

    def on_resize(self) -> None:
        self._show(self.zapp.recent)

    def _show(self, recent: tuple[CallRecord, ...]) -> None:
        table = self.query_one(CallTable)
        table.clear(columns=True)
        rows = [self._cells(record) for record in recent]
        for label, width in zip(COLUMNS, fit_widths(COLUMNS, rows, table.size.width), strict=True):
            table.add_column(label, key=label, width=width)
        for index, cells in enumerate(rows):
            table.add_row(*cells, key=str(index), height=None)
        self._detail()

    def _cells(self, record: CallRecord) -> tuple[Text, Text, Text]:
        arrow = "→ " if record.direction == "out" else "← "
        who = Text(arrow + (self.zapp.view.nickname(record.zid) or record.peer))
        when = Text(time.strftime("%m-%d %H:%M", time.localtime(record.at)))
        return who, when, Text(f"{record.reason} · {record.duration_s:.0f} s")

    def selected(self) -> CallRecord | None:
        table = self.query_one(CallTable)
        recent = self.zapp.recent
        return recent[table.cursor_row] if table.row_count and table.cursor_row < len(recent) else None

    def _detail(self) -> None:
        record = self.selected()
        detail = self.query_one("#detail", Static)
        if record is None:
            detail.update("No calls yet.")
            return
        parts = [record.uri or "no address kept", f"ZID {record.zid}" if record.zid else "no ZID"]
        detail.update(" · ".join(parts))

    def on_data_table_row_highlighted(self) -> None:
        self._detail()

    @on(DataTable.RowSelected, "#calls")
    def _call(self) -> None:
        record = self.selected()
        if record is None:
            return
        if record.zid:
            self.zapp.call_device(record.zid, record.uri)
        elif record.uri:
            self.zapp.dial(record.uri)
        else:
            self.notify("No address was kept for this call.", title="Cannot call")
