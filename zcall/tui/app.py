"""The Textual app: renders the Phone's events and sends it the user's commands.

It never reaches into protocol objects: everything shown comes from zcall.events (folded by model.PhoneView)
or from the trust cache's public records; everything done goes through Phone's public commands. The folded
state is published as reactive attributes (`publish`); each screen watches the ones it shows.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.reactive import var
from textual.screen import Screen

from zcall import config as configmod
from zcall import events, zidfile
from zcall import settings as settingsmod
from zcall.errors import ZcallError
from zcall.exitcodes import ExitCode
from zcall.history import CallRecord, History
from zcall.paths import Paths
from zcall.settings import PhoneSettings
from zcall.tui.keys import VOLUME_STEP
from zcall.tui.model import CallView, KnownDevice, PeerRow, PhoneView
from zcall.tui.screens.base import PhoneApp
from zcall.tui.screens.home import HomeScreen

if TYPE_CHECKING:  # the engine itself is imported after the first screen is up (see _start_phone)
    from zcall.engine import Phone
    from zcall.zrtp.cache import PeerRecord, ZrtpCache

# What a command may raise: the phone refusing it (PhoneError and zcall's other errors), or the OS, e.g.
# when a call opens the audio devices (no sound card, a device that is gone). The user is told; the app runs.
COMMAND_ERRORS = (ZcallError, OSError)
CALL_GROUP = "call"  # the workers that place or answer a call: one at a time


class PhoneEvent(Message):
    """An engine event, carried into Textual's message queue so screens update outside engine callbacks."""

    def __init__(self, event: events.Event) -> None:
        super().__init__()
        self.event = event


class ZcallApp(App[None]):
    CSS_PATH = "zcall.tcss"
    TITLE = "zcall"
    ENABLE_COMMAND_PALETTE = False  # every action has its own key; the footer needs the room
    BINDINGS: ClassVar[list[BindingType]] = [Binding("ctrl+q", "quit", "Quit", show=False)]

    # The folded state, as the screens see it (set only by publish(); every value is immutable).
    me: var[tuple[str, str, bool]] = var(("", "", False))  # (name, ZID, whether the phone said ready)
    failure: var[str] = var("")  # why the phone could not start ("" while it runs or is starting)
    registration: var[str | None] = var(None)
    peers: var[tuple[PeerRow, ...]] = var(())
    recent: var[tuple[CallRecord, ...]] = var(())  # newest first, from the history file
    calls: var[dict[str, CallView]] = var(dict)
    records: var[tuple[PeerRecord, ...]] = var(())
    logged: var[int] = var(0)
    volume: var[int] = var(0)

    def __init__(
        self,
        phone: Phone | None,
        paths: Paths,
        *,
        cache: ZrtpCache | None = None,
        clock: Callable[[], float] = time.time,
        live: bool = True,
        settings: PhoneSettings | None = None,
        build_phone: bool = False,
    ) -> None:
        """phone=None shows the screens without an engine (snapshots), with `settings` as the values in
        effect, unless build_phone: then the app builds its Phone from `settings` once the first screen
        is up. live=False stops every ticking timer (call timer, level meter) so a snapshot is the same
        on every run."""
        super().__init__()
        self.phone = phone
        self.paths = paths
        self.cache = phone.cache if phone is not None else cache
        self._cache_of_files = None if self.cache is not None else _cache_on_disk(paths)
        if self._cache_of_files is not None:  # the first screen names known devices; Phone's replaces it
            self.cache = self._cache_of_files
        self.view = PhoneView(clock)
        self.history = History(paths.history_file, clock)
        self.live = live
        self.config = configmod.load(paths.config_file)
        if phone is not None:
            settings = phone.settings
        self.settings = settings if settings is not None else settingsmod.merge(self.config)
        zid = zidfile.read(paths.identity_dir)  # the first screen shows this unit before the engine is up
        self.view.expect(self.settings.name, zid.hex() if zid is not None else "")
        self.build_phone = build_phone and phone is None
        self.set_reactive(ZcallApp.volume, self.config.audio.volume)
        self.started = False

    # --- lifecycle ------------------------------------------------------------------------------------

    def get_default_screen(self) -> Screen[None]:
        return HomeScreen()

    def on_mount(self) -> None:
        self.reload_known()
        if self.settings.server_uri and (self.phone is not None or self.build_phone):
            self.view.registration = f"registering with {self.settings.server_uri}…"
        if self.phone is not None or self.build_phone:
            # After the first screen is painted: the engine's imports and start would delay it otherwise.
            self.call_after_refresh(self._start_phone)
        self.publish()

    @work(name="phone-start")
    async def _start_phone(self) -> None:
        try:
            phone = self.phone or await self._build_phone()
            phone.subscribe(self._hear)
            self.volume = phone.set_volume(self.volume)
            await phone.start()
            self.started = True
        except COMMAND_ERRORS as exc:
            self._hear(events.Error(message=str(exc)))
            self.failure = str(exc)

    async def _build_phone(self) -> Phone:
        """The engine's imports (crypto, DNS, audio) take most of the start-up time: they are done in a
        thread while the first screen is already showing, then the Phone is built from the settings."""
        for warning in await asyncio.to_thread(_load_engine_and_check_audio, self.settings):
            self.note(warning)
            self.notify(warning, title="Sound device", severity="warning", timeout=15)
        from zcall.engine import Phone  # loaded just above: this only binds the name

        self.phone = Phone(self.settings, self.paths)
        self.cache = self.phone.cache
        self._close_cache_of_files()
        self.reload_known()
        return self.phone

    async def action_quit(self) -> None:
        self.exit(return_code=ExitCode.FAILED if self.failure else ExitCode.OK)

    def _close_cache_of_files(self) -> None:
        if self._cache_of_files is not None:
            self._cache_of_files.close()
            self._cache_of_files = None

    async def on_unmount(self) -> None:
        self._close_cache_of_files()
        if self.phone is not None:
            had_calls = bool(self.phone.calls)
            await self.phone.close()
            if had_calls:
                await asyncio.sleep(0.2)  # let the last BYE leave before the socket goes

    # --- state ----------------------------------------------------------------------------------------

    def publish(self) -> None:
        """Hand the folded state to the screens: a watcher runs only where a value really changed."""
        view = self.view
        self.me = (view.name, view.zid, view.ready)
        self.registration = view.registration
        self.peers = view.peer_rows()
        self.recent = tuple(self.history.entries)
        self.calls = dict(view.calls)
        self.logged = view.logged

    def _hear(self, event: events.Event) -> None:
        self.history.hear(event)
        self.view.apply(event)
        self.post_message(PhoneEvent(event))

    def feed(self, event: events.Event) -> None:
        """Show an event as if the engine had sent it (snapshots, and notes of the TUI's own)."""
        self._hear(event)

    def note(self, text: str) -> None:
        """A line for the log screen that is not an engine event (e.g. a command that failed)."""
        self.view.note(text)
        self.logged = self.view.logged

    @on(PhoneEvent)
    def _show_event(self, message: PhoneEvent) -> None:
        event = message.event
        if isinstance(event, (events.Secure, events.Ended)):
            self.reload_known()
        self.publish()
        if isinstance(event, events.Call):
            self._follow_call(event)
        elif isinstance(event, events.Ended):
            self._follow_end(event)

    def _follow_call(self, event: events.Call) -> None:
        from zcall.tui.screens.incall import InCallScreen  # the call screens: imported with the first call
        from zcall.tui.screens.incoming import IncomingScreen

        if event.state == "incoming":
            self.push_screen(IncomingScreen(event.id))  # the phone rings (zcall.cues)
        elif event.state == "dialing":
            self.push_screen(InCallScreen(event.id))
        elif event.state == "answered" and event.direction == "in":
            if isinstance(self.screen, IncomingScreen) and self.screen.call_id == event.id:
                self.switch_screen(InCallScreen(event.id))
            else:
                self.push_screen(InCallScreen(event.id))

    def _follow_end(self, event: events.Ended) -> None:
        from zcall.tui.screens.incall import InCallScreen

        if event.cause is not events.EndCause.LOCAL_HANGUP:
            self.notify(event.reason, title="Call ended", timeout=8)
        screen = self.screen
        if getattr(screen, "call_id", None) == event.id:
            # An alarm or a words-differ warning stays until the user has read it.
            keep = isinstance(screen, InCallScreen) and screen.keeps_open()
            if not keep:
                self.pop_screen()

    # --- trust ----------------------------------------------------------------------------------------

    def reload_known(self) -> None:
        if self.cache is None:
            return
        records = tuple(self.cache.peers())
        self.view.set_known(KnownDevice(r.zid.hex(), r.name, r.verified, r.has_secret) for r in records)
        self.records = records  # after the view: watchers of `records` read the view
        self.peers = self.view.peer_rows()

    # --- commands (every one goes through Phone's public API) ------------------------------------------

    def _phone(self) -> Phone | None:
        # Not gated on `started`: SIP is up (and calls can ring) while discovery is still probing; a
        # command the phone cannot take yet raises PhoneError, which the caller reports.
        if self.phone is None:
            self.notify("The phone is not running.", severity="warning")
            return None
        return self.phone

    def placing(self) -> bool:
        """Whether a call is being placed or answered right now (its worker has not finished)."""
        return any(w.group == CALL_GROUP and not w.is_finished for w in self.workers)

    def dial(self, target: str, zid: str = "") -> bool:
        """Place a call to a URI, a name or a ZID (zid: the peer it was chosen as, if any). Refused while
        another call is being placed or is up, so a second press of Enter cannot call twice."""
        target = target.strip()
        if not target or self.failure or self.placing() or self.view.active is not None:
            return False
        self._dial(target, zid)
        return True

    @work(group=CALL_GROUP)
    async def _dial(self, target: str, zid: str) -> None:
        # Not exclusive: cancelling a call half-placed would strand its media; dial() refuses instead.
        phone = self._phone()
        if phone is None:
            return
        try:  # the device chosen goes into the call: ZRTP meeting another one there is an alarm
            call_id = await phone.call(target, expected_zid=bytes.fromhex(zid) if zid else None)
        except COMMAND_ERRORS as exc:
            self.note(f"cannot call {target}: {exc}")
            self.notify(str(exc), title="Cannot call", severity="error")
            return
        self.history.placed(call_id, zid)
        self.view.update_call(call_id, zid=zid, target=target)
        self.publish()

    def call_device(self, zid: str, uri: str = "") -> bool:
        """Call a device known by its ZID: on the LAN now, by ZID; else at the URI that reached it last."""
        if zid and any(peer.zid == zid for peer in self.view.peers.values()):
            return self.dial(zid, zid=zid)
        uri = uri or self.history.last_uri(zid)
        if not uri:
            self.notify("It is not on the LAN and no address is known for it.", title="Cannot call")
            return False
        return self.dial(uri, zid=zid)

    def answer(self, call_id: str) -> None:
        """Answer a ringing call; a second press (while answering, or after) does nothing."""
        call = self.view.calls.get(call_id)
        if call is not None and call.state == "incoming" and not self.placing():
            self._answer(call_id)

    @work(group=CALL_GROUP)
    async def _answer(self, call_id: str) -> None:
        phone = self._phone()
        if phone is None:
            return
        try:
            await phone.answer(call_id)
        except COMMAND_ERRORS as exc:
            self.note(f"cannot answer {call_id}: {exc}")
            self.notify(str(exc), title="Cannot answer", severity="error")
            self.hangup(call_id)  # decline rather than leave the caller ringing

    def hangup(self, call_id: str) -> None:
        phone = self._phone()
        if phone is None:
            return
        try:
            phone.hangup(call_id)
        except ZcallError:
            pass  # it ended on its own meanwhile

    def words_match(self, call_id: str) -> None:
        phone = self._phone()
        call = self.view.calls.get(call_id)
        if phone is None or call is None or call.secure is None:
            return
        try:
            phone.verify(call_id, True)
        except ZcallError as exc:
            self.notify(str(exc), severity="error")
            return
        self.view.update_call(call_id, verified=True, muted=phone.is_muted(call_id))
        self.note(f"call {call_id}: you confirmed the words match; {call.peer} is now verified")
        self.reload_known()
        self.publish()

    def words_differ(self, call_id: str) -> None:
        phone = self._phone()
        if phone is None or call_id not in self.view.calls:
            return
        try:
            phone.verify(call_id, False)
        except ZcallError:
            self.hangup(call_id)

    def toggle_mute(self, call_id: str) -> None:
        phone = self._phone()
        call = self.view.calls.get(call_id)
        if phone is None or call is None:
            return
        try:
            phone.set_muted(not call.user_muted, call_id)
        except ZcallError:
            return
        self.view.update_call(call_id, user_muted=not call.user_muted, muted=phone.is_muted(call_id))
        self.publish()

    def change_volume(self, steps: int) -> int:
        volume = max(0, min(100, self.volume + steps * VOLUME_STEP))
        self.volume = self.phone.set_volume(volume) if self.phone is not None else volume
        return self.volume


def _load_engine_and_check_audio(settings: PhoneSettings) -> list[str]:
    """In a thread, while the first screen shows: the engine's imports, and the audio specs checked as
    `zcall --headless` checks them. A file or tone no call could open stops the phone now (not every call's
    setup); a sound device that is missing is a warning returned: it can still come (a desk unit's card at
    boot), and a desk unit has no q key to leave a phone that did not start."""
    importlib.import_module("zcall.engine")
    from zcall.media import audio, audiospec

    warnings = []
    checks = ((audiospec.check_source, settings.audio_in), (audiospec.check_sink, settings.audio_out))
    for check, spec in checks:
        try:
            check(spec)
        except audio.AudioSpecError as exc:
            if not audiospec.is_device(spec):
                raise audio.AudioSpecError(f"audio: {exc}") from exc
            warnings.append(f"audio: {exc}")
    return warnings


def _cache_on_disk(paths: Paths) -> ZrtpCache | None:
    """The trust cache, if this home has one: its names label the first screen's recent calls."""
    if not paths.cache_file.exists():
        return None
    from zcall.zrtp.cache import ZrtpCache
    from zcall.zrtp.cachefile import CacheError

    try:
        return ZrtpCache(paths.cache_file)
    except CacheError:
        return None  # the Phone opens it again and says what is wrong


def _screens_handle(app: ZcallApp) -> PhoneApp:
    """Never called: mypy checks here that the app gives the screens everything their handle promises."""
    return app


def run(settings: PhoneSettings, paths: Paths) -> int:
    """`zcall` with no --headless: the TUI on the same engine the headless face drives. A phone that cannot
    be built or started is shown on Home, and the TUI then exits 1."""
    app = ZcallApp(None, paths, settings=settings, build_phone=True)
    app.run()
    if app.failure:
        print(f"zcall: {app.failure}", file=sys.stderr)
    return app.return_code or ExitCode.OK
