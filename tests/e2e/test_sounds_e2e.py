"""The phone's sounds on real audio devices: two `zcall --headless` units, each playing on a PulseAudio null
sink of its own (through PyAudio and ALSA's pulse plugin, as on a desk unit), with what each speaker played
recorded from the sink's monitor. Alice calls; bob's speaker rings and alice's plays ringback until bob
answers; both then chime as the call goes secure. Checked by frequency, in order, never by "a file exists".
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.support import audio_check
from tests.support.alsa import PULSE_CONFIG, pulse_server
from tests.support.netns import Lan
from tests.support.prereq import require_binary
from tests.support.zcall_peer import ZcallPeer

pytestmark = [pytest.mark.netns, pytest.mark.slow, pytest.mark.timeout(120)]

RING_S = 3.0  # how long bob lets it ring before answering
WINDOW_S = 0.25


@contextlib.contextmanager
def _speaker(home: Path, recording: Path) -> Iterator[dict[str, str]]:
    """A private PulseAudio server; what its speaker sink plays is recorded (parec) to `recording`."""
    with pulse_server(home) as server:
        rec = subprocess.Popen(["parec", f"--server={server}", "-d", "zspeaker.monitor", "--rate=48000",
                                "--channels=1", "--format=s16le", "--file-format=wav", str(recording)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            yield {"ALSA_CONFIG_PATH": str(PULSE_CONFIG), "ZCALL_PULSE_SERVER": server}
        finally:
            rec.terminate()
            rec.wait(timeout=10)


def _tones(recording: Path) -> list[float]:
    """The dominant frequency of each loud 0.25 s window, in order (quiet windows left out)."""
    samples, rate = audio_check.read_wav(recording)
    size = int(WINDOW_S * rate)
    found = []
    for start in range(0, len(samples) - size, size):
        window = samples[start : start + size]
        if audio_check.rms_dbfs(window) > -40:
            found.append(audio_check.dominant_frequency(window, rate))
    return found


def _first(tones: list[float], low: float, high: float) -> int | None:
    return next((i for i, hz in enumerate(tones) if low <= hz <= high), None)


def test_ring_ringback_and_chime_are_heard_on_the_speaker(lan2: Lan, tmp_path: Path) -> None:
    require_binary("pulseaudio", "parec")
    heard = {name: tmp_path / f"{name}_speaker.wav" for name in ("alice", "bob")}
    with _speaker(tmp_path / "pa_alice", heard["alice"]) as env_a, \
            _speaker(tmp_path / "pa_bob", heard["bob"]) as env_b:
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
            time.sleep(RING_S)
            bob.ctl("answer")
            alice.wait_event("secure")
            bob.wait_event("secure")
            time.sleep(1.5)  # the chime (0.84 s) plays out
            alice.ctl("hangup")
            alice.wait_event("ended")
            bob.wait_event("ended")
    tones = {name: _tones(path) for name, path in heard.items()}
    print("loud 0.25 s windows, dominant Hz:", {k: [round(h) for h in v] for k, v in tones.items()})
    ringback, ring = _first(tones["alice"], 420, 430), _first(tones["bob"], 435, 485)
    chime_a, chime_b = _first(tones["alice"], 640, 1000), _first(tones["bob"], 640, 1000)
    assert ringback is not None, "alice's speaker played no ringback (425 Hz)"
    assert ring is not None, "bob's speaker did not ring (440/480 Hz)"
    assert chime_a is not None and chime_a > ringback, "alice: no secure chime after the ringback"
    assert chime_b is not None and chime_b > ring, "bob: no secure chime after the ring"
    # Bob rang for RING_S: the ring's cadence (0.8 s of tone in every 2 s) over most of it.
    assert sum(435 <= hz <= 485 for hz in tones["bob"]) * WINDOW_S >= 0.4 * RING_S * 0.8
    # The ring stopped when bob answered: nothing of it after the chime.
    assert not any(435 <= hz <= 485 for hz in tones["bob"][chime_b:])
    assert np.median(tones["alice"][ringback:chime_a]) == pytest.approx(425, abs=5)
