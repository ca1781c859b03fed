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


def _zcall(home: Path, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "zcall", "--home", str(home), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


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
    with pulse_server(tmp_path / "pulse", (loopback,)) as server:
        subprocess.run(["pactl", "-s", server, "set-source-volume", "zspeaker.monitor", "50%"], check=True,
                       capture_output=True, timeout=10)
        env = alsa_env(config=PULSE_CONFIG, pulse=server)
        devices = ["--audio-in", "zcall_mic", "--audio-out", "zcall_speaker"]
        done = _zcall(tmp_path, [*devices, "audio", "test", "--json", "--seconds", "3"], env)
        doctor = _zcall(tmp_path, [*devices, "--sip-port", "0", "doctor"], env)
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
