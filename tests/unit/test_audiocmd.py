"""`zcall audio list|test`: the sweep measurement on synthetic signals, and the command on real devices (a
private PulseAudio server whose loopback carries the speaker into the microphone, as a desk unit's air
does)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support.alsa import PULSE_CONFIG, alsa_env, pulse_server
from tests.support.prereq import require_binary
from tests.support.realtime import realtime_prefix
from zcall import audiocmd

ROOT = Path(__file__).resolve().parents[2]


def test_measure_finds_delay_and_echo_return_loss() -> None:
    rng = np.random.default_rng(3)
    played = np.concatenate([audiocmd.sweep(), np.zeros(24000, np.int16)])
    delay = 4800  # 100 ms
    heard = np.concatenate([np.zeros(delay), played * 0.1, np.zeros(4800)])
    heard += rng.normal(0, 30, len(heard))
    found_delay, erl = audiocmd.measure(played, heard.astype(np.int16))
    assert found_delay == pytest.approx(100.0, abs=0.1)
    assert erl == pytest.approx(20.0, abs=0.5)
    # Only noise: nothing is claimed.
    assert audiocmd.measure(played, rng.normal(0, 300, len(played)).astype(np.int16)) == (None, None)
    assert audiocmd.measure(played, np.zeros(len(played), np.int16)) == (None, None)


def _zcall(home: Path, args: list[str], env: dict[str, str],
           prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, sys.executable, "-m", "zcall", "--home", str(home), *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)


def test_list_marks_the_defaults(tmp_path: Path) -> None:
    done = _zcall(tmp_path, ["audio", "list", "--json"], alsa_env())
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert any(d["name"] == "zcall_in" and d["inputs"] for d in found)
    assert sum(d["default_input"] for d in found) <= 1 and sum(d["default_output"] for d in found) <= 1
    text = _zcall(tmp_path, ["audio", "list"], alsa_env()).stdout
    assert "zcall_in" in text


def test_list_without_devices_fails(tmp_path: Path) -> None:
    config = tmp_path / "nocard.conf"
    config.write_text("pcm.nosuchcard {\n    type hw\n    card 99\n}\n")
    done = _zcall(tmp_path, ["audio", "list"], alsa_env(config=config))
    assert done.returncode == 1 and "no sound devices" in done.stdout
    done = _zcall(tmp_path, ["audio", "test", "--json"], alsa_env(config=config))
    assert done.returncode == 1 and "error" in json.loads(done.stdout)
    # doctor fails too, on both devices, and does not try the loop test
    done = _zcall(tmp_path, ["--sip-port", "0", "doctor"], alsa_env(config=config))
    assert done.returncode == 1, done.stdout
    assert "FAIL audio input" in done.stdout and "FAIL audio output" in done.stdout
    assert "speaker to microphone" not in done.stdout


@pytest.mark.slow
def test_speaker_to_microphone_on_real_devices(tmp_path: Path) -> None:
    require_binary("pulseaudio", "pactl")
    loopback = "module-loopback source=zspeaker.monitor sink=zmic latency_msec=80 adjust_time=0"
    # Real-time scheduling, as a phone's audio has: starved of the CPU on a busy machine, the devices
    # themselves over- and underrun (PortAudio flags it, not for how long), and no timeline can be kept.
    realtime = realtime_prefix()
    with pulse_server(tmp_path / "pulse", (loopback,), realtime) as server:
        subprocess.run(["pactl", "-s", server, "set-source-volume", "zspeaker.monitor", "50%"], check=True,
                       capture_output=True, timeout=10)
        env = alsa_env(config=PULSE_CONFIG, pulse=server)
        devices = ["--audio-in", "zcall_mic", "--audio-out", "zcall_speaker"]
        done = _zcall(tmp_path, [*devices, "audio", "test", "--json", "--seconds", "3"], env, realtime)
        doctor = _zcall(tmp_path, [*devices, "--sip-port", "0", "doctor"], env, realtime)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    print("zcall audio test:", result)
    # 80 ms of loopback plus the devices' buffers; PulseAudio's 50 % volume is -18 dB (cubic).
    assert result["delay_ms"] is not None and 80 <= result["delay_ms"] <= 800
    assert result["echo_return_loss_db"] == pytest.approx(18.1, abs=5)
    assert result["level_dbfs"] > -50
    # doctor runs the same measurement
    line = next(line for line in doctor.stdout.splitlines() if "speaker to microphone" in line)
    print("zcall doctor:", line)
    assert doctor.returncode == 0 and line.startswith("ok") and "sweep heard after" in line, doctor.stdout


def test_files_and_tones_are_measured_without_a_device(tmp_path: Path) -> None:
    """A tone or file never runs dry: the test records as much as it played (it used to drain it forever)."""
    out = tmp_path / "played.wav"
    tone = audiocmd.run_test("tone:1000", f"file:{out}", seconds=2.0)
    assert tone.captured_frames == tone.played_frames == 100
    assert tone.level_dbfs == pytest.approx(-13.5, abs=0.3) and tone.delay_ms is None
    # What was played, as a microphone: the sweep found 80 ms in (the warm-up's silence), at its own level.
    loop = audiocmd.run_test(f"file:{out}", "null", seconds=2.0)
    assert loop.delay_ms == pytest.approx(80, abs=1) and loop.echo_return_loss_db == pytest.approx(0, abs=0.1)


class _LoopedDevice:
    """A speaker whose every sample reaches a microphone at once (no delay, no loss of level), and which
    misbehaves as a device does on a busy machine: its ring refuses every 7th frame (dropped) and it plays
    20 ms of silence for want of frames before every 5th (an underrun); the microphone's ring loses every
    11th frame it hears."""

    paced = True

    def __init__(self) -> None:
        self.dropped = self.silence_samples = self.writes = self.heard = 0
        self.lost_before_last = 0
        self._air: list[tuple[bytes, int]] = []
        self._gap = 0

    def write_frame(self, pcm: bytes) -> None:
        self.writes += 1
        if self.writes % 5 == 0:
            self.silence_samples += len(pcm) // 2
            self._hear(bytes(len(pcm)))
        if self.writes % 7 == 0:
            self.dropped += 1
        else:
            self._hear(pcm)

    def _hear(self, pcm: bytes) -> None:
        self.heard += 1
        if self.heard % 11 == 0:
            self._gap += 1
        else:
            self._air.append((pcm, self._gap))
            self._gap = 0

    def read_frame(self) -> bytes | None:
        if not self._air:
            return None
        pcm, self.lost_before_last = self._air.pop(0)
        return pcm

    def close(self) -> None:
        pass


def test_a_device_that_drops_underruns_and_loses_is_measured_on_its_real_timelines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the speaker refused, the silence it played and what the microphone lost move the sweep: the
    measurement follows the devices' timelines, so a loop that fell behind does not read as delay or loss."""
    device = _LoopedDevice()
    monkeypatch.setattr(audiocmd.audiospec, "open_source", lambda spec: device)
    monkeypatch.setattr(audiocmd.audiospec, "open_sink", lambda spec: device)
    result = audiocmd.run_test("zcall_mic", "zcall_speaker", seconds=2.0)
    assert device.dropped > 10 and device.silence_samples > 10 * 960 and device.heard > 100
    assert result.delay_ms == pytest.approx(0, abs=1)
    assert result.echo_return_loss_db == pytest.approx(0, abs=1.5)  # lost frames count as silence: ~0.8 dB
