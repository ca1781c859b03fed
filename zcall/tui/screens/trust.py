"""Trust: the devices this unit keeps secrets with: name, ZID, verified, first/last seen; rename, unverify,
verify, forget. Reads and writes go through the ZrtpCache's public methods."""

from __future__ import annotations

import time
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Input, Static

from zcall.tui.screens.base import ZScreen
from zcall.tui.widgets.columns import fit_widths
from zcall.zrtp.cache import MAX_NAME_LEN, PeerRecord

COLUMNS = ("Name", "Trust", "Last seen")  # the ZID and first-seen time are in the line below


def when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp)) if stamp else "-"


def trust_word(record: PeerRecord) -> Text:
    if not record.has_secret:
        return Text("expired", style="dim")
    return Text("verified", style="bold green") if record.verified else Text("known", style="yellow")


class RenameDialog(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("New name for this device (Enter saves, Escape cancels):")
            yield Input(value=self.current, max_length=MAX_NAME_LEN, id="name")

    def on_input_submitted(self, message: Input.Submitted) -> None:
        self.dismiss(message.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmDialog(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question)
            yield Static("Y: yes    N: no", classes="hint")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class TrustScreen(ZScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "call", "Call"),
        Binding("r", "rename", "Rename"),
        Binding("v", "verify", "Verify"),
        Binding("u", "unverify", "Unverify"),
        Binding("f", "forget", "Forget"),
        Binding("escape", "app.pop_screen", "Back"),
    ]

    def compose(self) -> ComposeResult:
        yield Static("Known devices", classes="title")
        yield DataTable(id="devices", cursor_type="row", zebra_stripes=True)
        yield Static("", id="detail", classes="hint")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()
        self.zapp.reload_known()  # last-seen times move without an event
        self.watch(self.app, "records", self._show)

    def _show(self, records: tuple[PeerRecord, ...]) -> None:
        table: DataTable[Text] = self.query_one(DataTable)
        row = table.cursor_row
        table.clear(columns=True)
        records = tuple(sorted(records, key=lambda r: (not r.verified, r.name.lower(), r.zid)))
        rows = [(Text(r.name or "-"), trust_word(r), Text(when(r.last_seen))) for r in records]
        for label, width in zip(COLUMNS, fit_widths(COLUMNS, rows, table.size.width), strict=True):
            table.add_column(label, key=label, width=width)
        for record, cells in zip(records, rows, strict=True):
            table.add_row(*cells, key=record.zid.hex(), height=None)  # a long name wraps
        if records:
            table.move_cursor(row=min(row, len(records) - 1))
        self._detail()

    def selected(self) -> PeerRecord | None:
        table: DataTable[Text] = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((r for r in self.zapp.records if r.zid.hex() == key), None)

    def _detail(self) -> None:
        record = self.selected()
        detail = self.query_one("#detail", Static)
        detail.update(
            f"ZID {record.zid.hex()} · first seen {when(record.first_seen)}"
            if record
            else "No devices yet: they appear after a call."
        )

    def on_data_table_row_highlighted(self) -> None:
        self._detail()

    def on_resize(self) -> None:
        self._show(self.zapp.records)

    def _change(self, action: str, record: PeerRecord) -> None:
        cache = self.zapp.cache
        if cache is None:
            return
        if action == "verify":
            cache.set_verified(record.zid, True)
        elif action == "unverify":
            cache.set_verified(record.zid, False)
        elif action == "forget":
            cache.forget(record.zid)
        self.zapp.note(f"trust: {action} {record.zid.hex()} {record.name}".rstrip())
        self.zapp.reload_known()

    @on(DataTable.RowSelected)
    def action_call(self) -> None:
        record = self.selected()
        if record is not None:
            self.zapp.call_device(record.zid.hex())

    def action_verify(self) -> None:
        record = self.selected()
        if record is not None:
            self._change("verify", record)

    def action_unverify(self) -> None:
        record = self.selected()
        if record is not None:
            self._change("unverify", record)

    def action_forget(self) -> None:
        record = self.selected()
        if record is None:
            return

        def done(yes: bool | None) -> None:
            if yes:
                self._change("forget", record)

        question = f"Forget {record.name or record.zid.hex()}? Its secrets go; the next call starts as new."
        self.app.push_screen(ConfirmDialog(question), done)

    def action_rename(self) -> None:
        record = self.selected()
        cache = self.zapp.cache
        if record is None or cache is None:
            return

        def done(name: str | None) -> None:
            if name is None:
                return
            try:
                cache.set_name(record.zid, name)
            except ValueError as exc:
                self.notify(str(exc), severity="error")
                return
            self.zapp.note(f"trust: renamed {record.zid.hex()} to {name}")
            self.zapp.reload_known()

        self.app.push_screen(RenameDialog(record.name), done)
