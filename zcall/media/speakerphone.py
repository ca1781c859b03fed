"""A speakerphone's capture processing in place: the call's microphone through an EchoProcessor
(zcall/media/echo.py) and its speaker telling the processor what it plays, for devices that need it."""

from __future__ import annotations

from zcall.config import ECHO_MODES
from zcall.media.audio import AudioSink, AudioSource
from zcall.media.echo import EchoProcessor
from zcall.media.speexdsp import available

# Device names that say the speaker is at the ear (no acoustic echo path worth cancelling).
_HEADSET_WORDS = ("headset", "headphone", "earphone", "earpiece", "handset", "bluetooth", "hands-free")


def wanted(mode: str, audio_in: str, audio_out: str) -> bool:
    """auto: on when both ends are sound devices and neither looks like a headset; files, tones and null
    sinks have no echo path."""
    if mode not in ECHO_MODES:
        raise ValueError(f"echo_cancel must be one of {ECHO_MODES}")
    if mode != "auto":
        return mode == "on"
    not_devices = ("file:", "tone:", "silence", "null")
    if audio_in.startswith(not_devices) or audio_out.startswith(not_devices):
        return False
    names = f"{audio_in} {audio_out}".lower()
    return not any(word in names for word in _HEADSET_WORDS)


class ProcessedSource:
    """The microphone through an EchoProcessor; keeps the device's pacing and wake-up hook."""

    def __init__(self, source: AudioSource, processor: EchoProcessor) -> None:
        self._source = source
        self.processor = processor
        self.paced = source.paced
        set_listener = getattr(source, "set_listener", None)
        if set_listener is not None:
            self.set_listener = set_listener

    def read_frame(self) -> bytes | None:
        frame = self._source.read_frame()
        if frame is None:
            return None
        self.processor.captured_lost(getattr(self._source, "lost_before_last", 0))
        return self.processor.process(frame)

    @property
    def dropped(self) -> int | None:
        return getattr(self._source, "dropped", None)

    def close(self) -> None:
        self._source.close()
        self.processor.close()


class ReferenceSink:
    """The speaker, telling the EchoProcessor what it plays (the echo reference)."""

    def __init__(self, sink: AudioSink, processor: EchoProcessor) -> None:
        self._sink = sink
        self._processor = processor
        # The speaker may have played before this call (the ring, on the same stream): its silence and
        # gaps until now are no part of the call's reference.
        self._silence = getattr(sink, "silence_samples", 0)
        gaps = getattr(sink, "gaps", None)
        if gaps:
            gaps.clear()

    def write_frame(self, pcm: bytes) -> None:
        # The reference is what the speaker really plays, sample for sample: a frame its ring dropped never
        # sounds, and the silence it played for want of a frame (an underrun) or in an xrun did.
        self._report_silence()
        gaps = getattr(self._sink, "gaps", None)
        while gaps:
            at, samples = gaps.popleft()
            # Where the gap is in what was written so far: what PortAudio has had (its underrun silence
            # included, reported just above) and what it has yet to get.
            end = self._sink.supplied + self._sink.queued_samples  # type: ignore[attr-defined]
            self._processor.played_gap(samples, end - at)
        dropped = self.dropped
        self._sink.write_frame(pcm)
        self._report_silence()
        if self.dropped == dropped:
            self._processor.played(pcm)

    def _report_silence(self) -> None:
        silence = getattr(self._sink, "silence_samples", 0)
        self._processor.played_silence(silence - self._silence)
        self._silence = silence

    @property
    def dropped(self) -> int | None:
        return getattr(self._sink, "dropped", None)

    def close(self) -> None:
        self._sink.close()


def wrap(source: AudioSource, sink: AudioSink, echo_cancel: str, audio_in: str, audio_out: str,
         ) -> tuple[AudioSource, AudioSink]:
    """The call's devices with capture processing in between (echo cancellation per `echo_cancel`, noise
    suppression and AGC on any microphone); unchanged for files and tones, or without libspeexdsp."""
    if not source.paced or not available():
        return source, sink
    processor = EchoProcessor(cancel_echo=wanted(echo_cancel, audio_in, audio_out))
    return ProcessedSource(source, processor), ReferenceSink(sink, processor)
