"""Home: this unit, its registration, the LAN peers (nicknamed first) and the recent calls."""

from __future__ import annotations

import time
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Static

from zcall import events
from zcall.tui.screens.base import ZScreen

TRUST_STYLE = {"verified": "bold green", "known": "yellow", "new": "dim"}
RECENT_SHOWN = 4


class PeerTable(DataTable[Text]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "select_cursor", "Call")]


def short_zid(zid: str) -> str:
    return zid[:8] + "…" if len(zid) > 8 else zid


class HomeScreen(ZScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("d", "dial", "Dial URI"),
        Binding("t", "trust", "Trust"),
        Binding("s", "settings", "Settings"),
        Binding("l", "log", "Log"),
        Binding("q", "app.quit", "Quit"),
    ]

    def compose(self) -> ComposeResult:
        yield Static("", id="me", classes="title")
        yield Static("", id="registration", classes="hint")
        yield Static("Peers on the LAN", classes="section")
        table: PeerTable = PeerTable(id="peers", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static("", id="nopeers", classes="hint")
        yield Static("Recent calls", classes="section")
        yield Static("", id="recent")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one(PeerTable)
        table.add_column("Name", key="name")
        table.add_column("Address", key="address")
        table.add_column("Trust", key="trust")
        table.focus()
        self.refresh_view()

    def refresh_view(self, event: events.Event | None = None) -> None:
        view = self.zapp.view
        me = view.name or "starting…"
        zid = f"ZID {short_zid(view.zid)}" if view.zid else ""
        self.query_one("#me", Static).update(f"zcall · {me} · {zid}".rstrip(" ·"))
        reg = self.query_one("#registration", Static)
        reg.update(f"server: {view.registration}" if view.registration else "")
        reg.display = view.registration is not None
        self._fill_peers()
        self._fill_recent()

    def _fill_peers(self) -> None:
        table = self.query_one(PeerTable)
        rows = self.zapp.view.peer_rows()
        selected = None
        if table.row_count and table.cursor_row < table.row_count:
            selected = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        table.clear()
        for peer, label, trust in rows:
            name = label if label == peer.name else f"{label} ({peer.name})"
            trust_cell = Text(trust, style=TRUST_STYLE[trust])
            if peer.busy:
                trust_cell.append(" busy", style="bold red")
            table.add_row(Text(name), Text(peer.address), trust_cell, key=peer.name)
        keys = [peer.name for peer, _, _ in rows]
        if selected in keys:
            table.move_cursor(row=keys.index(selected))
        hint = self.query_one("#nopeers", Static)
        hint.update("No zcall units seen yet. Press d to dial a SIP URI." if not rows else "")
        hint.display = not rows

    def _fill_recent(self) -> None:
        recent = list(self.zapp.view.recent)[:RECENT_SHOWN]
        if not recent:
            self.query_one("#recent", Static).update(Text("none yet", style="dim"))
            return
        lines = Text()
        for item in recent:
            arrow = "→" if item.direction == "out" else "←"
            at = time.strftime("%H:%M", time.localtime(item.at))
            lines.append(f"{at} {arrow} {item.peer[:20]:<20} {item.duration_s:>5.0f} s  {item.reason}\n")
        lines.rstrip()
        self.query_one("#recent", Static).update(lines)

    async def on_data_table_row_selected(self, message: DataTable.RowSelected) -> None:
        name = message.row_key.value
        if name:
            await self.zapp.dial(name)

    def action_dial(self) -> None:
        from zcall.tui.screens.dial import DialScreen

        self.app.push_screen(DialScreen())

    def action_trust(self) -> None:
        from zcall.tui.screens.trust import TrustScreen

        self.app.push_screen(TrustScreen())

    def action_settings(self) -> None:
        from zcall.tui.screens.settings import SettingsScreen

        self.app.push_screen(SettingsScreen())

    def action_log(self) -> None:
        from zcall.tui.screens.log import LogScreen

        self.app.push_screen(LogScreen())
