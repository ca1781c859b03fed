"""Home: this unit, its registration, the LAN peers (nicknamed first) and the recent calls."""

from __future__ import annotations

from typing import ClassVar, cast

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Static

from zcall.history import CallRecord
from zcall.tui.model import PeerRow
from zcall.tui.screens.base import ZScreen
from zcall.tui.screens.history import HistoryScreen, call_line
from zcall.tui.widgets.columns import fit_widths

TRUST_STYLE = {"verified": "bold green", "known": "yellow", "new": "dim"}
RECENT_SHOWN = 4
COLUMNS = ("name", "address", "trust")


class PeerTable(DataTable[Text]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "select_cursor", "Call")]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (action == "select_cursor" and cast("ZScreen", self.screen).zapp.failure)


def short_zid(zid: str) -> str:
    return zid[:8] + "…" if len(zid) > 8 else zid


def peer_cells(row: PeerRow) -> tuple[Text, Text, Text]:
    peer = row.peer
    name = row.label if row.label == peer.name else f"{row.label} ({peer.name})"
    trust = Text(row.trust, style=TRUST_STYLE[row.trust])
    if row.busy:
        trust.append(" · ")
        trust.append("busy", style="bold red")
    return Text(name), Text(peer.address), trust


class HomeScreen(ZScreen):
    # Most needed first: a narrow console's footer shows as many as fit, from the left.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "app.quit", "Quit"),
        Binding("d", "dial", "Dial"),
        Binding("r", "history", "Recent"),
        Binding("t", "trust", "Trust"),
        Binding("s", "settings", "Settings"),
        Binding("l", "log", "Log"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.shown: dict[str, PeerRow] = {}  # by ZID: the rows the table holds now
        self.widths: tuple[int, ...] = ()  # the columns' widths now

    def compose(self) -> ComposeResult:
        yield Static("", id="me", classes="title")
        yield Static("", id="failure")
        yield Static("", id="registration", classes="hint")
        yield Static("Peers on the LAN", classes="section")
        yield PeerTable(id="peers", cursor_type="row", zebra_stripes=True)
        yield Static("", id="nopeers", classes="hint")
        yield Static("Recent calls", classes="section")
        yield Static("", id="recent")
        yield Footer(compact=True)

    @property
    def table(self) -> PeerTable:
        return self.query_one(PeerTable)

    def on_mount(self) -> None:
        self.table.focus()
        self.watch(self.app, "me", self._show_me)
        self.watch(self.app, "failure", self._show_failure)
        self.watch(self.app, "registration", self._show_registration)
        self.watch(self.app, "peers", self._show_peers)
        self.watch(self.app, "recent", self._show_recent)

    def _show_me(self, me: tuple[str, str, bool]) -> None:
        if self.zapp.failure:
            return
        name, zid, ready = me
        # Name and ZID come from the files until the phone is up: "starting…" before the ZID, which a
        # narrow console may cut.
        parts = ["zcall", *([name] if name else []), *([] if ready else ["starting…"])]
        parts += [f"ZID {short_zid(zid)}"] if zid else []
        self.query_one("#me", Static).update(" · ".join(parts))

    def _show_failure(self, failure: str) -> None:
        box = self.query_one("#failure", Static)
        box.update(f"The phone is not running: {failure}. Press q to quit." if failure else "")
        box.display = bool(failure)
        if failure:
            self.query_one("#me", Static).update("zcall · not running")
            self.query_one("#nopeers", Static).display = False
        self.refresh_bindings()
        self.table.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """A phone that could not start offers no way to call."""
        return not (action in ("dial", "history") and self.zapp.failure)

    def _show_registration(self, registration: str | None) -> None:
        reg = self.query_one("#registration", Static)
        reg.update(f"server: {registration}" if registration else "")
        reg.display = registration is not None

    def _show_peers(self, rows: tuple[PeerRow, ...]) -> None:
        """Change only the cells that changed; rebuild only when peers come, go or the widths change."""
        table = self.table
        keys = [row.peer.zid for row in rows]
        widths = fit_widths(COLUMNS, [peer_cells(row) for row in rows], table.size.width)
        if keys == list(self.shown) and widths == self.widths:
            for row in rows:
                old = self.shown[row.peer.zid]
                if old != row:
                    for column, was, now in zip(COLUMNS, peer_cells(old), peer_cells(row), strict=True):
                        if was != now:
                            table.update_cell(row.peer.zid, column, now)
        else:
            selected = self._selected()
            table.clear(columns=True)
            for key, width in zip(COLUMNS, widths, strict=True):
                table.add_column(key.capitalize(), key=key, width=width)
            for row in rows:
                table.add_row(*peer_cells(row), key=row.peer.zid, height=None)  # a long name wraps
            if selected in keys:
                table.move_cursor(row=keys.index(selected))
            self.widths = widths
        self.shown = {row.peer.zid: row for row in rows}
        hint = self.query_one("#nopeers", Static)
        hint.update("No zcall units seen yet. Press d to dial a SIP URI." if not rows else "")
        hint.display = not rows and not self.zapp.failure

    def on_resize(self) -> None:
        self.widths = ()
        self._show_peers(self.zapp.peers)

    def _selected(self) -> str | None:
        table = self.table
        if not table.row_count or table.cursor_row >= table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def _show_recent(self, recent: tuple[CallRecord, ...]) -> None:
        box = self.query_one("#recent", Static)
        if not recent:
            box.update(Text("none yet", style="dim"))
            return
        nickname = self.zapp.view.nickname
        box.update(Text("\n").join(call_line(item, nickname(item.zid)) for item in recent[:RECENT_SHOWN]))

    @on(DataTable.RowSelected, "#peers")
    def _call_selected(self, message: DataTable.RowSelected) -> None:
        row = self.shown.get(message.row_key.value or "")
        if row is not None:
            self.zapp.dial(row.peer.zid, zid=row.peer.zid)  # by ZID: the device chosen, not a name

    # The other screens are imported when first opened: the first screen comes up without them.

    def action_dial(self) -> None:
        from zcall.tui.screens.dial import DialScreen

        self.app.push_screen(DialScreen())

    def action_history(self) -> None:
        self.app.push_screen(HistoryScreen())

    def action_trust(self) -> None:
        from zcall.tui.screens.trust import TrustScreen

        self.app.push_screen(TrustScreen())

    def action_settings(self) -> None:
        # Imported when first opened, not at start: its level meter and test tone load the audio stack.
        from zcall.tui.screens.settings import SettingsScreen

        self.app.push_screen(SettingsScreen())

    def action_log(self) -> None:
        from zcall.tui.screens.log import LogScreen

        self.app.push_screen(LogScreen())
