"""Echo cancellation on real audio devices: a private PulseAudio server whose module-loopback feeds the desk
unit's speaker back into its microphone (80 ms, attenuated), a near-end talker on the same microphone, and a
far end that records what the unit sends. espeak-ng speech, scored by PESQ-WB.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support import audio_check
from tests.support.alsa import PULSE_CONFIG, pulse_server, run_probe
from tests.support.prereq import require_binary
from tests.support.realtime import realtime_prefix

pytestmark = pytest.mark.slow
# Up to three attempts each, as a stalled machine measures itself, not the canceller (docs/architecture.md,
# "The test bench"). On a loaded machine the phone's own devices over- and underrun at the PortAudio level
# (its callback is late for the GIL): the speaker's xruns are measured from the stream's timing
# (zcall.media.devclock), and after one the canceller is held until the echo path is found again to the
# sample (zcall.media.echo). Each call's echo_on.npz replays without devices (tests/support/echo_record.py).
# Double talk was opt-in until speex's canceller ran on whole 20 ms frames (speexdsp.FrameCanceller): on 10 ms
# blocks it learnt the near talker, and it scored 2.90-3.20 on a quiet machine (2 of 3 calls below 3.0).
ATTEMPTS = 3

FAR = ["The secure phone reads two words aloud.", "If they match, nobody sits in the middle of the call.",
       "Please check the words on your screen.", "Then press the green key to trust this unit."]
NEAR = ["Next time the call is secure at once.", "A stranger in the middle would change the words."]
ECHO_DELAY_MS = 80  # double talk's; far-end echo is tested at either end of issue 15's 40-120 ms
ECHO_VOLUME = "50%"  # the loopback's gain: a speaker a hand's width from the microphone, not at the ear
NEAR_AT_S = 10.0  # far-end speech alone until here, then both talk
STALL_MS = 300  # the phone stalls this long (GIL held): its devices run dry and over, as under load


def _echo_call(tmp: Path, far: Path, near: Path | None, mode: str, seconds: float,
               delay_ms: int = ECHO_DELAY_MS, stall_at: str = "") -> dict[str, Any]:
    heard = tmp / f"heard_{mode}.wav"
    # adjust_time=0: no adaptive resampling in the loopback, as a speaker and microphone on one sound card
    # share a clock (with it, the echo path drifts about 60 ppm and no linear canceller follows). The server
    # runs real-time: a sound card's echo path does not move when the CPU is busy, and neither may this one.
    loopback = ("module-loopback source=zspeaker.monitor sink=zmic"
                f" latency_msec={delay_ms} adjust_time=0")
    with pulse_server(tmp / f"pulse_{mode}", (loopback,), realtime_prefix()) as server:
        subprocess.run(["pactl", "-s", server, "set-source-volume", "zspeaker.monitor", ECHO_VOLUME],
                       check=True, capture_output=True, timeout=10)
        # What the canceller was told, kept to be replayed without devices (tests/support/echo_record.py).
        args = ["echo-call", str(far), str(heard), "--echo-cancel", mode, "--seconds", f"{seconds:.1f}",
                "--record", str(tmp / f"echo_{mode}.npz")]
        if near is not None:
            args += ["--near", str(near), "--near-at", str(NEAR_AT_S)]
        if stall_at:
            args += ["--stall-at", stall_at, "--stall-ms", str(STALL_MS)]
        result = run_probe(args, config=PULSE_CONFIG, pulse=server, timeout=seconds + 60)
    result["heard"] = heard
    return result


def _level_db(path: Path, start_s: float, end_s: float) -> float:
    samples, rate = audio_check.read_wav(path)
    return audio_check.rms_dbfs(samples[int(start_s * rate) : int(end_s * rate)])


@pytest.fixture(autouse=True)
def _tools() -> None:
    require_binary("pulseaudio", "pactl", "espeak-ng", "sox")


@pytest.mark.parametrize("delay_ms", [40, 80, 120])
def test_echo_is_cancelled_on_pulseaudio_devices(tmp_path: Path, delay_ms: int) -> None:
    """Far-end speech alone: after 2 s to converge, the echo in the microphone against what the far end hears
    (ERLE >= 25 dB); with echo cancellation off the far end hears itself (the check can fail)."""
    far = audio_check.sentences_wav(tmp_path / "far.wav", FAR, 0.4)
    erle = []
    for attempt in range(1, ATTEMPTS + 1):
        folder = tmp_path / f"attempt{attempt}"
        folder.mkdir()
        on = _echo_call(folder, far, None, "on", NEAR_AT_S, delay_ms)
        off = _echo_call(folder, far, None, "off", NEAR_AT_S, delay_ms)
        window = (6.0, NEAR_AT_S - 0.5)  # the microphone starts about 1.5 s late; aligning takes a second
        mic_on, heard_on = (_level_db(p, *window) for p in (Path(f"{on['heard']}.mic.wav"), on["heard"]))
        mic_off, heard_off = (_level_db(p, *window) for p in (Path(f"{off['heard']}.mic.wav"), off["heard"]))
        print(f"attempt {attempt}: echo path {delay_ms} ms at {ECHO_VOLUME}: microphone {mic_on:.1f} dBFS;"
              f" the far end hears {heard_on:.1f} dBFS with the canceller (ERLE {mic_on - heard_on:.1f} dB),"
              f" {heard_off:.1f} dBFS without (mic {mic_off:.1f}); delay found {on['echo']['delay_ms']} ms")
        print("echo stats:", on["echo"], "unit drops:", on["a"]["drops"], "devices:", on["devices"])
        assert mic_off > -45 and heard_off > mic_off - 6  # off: the far end hears itself
        # Found, not assumed: the loopback's delay plus the devices' buffers.
        assert on["echo"]["delay_ms"] is not None and delay_ms <= on["echo"]["delay_ms"] <= 500
        erle.append(mic_on - heard_on)
        if erle[-1] >= 25:
            return
    raise AssertionError(f"ERLE below 25 dB in every attempt: {[round(e, 1) for e in erle]}")


def test_near_speech_survives_double_talk_on_pulseaudio_devices(tmp_path: Path) -> None:
    """Both talk: the near talker's speech at the far end scores PESQ-WB >= 3.0 (issue 15's bar)."""
    far = audio_check.sentences_wav(tmp_path / "far.wav", FAR + FAR, 0.4)
    near = audio_check.sentences_wav(tmp_path / "near.wav", NEAR, 0.4)
    seconds = NEAR_AT_S + len(audio_check.read_wav(near)[0]) / 16000 + 1.5
    scores = []
    for attempt in range(1, ATTEMPTS + 1):
        folder = tmp_path / f"attempt{attempt}"
        folder.mkdir()
        on = _echo_call(folder, far, near, "on", seconds)
        near_only = folder / "near_heard.wav"
        samples, rate = audio_check.read_wav(on["heard"])
        audio_check.write_wav(near_only, samples[int((NEAR_AT_S - 0.5) * rate):], rate)
        scores.append(audio_check.pesq_wb(near, near_only))
        print(f"attempt {attempt}: double-talk near-end PESQ-WB {scores[-1]:.2f}; echo stats: {on['echo']};"
              f" unit drops: {on['a']['drops']}; devices: {on['devices']};"
              f" far end playout: {on['b']['playout']}")
        if scores[-1] >= 3.0:
            return
    # Before the canceller ran on whole frames: 2.90-3.20 on a quiet machine; before the AGC fix
    # (speexdsp.AGC_LEVEL, held while the far end talks): 2.43-2.93.
    raise AssertionError(f"double talk below PESQ-WB 3.0 in every attempt: {[round(s, 2) for s in scores]}")


def test_the_speakers_xruns_are_measured(tmp_path: Path) -> None:
    """The phone stalls three times for 300 ms: the speaker runs dry inside PortAudio (an xrun, no length
    given), and the length comes from the stream's timing (zcall.media.devclock), so the reference moves on
    by it. Without that: no gap found, and the echo path seemed to jump by 100-200 ms at the first stall."""
    far = audio_check.sentences_wav(tmp_path / "far.wav", FAR, 0.4)
    on = _echo_call(tmp_path, far, None, "on", NEAR_AT_S, stall_at="4,6,8")
    devices = on["devices"]
    print("stalls at 4, 6, 8 s: echo stats:", on["echo"], "devices:", devices)
    # The device's buffer and the ring (80 ms) play on through part of each stall: 640-950 ms found in all.
    assert devices["speaker_gaps"] >= 3 and devices["speaker_gap_ms"] >= 3 * STALL_MS / 2
