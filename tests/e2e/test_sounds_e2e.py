"""The phone's sounds on real audio devices: two `zcall --headless` units, each playing on a PulseAudio null
sink of its own (through PyAudio and ALSA's pulse plugin, as on a desk unit), with what each speaker played
recorded from the sink's monitor. Alice calls; bob's speaker rings and alice's plays ringback until bob
answers; both then chime as the call goes secure. Checked by frequency, in order, never by "a file exists".

The test waits for what it needs to hear (the ring looping, each chime), read from the recordings as they
grow, never for a fixed time: a device may take a while to start on a loaded machine, and a cue the device
has not taken yet is held, not lost (zcall/cues.py).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.support import audio_check
from tests.support.alsa import PULSE_CONFIG, pulse_server
from tests.support.netns import Lan
from tests.support.prereq import require_binary
from tests.support.zcall_peer import ZcallPeer

pytestmark = [pytest.mark.netns, pytest.mark.slow, pytest.mark.timeout(120)]

RATE = 48000
WINDOW_S = 0.25
# Ring heard before bob answers: more than one cycle can fill (its two bursts span 1 s: 5 windows at most).
RING_TONE_S = 1.5
CHIME_S = 0.84  # assets/secure.wav
HEARD_WITHIN_S = 20.0
Tones = list[float | None]
RING, RINGBACK, CHIME = (435.0, 485.0), (420.0, 430.0), (640.0, 1000.0)


class Speaker:
    """What a unit's speaker sink plays, recorded raw from its monitor as it plays. The recorder asks for
    20 ms latency: it is never more than a fragment behind, and it keeps the null sink rendering in short
    blocks as a sound card would (left alone a null sink renders 2 s at a time, and a stream that opens
    waits up to 2 s for its first callback)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def tones(self) -> Tones:
        """The dominant frequency of each 0.25 s window so far, in order; None for a quiet one."""
        data = self.path.read_bytes()
        samples = np.frombuffer(data[: len(data) // 2 * 2], np.int16)
        size = int(WINDOW_S * RATE)
        found: Tones = []
        for start in range(0, len(samples) - size, size):
            window = samples[start : start + size]
            loud = audio_check.rms_dbfs(window) > -40
            found.append(audio_check.dominant_frequency(window, RATE) if loud else None)
        return found

    def wait_until(self, heard: Callable[[Tones], bool], what: str) -> None:
        deadline = time.monotonic() + HEARD_WITHIN_S
        while not heard(self.tones()):
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.path.stem}: {what} not heard within {HEARD_WITHIN_S} s; "
                                     f"dominant Hz: {_loud(self.tones())}")
            time.sleep(0.1)


@contextlib.contextmanager
def _speaker(home: Path, recording: Path, latency_ms: int = 20) -> Iterator[tuple[Speaker, dict[str, str]]]:
    """A private PulseAudio server whose speaker sink is recorded (parec) to `recording` from the start.
    latency_ms=2000 leaves the sink rendering 2 s at a time when no other stream plays: a new stream then
    waits 0.7-1.8 s for its first pull (a speaker slow to start)."""
    with pulse_server(home) as server, recording.open("wb") as out:
        rec = subprocess.Popen(["parec", f"--server={server}", "-d", "zspeaker.monitor",
                                f"--latency-msec={latency_ms}",
                                "--raw", f"--rate={RATE}", "--channels=1", "--format=s16le"],
                               stdout=out, stderr=subprocess.DEVNULL)
        try:
            # The first bytes come once the sink has finished the long block it began before we asked.
            deadline = time.monotonic() + 10
            while os.path.getsize(recording) == 0:
                assert rec.poll() is None and time.monotonic() < deadline, "parec recorded nothing"
                time.sleep(0.02)
            yield Speaker(recording), {"ALSA_CONFIG_PATH": str(PULSE_CONFIG), "ZCALL_PULSE_SERVER": server}
        finally:
            rec.terminate()
            rec.wait(timeout=10)


def _loud(tones: Tones) -> list[int]:
    return [round(hz) for hz in tones if hz is not None]


def _in(hz: float | None, band: tuple[float, float]) -> bool:
    return hz is not None and band[0] <= hz <= band[1]


def _first(tones: Tones, band: tuple[float, float], after: int = -1) -> int | None:
    return next((i for i, hz in enumerate(tones) if _in(hz, band) and i > after), None)


def _ring_looped(tones: Tones) -> bool:
    return sum(_in(hz, RING) for hz in tones) * WINDOW_S >= RING_TONE_S


def _chimed(tones: Tones, before: tuple[float, float]) -> bool:
    """The chime was heard after `before` and has played out (CHIME_S of windows recorded after its start)."""
    start = _first(tones, CHIME, after=_first(tones, before) or 0)
    return start is not None and len(tones) - start >= CHIME_S / WINDOW_S


def test_ring_ringback_and_chime_are_heard_on_the_speaker(lan2: Lan, tmp_path: Path) -> None:
    require_binary("pulseaudio", "parec")
    with _speaker(tmp_path / "pa_alice", tmp_path / "alice_speaker.raw") as (heard_a, env_a), \
            _speaker(tmp_path / "pa_bob", tmp_path / "bob_speaker.raw") as (heard_b, env_b):
        common = ["--no-mdns", "--audio-in", "silence"]
        bob = ZcallPeer(lan2[1], tmp_path / "bob", name="bob", audio_out="zcall_speaker", extra=common,
                        env=env_b)
        alice = ZcallPeer(lan2[0], tmp_path / "alice", name="alice", audio_out="zcall_speaker", extra=common,
                          env=env_a)
        with bob, alice:
            alice.wait_event("ready")
            bob.wait_event("ready")
            alice.ctl("call", f"sip:zcall@{lan2[1].ip}:5060")
            bob.wait_event("call", state="incoming")
            alice.wait_event("call", state="ringing")
            # Bob lets it ring until his speaker has rung for more than one cycle: the ring loops.
            heard_b.wait_until(_ring_looped, "the ring looping")
            heard_a.wait_until(lambda tones: _first(tones, RINGBACK) is not None, "ringback")
            bob.ctl("answer")
            alice.wait_event("secure")
            bob.wait_event("secure")
            heard_a.wait_until(lambda tones: _chimed(tones, RINGBACK), "the secure chime after the ringback")
            heard_b.wait_until(lambda tones: _chimed(tones, RING), "the secure chime after the ring")
            alice.ctl("hangup")
            alice.wait_event("ended")
            bob.wait_event("ended")
        tones = {"alice": heard_a.tones(), "bob": heard_b.tones()}
    print("loud 0.25 s windows, dominant Hz:", {name: _loud(found) for name, found in tones.items()})
    ringback, ring = _first(tones["alice"], RINGBACK), _first(tones["bob"], RING)
    assert ringback is not None and ring is not None
    chime_a, chime_b = _first(tones["alice"], CHIME, after=ringback), _first(tones["bob"], CHIME, after=ring)
    assert chime_a is not None and chime_b is not None
    # The ring stopped when bob answered, the ringback when alice heard the answer: neither after the chime.
    assert _first(tones["bob"], RING, after=chime_b) is None
    assert _first(tones["alice"], RINGBACK, after=chime_a) is None
    assert np.median(_loud(tones["alice"][ringback:chime_a])) == pytest.approx(425, abs=5)


FAR_TONE_HZ = 1500.0  # apart from the ring (440/480 Hz) and the chime (659-988 Hz)
HANGUP_AFTER_S = 3.0
TONE_WINDOW_S = 0.02


def _tone_seconds(path: Path, hz: float) -> float:
    """How long `hz` sounds in the recording: 20 ms windows whose band around it is above -40 dBFS."""
    data = path.read_bytes()
    samples = np.frombuffer(data[: len(data) // 2 * 2], np.int16).astype(np.float64) / 32768
    size = int(TONE_WINDOW_S * RATE)
    windows = samples[: len(samples) // size * size].reshape(-1, size)
    spectrum = np.abs(np.fft.rfft(windows * np.hanning(size), axis=1)) ** 2
    freqs = np.fft.rfftfreq(size, 1 / RATE)
    band = (freqs > hz - 150) & (freqs < hz + 150)
    # Hann window: its power gain is 3/8 of the rectangle's; scaled back, a band sine's RMS in dBFS.
    band_rms = np.sqrt(spectrum[:, band].sum(axis=1) * 2 / (size * size * 3 / 8))
    return float(np.count_nonzero(20 * np.log10(band_rms + 1e-12) > -40)) * TONE_WINDOW_S


def test_the_far_ends_first_words_are_heard_on_a_speaker_slow_to_start(lan2: Lan, tmp_path: Path) -> None:
    """Bob's speaker is slow to start (an idle null sink: a new stream waits 0.7-1.8 s for its first pull).
    It rings; bob answers; alice says a steady tone from the moment the call is secure, and bob hangs up
    HANGUP_AFTER_S after his secure event. The speaker that rang plays the call, so the tone is heard for all
    but the network's and the jitter buffer's delay. Before (the call opened a stream of its own on answer,
    and the device refused frames until it pulled) 1.9 s of it were lost: heard 1.08 and 1.10 s."""
    require_binary("pulseaudio", "parec")
    recording = tmp_path / "bob_speaker.raw"
    with _speaker(tmp_path / "pa_bob", recording, latency_ms=2000) as (heard_b, env_b):
        bob = ZcallPeer(lan2[1], tmp_path / "bob", name="bob", audio_out="zcall_speaker", env=env_b,
                        extra=["--no-mdns", "--audio-in", "silence", "--hangup-after", str(HANGUP_AFTER_S)])
        alice = ZcallPeer(lan2[0], tmp_path / "alice", name="alice", audio_in=f"tone:{FAR_TONE_HZ:g}",
                          extra=["--no-mdns"])
        with bob, alice:
            alice.wait_event("ready")
            bob.wait_event("ready")
            alice.ctl("call", f"sip:zcall@{lan2[1].ip}:5060")
            bob.wait_event("call", state="incoming")
            heard_b.wait_until(lambda tones: _first(tones, RING) is not None, "the ring")  # as a person would
            bob.ctl("answer")
            bob.wait_event("secure")
            bob.wait_event("ended")
            stats = [event for event in bob.events if event.get("event") == "stats"][-1]  # the call's totals
            # The sink renders 2 s at a time once idle: what it played reaches the recording that much later.
            played_s = len(heard_b.tones()) * WINDOW_S
            heard_b.wait_until(lambda tones: len(tones) * WINDOW_S > played_s + 4.5, "the end of the call")
    heard_s = _tone_seconds(recording, FAR_TONE_HZ)
    print(f"far end's tone heard {heard_s:.2f} s of the {HANGUP_AFTER_S} s bob was secure; bob: {stats}")
    assert heard_s >= HANGUP_AFTER_S - 0.5
