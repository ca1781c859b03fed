"""`zcall --headless`: the phone with no UI; every event is one JSON line on stdout."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from zcall import events
from zcall.engine import PeerNotFound, Phone, PhoneError
from zcall.events import EndCause
from zcall.exitcodes import ExitCode
from zcall.media import audio, audiospec
from zcall.paths import Paths
from zcall.routing import shown
from zcall.settings import PhoneSettings

PEER_WAIT_S = 15.0  # how long --call NAME waits for the peer to show up on the LAN


class _Runner:
    def __init__(self, phone: Phone, args: argparse.Namespace) -> None:
        self.phone = phone
        self.args = args
        self.done = asyncio.Event()
        self.peer_seen = asyncio.Event()
        self._secure: set[str] = set()  # calls that reached secure
        self._alerted: set[str | None] = set()  # calls (or None: no call) that raised a security alert
        self.exit_code = ExitCode.OK

    def on_event(self, event: events.Event) -> None:
        sys.stdout.write(event.to_json() + "\n")
        sys.stdout.flush()
        if isinstance(event, events.Peer) and event.action == "up":
            self.peer_seen.set()
        if isinstance(event, events.Secure):
            self._secure.add(event.id)
            if self.args.hangup_after:
                loop = asyncio.get_running_loop()
                loop.call_later(self.args.hangup_after, self._hangup, event.id)
        if isinstance(event, events.Alert):
            self._alerted.add(event.id)
        # A LAN call that falls back to the server ends only to go on as a new call: not the end.
        if isinstance(event, events.Ended):
            if self.args.exit_after_call and event.cause != EndCause.FALLBACK:
                self.finish(self._outcome(event.id))
            # An ended call's marks are done with: a unit that runs for months keeps nothing per call.
            self._secure.discard(event.id)
            self._alerted.discard(event.id)

    def _outcome(self, call_id: str) -> ExitCode:
        if call_id in self._alerted:
            return ExitCode.ALERT
        return ExitCode.OK if call_id in self._secure else ExitCode.FAILED

    def finish(self, code: ExitCode) -> None:
        if not self.done.is_set():
            self.exit_code = code
        self.done.set()

    def _hangup(self, call_id: str) -> None:
        with contextlib.suppress(PhoneError):
            self.phone.hangup(call_id)

    async def place_call(self, target: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PEER_WAIT_S
        waiting = False
        while True:
            try:
                await self.phone.call(target)
                return
            except PhoneError as exc:
                # Only a name may still show up on the LAN, and only while discovery runs.
                may_appear = isinstance(exc, PeerNotFound) and self.phone.discovering
                if not may_appear or loop.time() >= deadline:
                    self.on_event(events.Error(message=str(exc)))
                    if self.args.exit_after_call:
                        self.finish(ExitCode.FAILED)
                    return
            if not waiting:  # for people (stdout is the events): why nothing happens for a while
                print(f"zcall: waiting up to {PEER_WAIT_S:.0f} s for {shown(target)} to show up on the LAN…",
                      file=sys.stderr, flush=True)  # fmt: skip
                waiting = True
            self.peer_seen.clear()
            # A peer showing up, or a signal: Ctrl+C or SIGTERM does not wait for the 15 s to pass.
            wakes = [asyncio.ensure_future(self.peer_seen.wait()), asyncio.ensure_future(self.done.wait())]
            timeout = max(0.1, deadline - loop.time())
            await asyncio.wait(wakes, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            for wake in wakes:
                wake.cancel()
            if self.done.is_set():
                return


async def run(settings: PhoneSettings, paths: Paths, args: argparse.Namespace) -> int:
    """Run until a signal (or, with --exit-after-call, the end of the first call); returns an ExitCode."""
    try:  # a spec no call could open is said once, now, not at every call's setup
        audiospec.check_source(settings.audio_in)
        audiospec.check_sink(settings.audio_out)
    except audio.AudioSpecError as exc:
        print(events.Error(message=f"audio: {exc}").to_json(), flush=True)
        return ExitCode.FAILED
    try:
        phone = Phone(settings, paths)
    except PhoneError as exc:
        print(events.Error(message=str(exc)).to_json(), flush=True)
        return ExitCode.FAILED
    runner = _Runner(phone, args)
    phone.subscribe(runner.on_event)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, runner.done.set)
    try:
        await phone.start()
    except PhoneError as exc:
        runner.on_event(events.Error(message=str(exc)))
        await phone.close()
        return ExitCode.FAILED
    try:
        if args.call:
            await runner.place_call(args.call)
        await runner.done.wait()
    finally:
        await phone.close()
        await asyncio.sleep(0.2)  # let the last BYE leave before the socket goes
    return runner.exit_code
