"""What every zcall screen shares: a typed handle on the app, whose reactive state the screens watch.

The handle is a Protocol rather than the app class itself: the app imports the screens, so the screens
must not import the app (not even for type checking), or the two modules would import each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, cast

from textual.screen import Screen

from zcall.config import Config
from zcall.history import CallRecord
from zcall.paths import Paths
from zcall.settings import PhoneSettings
from zcall.tui.model import CallView, PeerRow, PhoneView

if TYPE_CHECKING:  # the cache (sqlite3) comes with the phone, after the first screen
    from zcall.zrtp.cache import PeerRecord, ZrtpCache


class PhoneApp(Protocol):
    """What screens read from the app (its published state) and the commands they send through it."""

    view: PhoneView
    paths: Paths
    settings: PhoneSettings
    live: bool
    cache: ZrtpCache | None

    @property
    def config(self) -> Config: ...
    @config.setter
    def config(self, value: Config) -> None: ...
    @property
    def failure(self) -> str: ...
    @property
    def calls(self) -> dict[str, CallView]: ...
    @property
    def peers(self) -> tuple[PeerRow, ...]: ...
    @property
    def records(self) -> tuple[PeerRecord, ...]: ...
    @property
    def recent(self) -> tuple[CallRecord, ...]: ...
    @property
    def volume(self) -> int: ...

    def note(self, text: str) -> None: ...
    def reload_known(self) -> None: ...
    def dial(self, target: str, zid: str = "") -> bool: ...
    def call_device(self, zid: str, uri: str = "") -> bool: ...
    def answer(self, call_id: str) -> None: ...
    def hangup(self, call_id: str) -> None: ...
    def words_match(self, call_id: str) -> None: ...
    def words_differ(self, call_id: str) -> None: ...
    def toggle_mute(self, call_id: str) -> None: ...
    def change_volume(self, steps: int) -> int: ...


class ZScreen(Screen[None]):
    @property
    def zapp(self) -> PhoneApp:
        return cast("PhoneApp", self.app)
