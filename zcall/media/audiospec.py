"""The --audio-in / --audio-out spec strings: default | DEVICE (name or index) | file:PATH.wav | tone:HZ |
silence (input) | null (output). Checked at start (what a call would refuse, found before the first call) and
opened for a call."""

from __future__ import annotations

import os
from pathlib import Path

from zcall.media import devices
from zcall.media.audio import (
    MAX_TONE_HZ,
    AudioSink,
    AudioSource,
    AudioSpecError,
    NullSink,
    SilenceSource,
    ToneSource,
    WavSink,
    WavSource,
    wav_reader,
)


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
    return devices.DeviceSource(_device_arg(spec))


def is_device(spec: str) -> bool:
    """A sound device, not a file, a tone, silence or nothing."""
    return not spec.startswith(("file:", "tone:")) and spec not in ("silence", "null")


def open_sink(spec: str) -> AudioSink:
    """default | DEVICE (name or index) | file:PATH.wav | null"""
    if spec.startswith("file:"):
        return WavSink(spec[5:])
    if spec == "null":
        return NullSink()
    return open_speaker(spec)


def open_speaker(spec: str) -> devices.DeviceSink:
    """A sound device (name, index or default) to play on."""
    return devices.DeviceSink(_device_arg(spec))


# --- checks at start ---


def check_source(spec: str) -> None:
    """Raise AudioSpecError if open_source(spec) cannot work (a WAV's header is read, not its audio)."""
    if spec.startswith("file:"):
        with wav_reader(spec[5:]):
            pass
    elif spec.startswith("tone:"):
        _tone_hz(spec)
    elif spec != "silence":
        devices.check_device(_device_arg(spec), want_input=True)


def check_sink(spec: str) -> None:
    """Raise AudioSpecError if open_sink(spec) cannot work (a file's folder must take a new file)."""
    if spec.startswith("file:"):
        path = Path(spec[5:])
        if path.is_dir() or not os.access(path.parent, os.W_OK | os.X_OK):
            raise AudioSpecError(f"{path}: cannot write here")
    elif spec != "null":
        devices.check_device(_device_arg(spec), want_input=False)
