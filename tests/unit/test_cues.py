"""The phone's sounds: which event plays what (the policy), and the player through a call's output (real
WAV sinks; the device path is tests/e2e/test_sounds_e2e.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from tests.support.audio_check import dominant_frequency, read_wav
from tests.support.waiting import until
from zcall import events
from zcall.cues import BUSY_REPEATS, Cue, SoundPlayer, cue_for, plays_on
from zcall.events import AlertKind, CallState, EndCause
from zcall.media.audio import WavSink
from zcall.media.codec import FRAME_BYTES
from zcall.media.output import CueMixer, GainSink, mix


def _call(state: CallState, direction: events.Direction = "out") -> events.Call:
    return events.Call(id="c1", state=state, direction=direction, peer="bob")


@pytest.mark.parametrize(("event", "cue"), [
    (_call(CallState.INCOMING, "in"), Cue("ring", loop=True)),
    (_call(CallState.RINGING, "out"), Cue("ringback", loop=True)),
    (_call(CallState.DIALING), "stop"),
    (_call(CallState.ANSWERED, "in"), "stop"),
    (_call(CallState.SECURE), "stop"),
    (events.Secure(id="c1", method="zrtp", srtp_profile="AES_CM_128_HMAC_SHA1_80"), Cue("secure")),
    (events.Alert(id="c1", alert=AlertKind.CACHE_MISMATCH, message="x"), Cue("alarm")),
    (events.Ended(id="c1", reason="busy", duration_s=0, cause=EndCause.BUSY), Cue("busy", repeats=3)),
    (events.Ended(id="c1", reason="bye", duration_s=3, cause=EndCause.REMOTE_HANGUP), "stop"),
    (events.Ready(name="a", zid="00", sip_uri="sip:a@x"), None),
])
def test_each_event_has_its_sound(event: events.Event, cue: object) -> None:
    assert cue_for(event) == cue


def test_sounds_play_on_devices_only() -> None:
    assert plays_on("default") and plays_on("zcall_out") and plays_on("3")
    assert not plays_on("null") and not plays_on("file:/tmp/x.wav")
    assert not SoundPlayer("file:/tmp/x.wav", lambda: 100).enabled
    assert not SoundPlayer("default", lambda: 100, enabled=False).enabled


def test_mix_adds_and_clips() -> None:
    a = np.full(FRAME_BYTES // 2, 30000, np.int16).tobytes()
    b = np.full(FRAME_BYTES // 2, 10000, np.int16).tobytes()
    assert set(np.frombuffer(mix(a, b), np.int16)) == {32767}
    assert mix(a, b"") == a


def _hz(samples: np.ndarray) -> float:
    return dominant_frequency(samples, 48000)


async def test_ringback_then_chime_through_the_calls_output_at_its_volume(tmp_path: Path) -> None:
    """Before the playout starts the ringback is written alone; once the far end plays, the chime is mixed
    into what it says, at the volume of the call's output."""
    out = tmp_path / "out.wav"
    mixer = CueMixer(GainSink(WavSink(out), 50))
    player = SoundPlayer("default", lambda: 50)
    player.attach(mixer)
    player.on_event(_call(CallState.RINGING))
    assert player.current == "ringback" and player.looping == "ringback"
    await until(lambda: player.frames_played >= 20, what="ringback written alone")
    player.on_event(_call(CallState.ANSWERED))
    assert player.current is None and player.looping is None
    written_alone = player.frames_played
    # The far end now plays: a steady 200 Hz at the tick's pace, and the chime comes with the secure event.
    far = (np.sin(2 * np.pi * 200 * np.arange(FRAME_BYTES // 2) / 48000) * 3000).astype(np.int16).tobytes()
    player.on_event(events.Secure(id="c1", method="zrtp", srtp_profile="AES_CM_128_HMAC_SHA1_80"))
    for _ in range(40):
        mixer.write_frame(far)
        await asyncio.sleep(0.02)
    await player.close()
    mixer.close()
    samples, rate = read_wav(out)
    assert rate == 48000
    ringback = samples[: written_alone * 960]
    assert abs(_hz(ringback) - 425) < 3
    assert np.abs(ringback).max() == pytest.approx(0.3 * 32767 * 0.5, rel=0.05)  # the volume applies
    chime = samples[written_alone * 960 : written_alone * 960 + 9 * 960]  # the first note, over the far end
    # Mixed into the playout, not written beside it (42 frames of chime), however this loop (the stand-in
    # playout) and the player's clock drift apart on a loaded machine.
    assert len(samples) == (written_alone + 40) * 960
    assert abs(_hz(chime) - 659) < 5 and abs(_hz(samples[-10 * 960 :]) - 200) < 5


async def test_a_muted_phone_plays_nothing_but_knows_it_rings(tmp_path: Path) -> None:
    out = tmp_path / "out.wav"
    mixer = CueMixer(WavSink(out))
    player = SoundPlayer("default", lambda: 100, enabled=False)
    player.attach(mixer)
    player.on_event(_call(CallState.INCOMING, "in"))
    await asyncio.sleep(0.1)
    assert player.looping == "ring" and player.current is None and player.frames_played == 0
    player.on_event(events.Ended(id="c1", reason="cancelled", duration_s=0, cause=EndCause.CANCELLED))
    assert player.looping is None
    await player.close()


async def test_busy_plays_three_cadences_then_stops(tmp_path: Path) -> None:
    out = tmp_path / "out.wav"
    mixer = CueMixer(WavSink(out))
    player = SoundPlayer("default", lambda: 100)
    player.attach(mixer)
    player.on_event(events.Ended(id="c1", reason="busy", duration_s=0, cause=EndCause.BUSY))
    while player.current is not None:
        await asyncio.sleep(0.1)
    await player.close()
    assert player.frames_played == BUSY_REPEATS * 50  # 1 s of cadence, three times


class _StartsLate:
    """A WAV sink that refuses its first frames, as a device's ring does before its stream starts."""

    def __init__(self, path: Path, refuse: int) -> None:
        self._sink, self._refuse, self.dropped = WavSink(path), refuse, 0

    def write_frame(self, pcm: bytes) -> None:
        if self._refuse:
            self._refuse -= 1
            self.dropped += 1
            return
        self._sink.write_frame(pcm)

    def close(self) -> None:
        self._sink.close()


async def test_a_device_still_starting_does_not_cut_the_chime(tmp_path: Path) -> None:
    out = tmp_path / "out.wav"
    mixer = CueMixer(GainSink(_StartsLate(out, refuse=10), 100))
    player = SoundPlayer("default", lambda: 100)
    player.attach(mixer)
    player.on_event(events.Secure(id="c1", method="zrtp", srtp_profile="AES_CM_128_HMAC_SHA1_80"))
    while player.current is not None:
        await asyncio.sleep(0.05)
    await player.close()
    mixer.close()
    samples, _rate = read_wav(out)
    assert len(samples) >= 48 * 840  # the whole chime (0.84 s), late
    assert abs(_hz(samples[: 48 * 150]) - 659) < 5  # its first note, not lost


async def test_a_chime_mixed_into_a_playout_waits_for_the_device_too(tmp_path: Path) -> None:
    out = tmp_path / "out.wav"
    mixer = CueMixer(GainSink(_StartsLate(out, refuse=10), 100))
    player = SoundPlayer("default", lambda: 100)
    player.attach(mixer)
    quiet = bytes(FRAME_BYTES)
    player.on_event(events.Secure(id="c1", method="zrtp", srtp_profile="AES_CM_128_HMAC_SHA1_80"))
    for _ in range(80):  # the playout writes silence at its own pace; the first 10 frames are refused
        mixer.write_frame(quiet)
        await asyncio.sleep(0.02)
    await player.close()
    mixer.close()
    samples, _rate = read_wav(out)
    assert len(samples) == 70 * 960  # the playout's frames, the chime inside them
    assert abs(_hz(samples[: 48 * 150]) - 659) < 5  # the chime's first note, after the device started


async def test_a_chime_never_goes_beside_a_playout_that_skipped_ticks(tmp_path: Path) -> None:
    """A playout resyncs after a stall (it skips the ticks it missed) while the player's clock catches up: the
    chime waits for the playout's next frames instead of being written beside them (which would overfill the
    device's ring). The stand-in playout here skips 10 ticks in the middle of the chime."""
    out = tmp_path / "out.wav"
    mixer = CueMixer(WavSink(out))
    player = SoundPlayer("default", lambda: 100)
    player.attach(mixer)
    quiet = bytes(FRAME_BYTES)
    mixer.write_frame(quiet)
    player.on_event(events.Secure(id="c1", method="zrtp", srtp_profile="AES_CM_128_HMAC_SHA1_80"))
    written = 1
    for tick in range(70):
        if not 10 <= tick < 20:
            mixer.write_frame(quiet)
            written += 1
        await asyncio.sleep(0.02)
    await player.close()
    mixer.close()
    samples, _rate = read_wav(out)
    assert len(samples) == written * 960  # the playout's frames only, the chime inside them
    assert abs(_hz(samples[: 48 * 150]) - 659) < 5


class _Speaker:
    """Stands in for a DeviceSink (no sound card here): counts its users as its share() and close() do."""

    def __init__(self, spec: str) -> None:
        self.spec, self.users, self.frames, self.dropped = spec, 1, 0, 0

    def share(self) -> _Speaker:
        self.users += 1
        return self

    def write_frame(self, pcm: bytes) -> None:
        self.frames += 1

    def close(self) -> None:
        self.users -= 1


@pytest.mark.parametrize("enabled", [True, False])
async def test_the_speaker_that_rang_is_lent_to_the_call_and_closed_after_it(enabled: bool) -> None:
    """One stream from the ring into the call (a new one may take seconds to start pulling): the speaker
    opens at the call's first event, muted or not, and closes when neither the phone nor the call uses it."""
    opened: list[_Speaker] = []

    def open_speaker(spec: str) -> _Speaker:
        opened.append(_Speaker(spec))
        return opened[-1]

    player = SoundPlayer("zcall_speaker", lambda: 100, enabled=enabled, open_speaker=open_speaker)
    player.on_event(_call(CallState.INCOMING, "in"))
    assert len(opened) == 1 and opened[0].spec == "zcall_speaker"
    speaker = opened[0]
    if enabled:
        await until(lambda: speaker.frames >= 5, what="the ring on the speaker")
    lent = await player.lend()
    assert lent is speaker and speaker.users == 2  # the phone's use and the call's; the ring's has ended
    assert player.current is None
    player.on_event(_call(CallState.SECURE, "in"))
    player.on_event(events.Ended(id="c1", reason="bye", duration_s=3, cause=EndCause.REMOTE_HANGUP))
    assert speaker.users == 1  # the call's media still plays on it
    lent.close()
    assert speaker.users == 0 and len(opened) == 1
    await player.close()


async def test_a_file_output_is_not_kept_open_by_the_phone() -> None:
    player = SoundPlayer("file:/tmp/x.wav", lambda: 100, open_speaker=_Speaker)
    player.on_event(_call(CallState.INCOMING, "in"))
    assert await player.lend() is None  # the call opens its recording itself
    await player.close()
