"""`zcall audio list|test`: the sound devices, and a loudspeaker-to-microphone check.

`test` plays a sweep through the output while recording the input, then reports the recording's level,
the round-trip delay (where the sweep turns up in the recording: output buffers + air + input buffers) and
the echo return loss (how much quieter the sweep came back; a headset or a muted speaker gives none).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from zcall.media import audio, audiospec
from zcall.media.codec import FRAME_BYTES, FRAME_SAMPLES, SAMPLE_RATE
from zcall.media.devices import list_devices

SWEEP_S = 0.6
SWEEP_HZ = (300.0, 3400.0)
SWEEP_LEVEL = 0.3  # of full scale
MAX_TEST_SECONDS = 10.0
_QUEUED_FRAMES = 2  # in a device's ring at most
_MIN_PEAK_RATIO = 8.0  # correlation peak over its median: the sweep is really there


@dataclass(frozen=True)
class AudioTest:
    input: str
    output: str
    level_dbfs: float  # the whole recording's RMS level
    delay_ms: float | None  # round trip, None when the sweep was not heard
    echo_return_loss_db: float | None  # played level minus heard level
    captured_frames: int
    played_frames: int


def devices() -> list[dict[str, Any]]:
    """PortAudio's devices (name, index, channels), the defaults marked."""
    return list_devices()


def format_devices(found: list[dict[str, Any]]) -> str:
    if not found:
        return "no sound devices"
    lines = []
    for dev in found:
        kinds = [k for k, n in (("in", dev["inputs"]), ("out", dev["outputs"])) if n]
        marks = [f"default {k}" for k in ("input", "output") if dev.get(f"default_{k}")]
        mark = f"  ({', '.join(marks)})" if marks else ""
        lines.append(f"{dev['index']:>3}  {dev['name']}  [{'/'.join(kinds)}]{mark}")
    return "\n".join(lines)


def sweep() -> npt.NDArray[np.int16]:
    """A logarithmic sweep with faded ends, padded to whole frames."""
    n = int(SWEEP_S * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    low, high = SWEEP_HZ
    k = math.log(high / low)
    phase = 2 * math.pi * low * SWEEP_S / k * (np.exp(t / SWEEP_S * k) - 1)
    fade = np.minimum(1.0, np.minimum(t, SWEEP_S - t) / 0.02)
    x = np.sin(phase) * fade * SWEEP_LEVEL * 32767
    x = np.concatenate([x, np.zeros((-n) % FRAME_SAMPLES)])
    return x.astype(np.int16)


def measure(played: npt.NDArray[np.int16], recorded: npt.NDArray[np.int16], span: int | None = None,
            ) -> tuple[float | None, float | None]:
    """(round-trip delay ms, echo return loss dB) of `played` found in `recorded`; (None, None) if absent.
    Both streams start at the same moment. The loss is judged on `span` samples from the first sound played
    (all of it by default): the first sweep, which a later glitch of the devices cannot misalign."""
    if not recorded.size or not recorded.any():
        return None, None
    p, r = played.astype(np.float64), recorded.astype(np.float64)
    n = 1 << (len(p) + len(r)).bit_length()
    corr = np.fft.irfft(np.fft.rfft(r, n) * np.conj(np.fft.rfft(p, n)), n)[: len(r)]
    scores = np.abs(corr)
    best = float(scores.max())
    if best < _MIN_PEAK_RATIO * (float(np.median(scores)) + 1e-9):
        return None, None
    # The sweep repeats: its first arrival, not whichever repeat correlates best.
    first = int(np.flatnonzero(scores >= 0.5 * best)[0])
    lag = first + int(np.argmax(scores[first : first + SAMPLE_RATE // 100]))  # that arrival's own peak
    start = int(np.flatnonzero(p)[0]) if p.any() else 0
    p = p[start : start + (span or len(p))]
    heard = r[lag + start : lag + start + len(p)]
    # The echo's gain is the regression of what was heard on what was played (noise does not count).
    gain = float(np.dot(heard, p[: len(heard)]) / (np.dot(p[: len(heard)], p[: len(heard)]) + 1e-9))
    erl = -20 * math.log10(abs(gain)) if gain else None
    return lag * 1000 / SAMPLE_RATE, erl


def run_test(audio_in: str, audio_out: str, seconds: float = 2.0, repeat_every_s: float = 1.0) -> AudioTest:
    """Play the sweep every `repeat_every_s` for `seconds` while recording; the recording is judged against
    the played stream. Raises AudioSpecError when a device cannot be opened."""
    seconds = min(max(seconds, 1.0), MAX_TEST_SECONDS)
    source = audiospec.open_source(audio_in)
    try:
        sink = audiospec.open_sink(audio_out)
    except audio.AudioSpecError:
        source.close()
        raise
    chirp = sweep()
    period = int(repeat_every_s * SAMPLE_RATE) // FRAME_SAMPLES * FRAME_SAMPLES
    total = int(seconds * SAMPLE_RATE) // FRAME_SAMPLES * FRAME_SAMPLES
    stream = np.zeros(total, np.int16)
    for start in range(0, total - len(chirp) + 1, period):
        stream[start : start + len(chirp)] = chirp
    # Both timelines as the devices really ran them, so that a late loop on a busy machine does not move the
    # sweep: the speaker's silence for want of frames (an underrun) is part of what it played, a frame its
    # full ring refused is not, and frames the microphone's full ring lost are silence where they were lost.
    played: list[bytes] = []
    frames: list[bytes] = []
    lost_before: list[int] = []  # frames the microphone lost just before each of them
    written = 0
    try:
        _warm_up(source, sink)
        silence_seen = getattr(sink, "silence_samples", 0)
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds + 0.5:
            # Keep the output a frame or two ahead of the clock; a device paces itself from its ring.
            while written < total and written < (elapsed / 0.02 + 2) * FRAME_SAMPLES and _has_room(sink):
                pcm = stream[written : written + FRAME_SAMPLES].tobytes()
                dropped = getattr(sink, "dropped", None)
                sink.write_frame(pcm)
                written += FRAME_SAMPLES
                silence = getattr(sink, "silence_samples", 0)
                played.append(bytes(2 * (silence - silence_seen)))
                silence_seen = silence
                if getattr(sink, "dropped", None) == dropped:
                    played.append(pcm)
            # A device gives what it captured; a file or tone, as much as was played (it never runs dry).
            while source.paced or len(frames) * FRAME_SAMPLES < written:
                if (frame := source.read_frame()) is None:
                    break
                # Losses before the first frame happened before the measurement started.
                lost_before.append(getattr(source, "lost_before_last", 0) if frames else 0)
                frames.append(frame)
            time.sleep(0.005)
    finally:
        source.close()
        sink.close()
    heard = np.frombuffer(b"".join(frames), "<i2")  # what the microphone gave, for its level
    level = 20 * math.log10(math.sqrt(float(np.mean(heard.astype(np.float64) ** 2))) / 32768) \
        if heard.size and heard.any() else -math.inf
    timeline = b"".join(bytes(lost * FRAME_BYTES) + f for lost, f in zip(lost_before, frames, strict=True))
    delay, erl = measure(np.frombuffer(b"".join(played), "<i2"), np.frombuffer(timeline, "<i2"), len(chirp))
    return AudioTest(input=audio_in, output=audio_out, level_dbfs=round(level, 1),
                     delay_ms=None if delay is None else round(delay, 1),
                     echo_return_loss_db=None if erl is None else round(erl, 1),
                     captured_frames=len(frames), played_frames=written // FRAME_SAMPLES)


def _has_room(sink: audio.AudioSink) -> bool:
    """A device's ring is kept as shallow as a call keeps it: a frame or two queued, not full. Written into
    full, it refused frames of the sweep all along (and its depth counted as the device's delay)."""
    ring = getattr(sink, "ring", None)
    return ring is None or len(ring) < _QUEUED_FRAMES


def _warm_up(source: audio.AudioSource, sink: audio.AudioSink, limit_s: float = 3.0) -> None:
    """Feed silence until the speaker plays and the microphone delivers (PulseAudio takes 1-2 s to start
    either), so that the measured streams both start at once. A file or tone source never runs dry:
    it is not drained."""
    deadline = time.monotonic() + limit_s
    heard = not source.paced
    while time.monotonic() < deadline:
        for _ in range(4):
            if _has_room(sink):
                sink.write_frame(audio.SILENCE)
        while source.paced and source.read_frame() is not None:
            heard = True
        if heard and getattr(sink, "started", True):  # a device refuses frames until it plays
            break
        time.sleep(0.01)
    while source.paced and source.read_frame() is not None:
        pass


def format_line(result: AudioTest) -> str:
    heard = "sweep not heard (headset, or speaker muted?)"
    if result.delay_ms is not None:
        heard = f"sweep heard after {result.delay_ms} ms, echo return loss {result.echo_return_loss_db} dB"
    return f"input level {result.level_dbfs} dBFS; {heard}"


def format_test(result: AudioTest) -> str:
    heard = "sweep not heard in the input (headset, or speaker muted?)"
    if result.delay_ms is not None:
        heard = f"sweep heard after {result.delay_ms} ms, echo return loss {result.echo_return_loss_db} dB"
    return (f"output {result.output} -> input {result.input}\n"
            f"input level {result.level_dbfs} dBFS over {result.captured_frames * 20} ms\n{heard}")


def command(action: str, audio_in: str, audio_out: str, as_json: bool, seconds: float) -> int:
    if action == "list":
        found = devices()
        print(json.dumps(found) if as_json else format_devices(found))
        return 0 if found else 1
    try:
        result = run_test(audio_in, audio_out, seconds)
    except audio.AudioSpecError as exc:
        print(json.dumps({"error": str(exc)}) if as_json else f"zcall: {exc}")
        return 1
    print(json.dumps(asdict(result)) if as_json else format_test(result))
    return 0
