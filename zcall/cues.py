"""The phone's sounds at call events, played by the engine (TUI and headless alike) on the phone's output at
the user's volume: the ring while a call comes in, ringback while the far end rings, busy when it cannot take
the call, a chime when the call is secure, the alarm on a key mismatch.

`cue_for` is the policy (an event in, what to play out); `SoundPlayer` plays it. While a call has its audio
open the sounds go through that call's CueMixer (one output device, mixed with the far end once it plays);
otherwise the player opens the output itself and closes it as soon as the sound ends or a call needs it.
Sounds play on sound devices only: a file output records the far end, and `[audio] sounds = false` mutes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from zcall import events
from zcall.errors import ZcallError
from zcall.events import CallState, EndCause

if TYPE_CHECKING:  # the audio stack (numpy, soxr) is loaded when a sound first plays, not with the phone
    from zcall.media.output import CueMixer, GainSink

log = logging.getLogger(__name__)

FRAME_S = 0.020
BUSY_REPEATS = 3  # 3 s of busy tone, then quiet
_MAX_REFUSED = 150  # frames in a row a device may refuse (it is starting) before the cue is given up


@dataclass(frozen=True)
class Cue:
    sound: str
    loop: bool = False  # until a later event stops it (ring, ringback)
    repeats: int = 1


Stop = Literal["stop"]  # stop a looping cue (the call was answered or ended); a chime or alarm plays out


def cue_for(event: events.Event) -> Cue | Stop | None:
    """What an event sounds like: a cue to play, "stop" for the ring or ringback, or None (no change)."""
    match event:
        case events.Call(state=CallState.INCOMING):
            return Cue("ring", loop=True)
        case events.Call(state=CallState.RINGING, direction="out"):
            return Cue("ringback", loop=True)
        case events.Call():
            return "stop"
        case events.Secure():
            return Cue("secure")
        case events.Alert():
            return Cue("alarm")
        case events.Ended(cause=EndCause.BUSY):
            return Cue("busy", repeats=BUSY_REPEATS)
        case events.Ended():
            return "stop"
    return None


def plays_on(audio_out: str) -> bool:
    """Sounds go to sound devices, not to a recording (file:) or nowhere (null)."""
    from zcall.media.audiospec import is_device

    return is_device(audio_out)


class SoundPlayer:
    """Follows the phone's events and plays their cues. `current` is the cue playing (its sound's name)."""

    def __init__(self, audio_out: str, volume: Callable[[], int], *, enabled: bool = True) -> None:
        self._spec = audio_out
        self._volume = volume
        self.enabled = enabled and plays_on(audio_out)
        self._cue: Cue | None = None
        self._frames: list[bytes] = []
        self._pos = 0
        self._left = 0  # plays of the cue still to go (loops: not counted)
        self._task: asyncio.Task[None] | None = None
        self._mixer: CueMixer | None = None
        self._own: GainSink | None = None  # the output we opened ourselves (no call has it open)
        self._loaded: dict[str, list[bytes]] = {}
        self.frames_played = 0
        self._refused = 0
        self.looping: str | None = None  # ring or ringback in effect (kept when muted: what the UI shows)

    @property
    def current(self) -> str | None:
        return self._cue.sound if self._cue is not None else None

    def on_event(self, event: events.Event) -> None:
        cue = cue_for(event)
        if cue == "stop" or isinstance(cue, Cue):
            self.looping = cue.sound if isinstance(cue, Cue) and cue.loop else None
        if cue == "stop":
            if self._cue is not None and self._cue.loop:
                self._end_cue()
        elif isinstance(cue, Cue) and self.enabled:
            self._start(cue)

    # --- a call's output ------------------------------------------------------------------------------

    async def release(self) -> None:
        """A call is about to open the output: close ours (a device may take one user), stop the ring."""
        if self._cue is not None and self._cue.loop and self._cue.sound == "ring":
            self._end_cue()
            self.looping = None
        self._close_own()
        await asyncio.sleep(0)

    def attach(self, mixer: CueMixer) -> None:
        self._close_own()
        self._mixer = mixer

    def detach(self, mixer: CueMixer) -> None:
        if self._mixer is mixer:
            self._mixer = None

    # --- playing --------------------------------------------------------------------------------------

    def _start(self, cue: Cue) -> None:
        try:
            frames = self._load(cue.sound)
        except (ZcallError, OSError) as exc:
            log.warning("sound %s cannot be loaded: %s", cue.sound, exc)
            return
        self._cue, self._frames, self._pos, self._left = cue, frames, 0, cue.repeats
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def _load(self, name: str) -> list[bytes]:
        if name not in self._loaded:
            # Imported when a sound first plays: the audio stack is not needed to start the phone.
            from zcall.media import sounds
            from zcall.media.audio import read_wav_48k_mono
            from zcall.media.codec import FRAME_BYTES

            pcm = read_wav_48k_mono(sounds.path(name)).tobytes()
            pcm += bytes(-len(pcm) % FRAME_BYTES)
            self._loaded[name] = [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]
        return self._loaded[name]

    def _end_cue(self) -> None:
        self._cue, self._frames = None, []

    def _next_frame(self) -> bytes | None:
        if self._cue is None:
            return None
        if self._pos == len(self._frames):
            self._left -= 1
            if not self._cue.loop and self._left <= 0:
                self._end_cue()
                return None
            self._pos = 0
        frame = self._frames[self._pos]
        self._pos += 1
        return frame

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        try:
            while (frame := self._next_frame()) is not None:
                self._play(frame)
                due += FRAME_S
                await asyncio.sleep(max(0.0, due - loop.time()))
        finally:
            self._close_own()

    def _play(self, frame: bytes) -> None:
        mixer = self._mixer
        if mixer is not None:
            # From its first frame the playout writes one every tick until the call's output closes, so from
            # then on a cue goes into what it writes, never beside it: after a stall the playout resyncs while
            # this loop catches up, and frames written beside it would overfill the device.
            if mixer.playout_frames == 0:
                self._write(mixer.write_alone, mixer, frame)
            elif mixer.mix_in(frame):
                self._played_one()
            else:
                self._held_back()
            return
        if self._own is None:
            from zcall.media.audio import AudioSpecError
            from zcall.media.audiospec import open_sink
            from zcall.media.output import GainSink

            try:
                self._own = GainSink(open_sink(self._spec), self._volume())
            except (AudioSpecError, OSError) as exc:
                log.warning("sounds cannot play on %r: %s", self._spec, exc)
                self._end_cue()
                return
        self._own.percent = self._volume()
        self._write(self._own.write_frame, self._own, frame)

    def _write(self, write: Callable[[bytes], None], sink: CueMixer | GainSink, frame: bytes) -> None:
        """A frame the device refused (a stream that has not started yet) is offered again next tick, so
        the start of a chime is not lost to a device still opening."""
        before = sink.dropped
        write(frame)
        if before is None or sink.dropped == before:
            self._played_one()
        else:
            self._held_back()

    def _played_one(self) -> None:
        self._refused = 0
        self.frames_played += 1

    def _held_back(self) -> None:
        """The frame was not taken: offered again next tick, for as long as a device may take to start."""
        self._pos -= 1
        self._refused += 1
        if self._refused > _MAX_REFUSED:
            log.warning("sounds: the output takes no frames, %s given up", self.current)
            self._refused = 0
            self._end_cue()

    def _close_own(self) -> None:
        own, self._own = self._own, None
        if own is not None:
            with contextlib.suppress(Exception):
                own.close()

    async def close(self) -> None:
        self._end_cue()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._close_own()
