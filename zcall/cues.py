"""The phone's sounds at call events, played by the engine (TUI and headless alike) on the phone's output at
the user's volume: the ring while a call comes in, ringback while the far end rings, busy when it cannot take
the call, a chime when the call is secure, the alarm on a key mismatch.

`cue_for` is the policy (an event in, what to play out); `SoundPlayer` plays it. While a call has its audio
open the sounds go through that call's CueMixer (one output device, mixed with the far end once it plays);
otherwise the player writes to the output itself. Sounds play on sound devices only: a file output records
the far end, and `[audio] sounds = false` mutes them.

The player also keeps the speaker open from a call's first event (ringing, dialling) to its end, and lends
that same open stream to the call's audio: a new output stream may pull nothing for a while after it opens
(an idle PulseAudio null sink: 0.7-1.8 s), and the far end's first words would be lost to it. One stream
from the ring into the call also means one user of a sound card that takes only one.
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
    from zcall.media.audio import AudioSink
    from zcall.media.devices import DeviceSink
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

    def __init__(self, audio_out: str, volume: Callable[[], int], *, enabled: bool = True,
                 open_speaker: Callable[[str], DeviceSink] | None = None) -> None:
        self._spec = audio_out
        self._volume = volume
        self.enabled = enabled and plays_on(audio_out)
        self.keeps_speaker = plays_on(audio_out)  # muted or not, a call's speaker is opened before it
        self._open_speaker = open_speaker  # None: zcall.media.audiospec.open_speaker, imported when needed
        self._speaker: DeviceSink | None = None  # open while a call or a cue needs it (one use is ours)
        self._calls: set[str] = set()  # calls from their first event to their end
        self._cue: Cue | None = None
        self._frames: list[bytes] = []
        self._pos = 0
        self._left = 0  # plays of the cue still to go (loops: not counted)
        self._task: asyncio.Task[None] | None = None
        self._mixer: CueMixer | None = None
        self._own: GainSink | None = None  # a cue's own use of the speaker (no call has it open)
        self._loaded: dict[str, list[bytes]] = {}
        self.frames_played = 0
        self._refused = 0
        self.looping: str | None = None  # ring or ringback in effect (kept when muted: what the UI shows)

    @property
    def current(self) -> str | None:
        return self._cue.sound if self._cue is not None else None

    def on_event(self, event: events.Event) -> None:
        self._follow_calls(event)
        cue = cue_for(event)
        if cue == "stop" or isinstance(cue, Cue):
            self.looping = cue.sound if isinstance(cue, Cue) and cue.loop else None
        if cue == "stop":
            if self._cue is not None and self._cue.loop:
                self._end_cue()
        elif isinstance(cue, Cue) and self.enabled:
            self._start(cue)

    # --- a call's output ------------------------------------------------------------------------------

    def _follow_calls(self, event: events.Event) -> None:
        match event:
            case events.Call(id=call_id, state=state) if state is not CallState.ENDED:
                self._calls.add(call_id)
                if self.keeps_speaker:
                    self._hold_speaker()
            case events.Call(id=call_id) | events.Ended(id=call_id):
                self._calls.discard(call_id)
                self._let_speaker_go()

    def _hold_speaker(self) -> DeviceSink | None:
        """The speaker, opened now unless it is open already (None: it cannot be opened; said once)."""
        if self._speaker is None:
            from zcall.media.audio import AudioSpecError

            try:
                if self._open_speaker is None:
                    from zcall.media.audiospec import open_speaker

                    self._open_speaker = open_speaker
                self._speaker = self._open_speaker(self._spec)
            except (AudioSpecError, OSError) as exc:
                log.warning("the speaker %r cannot be opened: %s", self._spec, exc)
                return None
        return self._speaker

    def _let_speaker_go(self) -> None:
        """Our use of the speaker ends once no call and no cue needs it (a call's own use ends with it)."""
        if self._speaker is not None and not self._calls and self._own is None:
            speaker, self._speaker = self._speaker, None
            with contextlib.suppress(Exception):
                speaker.close()

    async def lend(self) -> AudioSink | None:
        """A call opens its audio: the ring stops, and the call gets a use of the speaker the phone holds open
        (closed with the call's media), so a stream that already plays goes on playing; None when the phone
        holds none (a file, null, or a device that would not open: the call opens its output itself)."""
        if self._cue is not None and self._cue.loop and self._cue.sound == "ring":
            self._end_cue()
            self.looping = None
        speaker = self._hold_speaker() if self.keeps_speaker else None
        self._close_own()
        await asyncio.sleep(0)
        return speaker.share() if speaker is not None else None

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
            self._let_speaker_go()

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
            from zcall.media.output import GainSink

            speaker = self._hold_speaker()
            if speaker is None:
                self._end_cue()
                return
            self._own = GainSink(speaker.share(), self._volume())
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
        self._calls.clear()
        self._let_speaker_go()
