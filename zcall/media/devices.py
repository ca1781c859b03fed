"""Sound devices through PortAudio (PyAudio): list them, check one, open one as a source or a sink.

A device's callback thread never waits: a full FrameRing drops (counted), and an empty one plays silence
(counted).
"""

from __future__ import annotations

import abc
import collections
import ctypes
import ctypes.util
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from zcall.media.audio import AudioSpecError, FrameRing
from zcall.media.codec import FRAME_BYTES, FRAME_SAMPLES, SAMPLE_RATE
from zcall.media.devclock import GapClock

# ctypes callbacks must stay referenced for as long as the libraries may call them.
_quiet_handlers: list[Any] = []
_quiet_lock = threading.Lock()


def _silence_native_logging() -> None:
    """alsa-lib and libjack print probing noise on stderr when PortAudio starts; route it nowhere."""
    with _quiet_lock:
        if _quiet_handlers:
            return
        alsa_handler_type = ctypes.CFUNCTYPE(
            None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p
        )
        text_handler_type = ctypes.CFUNCTYPE(None, ctypes.c_char_p)
        alsa_handler = alsa_handler_type(lambda *_: None)
        text_handler = text_handler_type(lambda _: None)
        _quiet_handlers.extend([alsa_handler, text_handler])
        name = ctypes.util.find_library("asound")
        if name:
            ctypes.CDLL(name).snd_lib_error_set_handler(alsa_handler)
        name = ctypes.util.find_library("jack")
        if name:
            jack = ctypes.CDLL(name)
            jack.jack_set_error_function(text_handler)
            jack.jack_set_info_function(text_handler)


def _pyaudio() -> Any:
    _silence_native_logging()
    os.environ.setdefault("JACK_NO_START_SERVER", "1")
    import pyaudio  # imported late: PortAudio probes every host API when it starts

    return pyaudio.PyAudio()


def list_devices() -> list[dict[str, Any]]:
    """Every PortAudio device: index, name, input and output channel counts, whether it is the default."""
    pa = _pyaudio()
    try:
        infos = [pa.get_device_info_by_index(i) for i in range(pa.get_device_count())]
        defaults: list[int | None] = []
        for default in (pa.get_default_input_device_info, pa.get_default_output_device_info):
            try:
                defaults.append(int(default()["index"]))
            except OSError:  # no such default on this machine
                defaults.append(None)
    finally:
        pa.terminate()
    return [{"index": int(i["index"]), "name": str(i["name"]), "inputs": int(i["maxInputChannels"]),
             "outputs": int(i["maxOutputChannels"]), "default_input": int(i["index"]) == defaults[0],
             "default_output": int(i["index"]) == defaults[1]} for i in infos]


def _find_device(pa: Any, device: str | int | None, want_input: bool) -> int | None:
    """None means PortAudio's default; a name matches exactly first, then as a substring."""
    key = "maxInputChannels" if want_input else "maxOutputChannels"
    infos = [pa.get_device_info_by_index(i) for i in range(pa.get_device_count())]
    usable = [i for i in infos if int(i[key]) > 0]
    if device is None or device == "default":
        return None
    if isinstance(device, int) or device.isdigit():
        index = int(device)
        if any(int(i["index"]) == index for i in usable):
            return index
        raise AudioSpecError(f"no audio device with index {index} and {'input' if want_input else 'output'}")
    exact = [i for i in usable if i["name"] == device]
    for match in (exact, [i for i in usable if device in str(i["name"])]):
        if match:
            return int(match[0]["index"])
    names = ", ".join(str(i["name"]) for i in usable) or "none"
    raise AudioSpecError(f"no audio device named {device!r} (have: {names})")


_CallbackResult = tuple[bytes | None, int]

# A stream's first callbacks come back to back (PortAudio prefills the device's buffer); the device has
# started playing at the first callback that comes at least this long after the one before: it is pulling
# at its own pace. Before that it may pull nothing for a long time (a new PulseAudio stream: 1.6-1.7 s).
_PACED_CALLBACK_S = 0.010
# A device whose callbacks all come back to back (one not paced by a clock, e.g. a file) has started once
# it has taken more than any prefill.
_PREFILL_CALLBACKS = 16


class _Device(abc.ABC):
    """A PyAudio stream in callback mode; the subclass's callback moves frames through the ring."""

    def __init__(self, device: str | int | None, want_input: bool, ring_frames: int) -> None:
        import pyaudio

        self._pa = _pyaudio()
        self.ring = FrameRing(ring_frames)
        self._partial = b""
        self.callbacks = 0
        self.xruns = 0  # callbacks PortAudio flagged: the device itself over- or underran (length unknown)
        try:
            index = _find_device(self._pa, device, want_input)
            kwargs: dict[str, Any] = {("input_device_index" if want_input else "output_device_index"): index}
            self._stream = self._pa.open(
                format=pyaudio.paInt16, channels=1, rate=SAMPLE_RATE, input=want_input, output=not want_input,
                frames_per_buffer=FRAME_SAMPLES, stream_callback=self._callback, start=True, **kwargs,
            )
        except OSError as exc:  # PortAudio refused the device or the format
            self._pa.terminate()
            raise AudioSpecError(f"cannot open audio device {device!r}: {exc}") from exc
        except Exception:
            self._pa.terminate()
            raise

    @abc.abstractmethod
    def _callback(self, data: bytes | None, frame_count: int, _time: Any, _status: int) -> _CallbackResult:
        """Runs on PortAudio's thread: must never block."""

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.stop_stream()
            stream.close()
            self._pa.terminate()


class DeviceSource(_Device):
    """Microphone through PyAudio; the callback cuts whatever it is given into 20 ms frames."""

    paced = True

    def __init__(self, device: str | int | None = None, ring_frames: int = 10) -> None:
        self._listener: Callable[[], None] | None = None
        super().__init__(device, True, ring_frames)

    def set_listener(self, listener: Callable[[], None] | None) -> None:
        """`listener` runs on the audio thread after new frames; it must not block (call_soon_threadsafe)."""
        self._listener = listener

    def _callback(self, data: bytes | None, frame_count: int, _time: Any, status: int) -> _CallbackResult:
        self.callbacks += 1
        self.xruns += bool(status)
        buf = self._partial + (data or b"")
        end = len(buf) - len(buf) % FRAME_BYTES
        for pos in range(0, end, FRAME_BYTES):
            self.ring.put(buf[pos : pos + FRAME_BYTES])
        self._partial = buf[end:]
        listener = self._listener
        if end and listener is not None:
            listener()
        return (None, 0)  # 0 == paContinue

    def read_frame(self) -> bytes | None:
        return self.ring.get()

    @property
    def lost_before_last(self) -> int:
        """Frames the microphone captured but the ring had no room for, just before the last one read."""
        return self.ring.lost_before_last

    @property
    def dropped(self) -> int:
        return self.ring.dropped


class DeviceSink(_Device):
    """Speaker through PyAudio; an empty ring plays silence (an underrun, counted).

    Until the device pulls at its own pace it refuses frames (counted in `dropped`: they are not played, and
    a cue offers them again): frames written into a stream that has not started would overflow the ring and
    then keep it full, so that every late callback dropped one more.
    """

    # A shallow ring: the jitter buffer absorbs the network; this only absorbs our tick's scheduling jitter.
    def __init__(self, device: str | int | None = None, ring_frames: int = 4) -> None:
        self.started = False  # the device pulls at its own pace (set by the callback thread)
        self.refused_unstarted = 0  # frames written before it did
        self._last_callback: float | None = None
        self.underruns = 0
        self.silence_samples = 0  # played for want of frames: the echo canceller's reference holds it too
        # The device's own xruns (PortAudio flags them, not their length): (stream position, samples) of the
        # silence it played before that position, from the stream's timing. The echo reference holds it too.
        self.gaps: collections.deque[tuple[int, int]] = collections.deque()
        self.gap_clock = GapClock(SAMPLE_RATE)
        self.supplied = 0  # samples handed to PortAudio
        self._users = 1
        super().__init__(device, False, ring_frames)

    def share(self) -> DeviceSink:
        """This open stream for one more user, who closes it too: the stream ends with its last user. The
        phone keeps its speaker playing from the ring into the call (zcall/cues.py): a new stream may take
        seconds to start pulling (an idle PulseAudio null sink: 0.7-1.8 s), and what is written before is
        lost."""
        self._users += 1
        return self

    def close(self) -> None:
        self._users -= 1
        if self._users <= 0:
            super().close()

    @property
    def queued_samples(self) -> int:
        """Written but not yet handed to PortAudio."""
        return len(self.ring) * FRAME_SAMPLES + len(self._partial) // 2

    def _callback(self, data: bytes | None, frame_count: int, time_info: Any, status: int) -> _CallbackResult:
        self.callbacks += 1
        self.xruns += bool(status)
        if not self.started:
            now = time.monotonic()
            paced = self._last_callback is not None and now - self._last_callback >= _PACED_CALLBACK_S
            self.started = paced or self.callbacks > _PREFILL_CALLBACKS
            self._last_callback = now
        if gap := self.gap_clock.update(time_info.get("output_buffer_dac_time", 0.0), self.supplied):
            self.gaps.append((self.gap_clock.gap_at, gap))
        self.supplied += frame_count
        need = frame_count * 2
        buf = self._partial
        while len(buf) < need:
            frame = self.ring.get()
            if frame is None:
                self.underruns += 1
                self.silence_samples += (need - len(buf)) // 2
                buf += bytes(need - len(buf))
                break
            buf += frame
        self._partial = buf[need:]
        return (buf[:need], 0)

    def write_frame(self, pcm: bytes) -> None:
        if self.started:
            self.ring.put(pcm)
        else:
            self.refused_unstarted += 1

    @property
    def dropped(self) -> int:
        """Frames written but never played: the ring was full, or the device had not started."""
        return self.ring.dropped + self.refused_unstarted


def check_device(device: str | int | None, want_input: bool) -> None:
    """Raise AudioSpecError if this device (None: the default one) cannot be opened that way."""
    pa = _pyaudio()
    try:
        if _find_device(pa, device, want_input) is None:
            try:
                pa.get_default_input_device_info() if want_input else pa.get_default_output_device_info()
            except OSError:
                kind = "input" if want_input else "output"
                raise AudioSpecError(f"no default audio {kind} device on this machine") from None
    finally:
        pa.terminate()
