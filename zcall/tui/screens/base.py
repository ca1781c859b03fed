"""What every zcall screen shares: a typed handle on the app and a hook for engine events."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.screen import Screen

from zcall import events

if TYPE_CHECKING:
    from zcall.tui.app import ZcallApp


class ZScreen(Screen[None]):
    ready = False  # set once mounted: engine events may arrive before a pushed screen has its widgets

    def on_mount(self) -> None:
        # Textual runs every class's on_mount in the MRO, so subclasses keep their own.
        self.ready = True

    @property
    def zapp(self) -> ZcallApp:
        return cast("ZcallApp", self.app)

    def refresh_view(self, event: events.Event | None = None) -> None:
        """Redraw from the app's PhoneView; called after every engine event while this screen is on top."""

    def on_screen_resume(self) -> None:
        if self.ready:
            self.refresh_view()
