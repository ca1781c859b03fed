"""A small ctypes binding of Debian's libspeexdsp (libspeexdsp1): the MDF echo canceller and the preprocessor
(noise suppression, residual echo suppression, AGC). Frames are s16le mono bytes of a fixed size.

Only the functions zcall uses are bound; each object owns its C state and frees it on close()/collection.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any

import numpy as np

from zcall.errors import ZcallError

# speex_echo.h / speex_preprocess.h request numbers
_ECHO_SET_SAMPLING_RATE = 24
_PP_SET_DENOISE = 0
_PP_SET_AGC = 2
_PP_SET_NOISE_SUPPRESS = 18
_PP_SET_ECHO_SUPPRESS = 20
_PP_SET_ECHO_SUPPRESS_ACTIVE = 22
_PP_SET_ECHO_STATE = 24
_PP_SET_AGC_TARGET = 46
_PP_SET_AGC_INCREMENT = 26
_PP_SET_AGC_MAX_GAIN = 30
_PP_GET_AGC_GAIN = 35
# speex's AGC level is a loudness of its own, not an RMS. At its maximum, 32768, espeak speech fed at -34,
# -28, -22 and -16 dBFS comes out at -22 to -19.5 dBFS (at -40 dBFS the 12 dB of maximum gain give -28). The
# "-18 dBFS" (4125) zcall set at first put every talker at -37.5 dBFS, and Opus at 32 kb/s codes speech that
# quiet worse: double talk on PulseAudio devices (four recorded calls replayed, through Opus) scored PESQ-WB
# 2.47-2.84 with it, 2.73-3.23 with 32768 (AGC off: 2.76-3.29).
AGC_LEVEL = 32768
AGC_INCREMENT_DB = 12  # per second, speex's default


class SpeexUnavailable(ZcallError, RuntimeError):
    """libspeexdsp is not installed (Debian: libspeexdsp1)."""


@functools.cache
def _lib() -> Any:
    name = ctypes.util.find_library("speexdsp") or "libspeexdsp.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise SpeexUnavailable(f"libspeexdsp not found ({exc}); install libspeexdsp1") from exc
    ptr, i16p, i32, voidp = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p
    for name_, args, res in (
        ("speex_echo_state_init", (i32, i32), ptr),
        ("speex_echo_state_destroy", (ptr,), None),
        ("speex_echo_cancellation", (ptr, i16p, i16p, voidp), None),
        ("speex_echo_state_reset", (ptr,), None),
        ("speex_echo_ctl", (ptr, i32, voidp), i32),
        ("speex_preprocess_state_init", (i32, i32), ptr),
        ("speex_preprocess_state_destroy", (ptr,), None),
        ("speex_preprocess_run", (ptr, voidp), i32),
        ("speex_preprocess_ctl", (ptr, i32, voidp), i32),
    ):
        fn = getattr(lib, name_)
        fn.argtypes, fn.restype = args, res
    return lib


def available() -> bool:
    try:
        _lib()
    except SpeexUnavailable:
        return False
    return True


class EchoCanceller:
    """speex_echo_cancellation: removes from each microphone frame the echo of the reference (played) frame
    that lies `filter_samples` or less before it; the reference must already be aligned to the capture."""

    def __init__(self, frame_samples: int, filter_samples: int, rate: int) -> None:
        lib = _lib()
        self.frame_bytes = 2 * frame_samples
        self._state = lib.speex_echo_state_init(frame_samples, filter_samples)
        if not self._state:
            raise SpeexUnavailable("speex_echo_state_init failed")
        value = ctypes.c_int(rate)
        lib.speex_echo_ctl(self._state, _ECHO_SET_SAMPLING_RATE, ctypes.byref(value))
        self._out = ctypes.create_string_buffer(self.frame_bytes)

    @property
    def state(self) -> int:
        return int(self._state or 0)

    def cancel(self, mic: bytes, reference: bytes) -> bytes:
        if len(mic) != self.frame_bytes or len(reference) != self.frame_bytes:
            raise ValueError(f"frames must be {self.frame_bytes} bytes")
        _lib().speex_echo_cancellation(self._state, mic, reference, self._out)
        return self._out.raw

    def reset(self) -> None:
        _lib().speex_echo_state_reset(self._state)

    def close(self) -> None:
        state, self._state = getattr(self, "_state", None), None
        if state:
            _lib().speex_echo_state_destroy(state)

    __del__ = close


class FrameCanceller:
    """speex's canceller on whole frames, with a twin on the preprocessor's shorter blocks.

    On 10 ms blocks at 48 kHz speex's filter learnt a near-end talker while both ends talked and subtracted
    far-end speech from it: near speech, with the far end playing and no echo at all, came out at PESQ-WB
    2.35-2.73 against 4.0 unprocessed; on 20 ms frames, 3.4-3.6. The preprocessor stays on shorter blocks (its
    overlap-add delays by one block), and its residual echo suppression reads the residual of a canceller of
    its own block size: the twin is fed the same signals for that alone, its output unused."""

    def __init__(self, frame_samples: int, block_samples: int, filter_samples: int, rate: int,
                 twin_gain: int = 1) -> None:
        self._main = EchoCanceller(frame_samples, filter_samples, rate)
        # Half the filter: the residual estimate was as good (replayed double talk 3.58-3.68 against
        # 3.60-3.68, simulated-room ERLE 40 dB against 37) for 0.03 ms less a frame. The Preprocessor links
        # to this one.
        self.twin = EchoCanceller(block_samples, filter_samples // 2, rate)
        self._block_bytes = 2 * block_samples
        # The twin's signals louder by this factor (clipped): its residual estimate is then louder by its
        # square against what the preprocessor hears, and the residual echo is suppressed harder.
        self._twin_gain = twin_gain

    def cancel(self, mic: bytes, reference: bytes) -> bytes:
        out = self._main.cancel(mic, reference)
        if self._twin_gain != 1:
            mic, reference = (_louder(x, self._twin_gain) for x in (mic, reference))
        step = self._block_bytes
        for i in range(0, len(mic), step):
            self.twin.cancel(mic[i : i + step], reference[i : i + step])
        return out

    def reset(self) -> None:
        self._main.reset()
        self.twin.reset()

    def close(self) -> None:
        self._main.close()
        self.twin.close()


def _louder(pcm: bytes, gain: int) -> bytes:
    # Clipped first, so that the product fits in 16 bits (full scale give or take gain - 1): no wider copy.
    # ufuncs in place: np.clip on integers costs twice as much.
    samples = np.minimum(np.frombuffer(pcm, "<i2"), 32767 // gain)
    np.maximum(samples, -(32768 // gain), out=samples)
    samples *= gain
    louder: bytes = samples.tobytes()
    return louder


class Preprocessor:
    """speex_preprocess_run in place: noise suppression, AGC and, linked to an EchoCanceller, suppression of
    the echo it leaves (non-linear, what the linear filter cannot model)."""

    def __init__(self, frame_samples: int, rate: int, *, denoise: bool = True, agc: bool = True,
                 echo: EchoCanceller | None = None, noise_suppress_db: int = -15, echo_suppress_db: int = -40,
                 echo_suppress_active_db: int = -10, agc_level: int = AGC_LEVEL) -> None:
        # noise_suppress_db: speex's own default. -25 dB took near-end speech down under double talk (PESQ-WB
        # median 3.18 -> 3.10 over the simulated rooms of zcall.media.echo) for little more noise removed.
        # echo_suppress_active_db: how far residual echo is pushed down while the near end talks. Double talk
        # on PulseAudio devices through Opus (four recorded calls replayed): -3 dB 2.88, -6 dB 2.99, -10 dB
        # 3.03, -15 dB 2.87, -20 dB 2.64 (median): less lets echo through, more eats the near talker.
        lib = _lib()
        self.frame_bytes = 2 * frame_samples
        self._state = lib.speex_preprocess_state_init(frame_samples, rate)
        if not self._state:
            raise SpeexUnavailable("speex_preprocess_state_init failed")
        self._set(_PP_SET_DENOISE, int(denoise))
        self._set(_PP_SET_NOISE_SUPPRESS, noise_suppress_db)
        self._set(_PP_SET_AGC, int(agc))
        if agc:
            self._set(_PP_SET_AGC_TARGET, agc_level)
            self._set(_PP_SET_AGC_MAX_GAIN, 12)  # dB: a quiet talker is lifted, room noise is not made loud
        self._echo = echo  # its state must outlive ours
        if echo is not None:
            lib.speex_preprocess_ctl(self._state, _PP_SET_ECHO_STATE, ctypes.c_void_p(echo.state))
            self._set(_PP_SET_ECHO_SUPPRESS, echo_suppress_db)
            self._set(_PP_SET_ECHO_SUPPRESS_ACTIVE, echo_suppress_active_db)

    def _set(self, request: int, value: int) -> None:
        number = ctypes.c_int(value)
        _lib().speex_preprocess_ctl(self._state, request, ctypes.byref(number))

    def hold_agc_gain(self, hold: bool) -> None:
        """While held, the AGC may lower its gain but not raise it (speex's default: up 12 dB a second)."""
        self._set(_PP_SET_AGC_INCREMENT, 0 if hold else AGC_INCREMENT_DB)

    @property
    def agc_gain_db(self) -> int:
        number = ctypes.c_int(0)
        _lib().speex_preprocess_ctl(self._state, _PP_GET_AGC_GAIN, ctypes.byref(number))
        return number.value

    def run(self, pcm: bytes) -> bytes:
        """pcm: one or more whole frames, run one after the other in one buffer."""
        if not pcm or len(pcm) % self.frame_bytes:
            raise ValueError(f"frames must be {self.frame_bytes} bytes")
        buf = ctypes.create_string_buffer(pcm, len(pcm))
        run = _lib().speex_preprocess_run
        for offset in range(0, len(pcm), self.frame_bytes):
            run(self._state, ctypes.byref(buf, offset))
        return buf.raw

    def close(self) -> None:
        state, self._state = getattr(self, "_state", None), None
        if state:
            _lib().speex_preprocess_state_destroy(state)

    __del__ = close
