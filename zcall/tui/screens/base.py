"""What every zcall screen shares: a typed handle on the app, whose reactive state the screens watch."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.screen import Screen

if TYPE_CHECKING:
    from zcall.tui.app import ZcallApp


class ZScreen(Screen[None]):
    @property
    def zapp(self) -> ZcallApp:
        return cast("ZcallApp", self.app)
