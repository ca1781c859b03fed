"""Audio sources and sinks: 20 ms frames of s16le mono 48 kHz PCM.

A device's callback thread and the event loop exchange frames through a bounded FrameRing; the callback never
waits: a full ring drops (counted) and an empty one plays silence (counted). WAV files are read whole and
resampled with soxr. Spec strings follow --audio-in / --audio-out in DESIGN.md.
"""

from __future__ import annotations

import abc
import collections
import contextlib
import ctypes
import ctypes.util
import math
import os
import struct
import threading
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from zcall.errors import ZcallError
from zcall.media.codec import FRAME_BYTES, FRAME_SAMPLES, SAMPLE_RATE

SILENCE = bytes(FRAME_BYTES)
MAX_WAV_SECONDS = 600  # a longer prompt file is a mistake, not a use case
MAX_TONE_HZ = SAMPLE_RATE // 2

if TYPE_CHECKING:  # numpy and soxr are imported where samples are made: checking a spec needs neither
    import numpy as np


class AudioSpecError(ZcallError, ValueError):
    """An --audio-in / --audio-out spec or a WAV file could not be used."""


class AudioSource(Protocol):
    # True when the source delivers frames in real time itself (a device); False when the caller must pace it.
    paced: bool

    def read_frame(self) -> bytes | None:
        """The next 20 ms frame, or None when none is ready (never blocks)."""

    def close(self) -> None: ...


class AudioSink(Protocol):
    def write_frame(self, pcm: bytes) -> None:
        """Queue one 20 ms frame for playback (never blocks)."""

    def close(self) -> None: ...


class FrameRing:
    """Bounded single-producer/single-consumer frame queue; deque append/popleft are atomic in CPython.
    Each frame carries how many frames were dropped just before it (`lost_before_last` after a get): a
    consumer keeping a timeline (the echo canceller) knows where the gap is, not only that there was one."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._frames: collections.deque[tuple[bytes, int]] = collections.deque()
        self.dropped = 0
        self._gap = 0  # dropped since the last frame put (producer side)
        self.lost_before_last = 0  # consumer side

    def put(self, frame: bytes) -> bool:
        if len(self._frames) >= self.capacity:
            self.dropped += 1
            self._gap += 1
            return False
        self._frames.append((frame, self._gap))
        self._gap = 0
        return True

    def get(self) -> bytes | None:
        try:
            frame, self.lost_before_last = self._frames.popleft()
        except IndexError:
            return None
        return frame

    def __len__(self) -> int:
        return len(self._frames)


# --- generated sources ---


class ToneSource:
    """A continuous sine (phase carried across frames so there are no clicks)."""

    paced = False

    def __init__(self, hz: float, amplitude: float = 0.3) -> None:
        if not 0 < hz < MAX_TONE_HZ:
            raise AudioSpecError(f"tone frequency must be within 0..{MAX_TONE_HZ} Hz")
        self._step = 2 * math.pi * hz / SAMPLE_RATE
        self._phase = 0.0
        self._amp = amplitude * 32767
        import numpy as np

        self._n = np.arange(FRAME_SAMPLES)
        # A whole number of cycles per second repeats every 50 frames: compute those once.
        self._cycle: list[bytes] | None = None
        if float(hz).is_integer():
            self._cycle = [self._compute() for _ in range(SAMPLE_RATE // FRAME_SAMPLES)]
        self._index = 0

    def _compute(self) -> bytes:
        import numpy as np

        samples = self._amp * np.sin(self._phase + self._step * self._n)
        self._phase = (self._phase + self._step * FRAME_SAMPLES) % (2 * math.pi)
        return bytes(samples.astype("<i2").tobytes())

    def read_frame(self) -> bytes:
        if self._cycle is None:
            return self._compute()
        frame = self._cycle[self._index]
        self._index = (self._index + 1) % len(self._cycle)
        return frame

    def close(self) -> None:
        pass


class SilenceSource:
    paced = False

    def read_frame(self) -> bytes:
        return SILENCE

    def close(self) -> None:
        pass


class NullSink:
    def __init__(self) -> None:
        self.frames = 0

    def write_frame(self, pcm: bytes) -> None:
        self.frames += 1

    def close(self) -> None:
        pass


# --- WAV files ---


@contextlib.contextmanager
def _wav_reader(path: str | Path) -> Iterator[tuple[wave.Wave_read, int, int, int, int]]:
    """An open WAV with its format checked: (reader, sample width, channels, rate, frame count)."""
    try:
        with wave.open(str(path), "rb") as wav:
            width, channels, rate, count = (wav.getsampwidth(), wav.getnchannels(), wav.getframerate(),
                                            wav.getnframes())
            if width not in (1, 2, 4) or not 1 <= channels <= 8 or not 4000 <= rate <= 192000:
                raise AudioSpecError(f"{path}: unsupported WAV ({width * 8} bit, {channels} ch, {rate} Hz)")
            if count > MAX_WAV_SECONDS * rate:
                raise AudioSpecError(f"{path}: longer than {MAX_WAV_SECONDS} s")
            yield wav, width, channels, rate, count
    except (wave.Error, EOFError, RuntimeError, struct.error) as exc:  # wave raises all of these on bad input
        raise AudioSpecError(f"{path}: not a PCM WAV file ({exc})") from exc
    except OSError as exc:
        raise AudioSpecError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def read_wav_48k_mono(path: str | Path) -> np.ndarray[Any, np.dtype[np.int16]]:
    """Whole file as int16 mono 48 kHz: channels averaged, resampled by soxr."""
    import numpy as np
    import soxr

    with _wav_reader(path) as (wav, width, channels, rate, count):
        raw = wav.readframes(count)
    usable = len(raw) // (width * channels) * width * channels
    if width == 1:  # 8-bit WAV is unsigned
        data = (np.frombuffer(raw[:usable], np.uint8).astype(np.float32) - 128.0) / 128.0
    else:
        kind = "<i2" if width == 2 else "<i4"
        data = np.frombuffer(raw[:usable], kind).astype(np.float32) / float(2 ** (8 * width - 1))
    mono = data.reshape(-1, channels).mean(axis=1)
    if rate != SAMPLE_RATE:
        mono = np.asarray(soxr.resample(mono, rate, SAMPLE_RATE, quality="HQ"), np.float32)
    scaled = np.clip(np.round(mono * 32767.0), -32768, 32767)
    out: np.ndarray[Any, np.dtype[np.int16]] = scaled.astype(np.int16)
    return out


class WavSource:
    """Plays a WAV file as 20 ms frames; loops, or after the end gives silence (loop=False)."""

    paced = False

    def __init__(self, path: str | Path, loop: bool = True) -> None:
        import numpy as np

        samples = read_wav_48k_mono(path)
        pad = (-len(samples)) % FRAME_SAMPLES
        self._pcm = np.concatenate([samples, np.zeros(pad, np.int16)]).tobytes()
        self._loop = loop
        self._pos = 0
        self.finished = not self._pcm

    def read_frame(self) -> bytes:
        if self._pos >= len(self._pcm):
            if not self._loop or not self._pcm:
                self.finished = True
                return SILENCE
            self._pos = 0
        frame = self._pcm[self._pos : self._pos + FRAME_BYTES]
        self._pos += FRAME_BYTES
        if self._pos >= len(self._pcm) and not self._loop:
            self.finished = True
        return frame

    def close(self) -> None:
        pass


class WavSink:
    """Records frames to a 16-bit mono 48 kHz WAV file."""

    def __init__(self, path: str | Path) -> None:
        # Held open across calls (closed by close()), so no context manager here. The file is opened first:
        # a failed wave.open leaves a half-built writer that complains when collected.
        try:
            self._file: BinaryIO | None = open(path, "wb")  # noqa: SIM115
        except OSError as exc:
            raise AudioSpecError(f"{path}: cannot write ({exc.strerror or exc})") from exc
        self._wav: wave.Wave_write | None = wave.open(self._file, "wb")  # noqa: SIM115
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(SAMPLE_RATE)
        self.frames = 0

    def write_frame(self, pcm: bytes) -> None:
        if self._wav is not None:
            self._wav.writeframesraw(pcm)
            self.frames += 1

    def close(self) -> None:
        if self._wav is not None:
            self._wav.close()  # patches the header's sizes; leaves our file object open
            self._wav = None
        if self._file is not None:
            self._file.close()
            self._file = None


# --- PyAudio devices ---

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
    """Speaker through PyAudio; an empty ring plays silence (an underrun, counted)."""

    # A shallow ring: the jitter buffer absorbs the network; this only absorbs our tick's scheduling jitter.
    def __init__(self, device: str | int | None = None, ring_frames: int = 4) -> None:
        self.underruns = 0
        self.silence_samples = 0  # played for want of frames: the echo canceller's reference holds it too
        super().__init__(device, False, ring_frames)

    def _callback(self, data: bytes | None, frame_count: int, _time: Any, status: int) -> _CallbackResult:
        self.callbacks += 1
        self.xruns += bool(status)
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
        self.ring.put(pcm)

    @property
    def dropped(self) -> int:
        return self.ring.dropped


# --- spec strings ---


def _device_arg(spec: str) -> str | int | None:
    if spec in ("", "default"):
        return None
    return int(spec) if spec.isdigit() else spec


def _tone_hz(spec: str) -> float:
    try:
        hz = float(spec[5:])
    except ValueError as exc:
        raise AudioSpecError(f"bad tone frequency in {spec!r}") from exc
    if not 0 < hz < MAX_TONE_HZ:
        raise AudioSpecError(f"tone frequency must be within 0..{MAX_TONE_HZ} Hz")
    return hz


def open_source(spec: str) -> AudioSource:
    """default | DEVICE (name or index) | file:PATH.wav | tone:HZ | silence"""
    if spec.startswith("file:"):
        return WavSource(spec[5:])
    if spec.startswith("tone:"):
        return ToneSource(_tone_hz(spec))
    if spec == "silence":
        return SilenceSource()
    return DeviceSource(_device_arg(spec))


def is_device(spec: str) -> bool:
    """A sound device, not a file, a tone, silence or nothing."""
    return not spec.startswith(("file:", "tone:")) and spec not in ("silence", "null")


def open_sink(spec: str) -> AudioSink:
    """default | DEVICE (name or index) | file:PATH.wav | null"""
    if spec.startswith("file:"):
        return WavSink(spec[5:])
    if spec == "null":
        return NullSink()
    return DeviceSink(_device_arg(spec))


# --- checks at start: what open_source/open_sink would refuse, found before the first call ---


def _check_device(device: str | int | None, want_input: bool) -> None:
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


def check_source(spec: str) -> None:
    """Raise AudioSpecError if open_source(spec) cannot work (a WAV's header is read, not its audio)."""
    if spec.startswith("file:"):
        with _wav_reader(spec[5:]):
            pass
    elif spec.startswith("tone:"):
        _tone_hz(spec)
    elif spec != "silence":
        _check_device(_device_arg(spec), want_input=True)


def check_sink(spec: str) -> None:
    """Raise AudioSpecError if open_sink(spec) cannot work (a file's folder must take a new file)."""
    if spec.startswith("file:"):
        path = Path(spec[5:])
        if path.is_dir() or not os.access(path.parent, os.W_OK | os.X_OK):
            raise AudioSpecError(f"{path}: cannot write here")
    elif spec != "null":
        _check_device(_device_arg(spec), want_input=False)
