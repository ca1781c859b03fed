"""Echo canceller (libspeexdsp) and its delay estimate, sans-I/O: espeak speech played into a simulated room
(bulk delay + reflections + noise), a microphone that starts late, and a near-end talker. The same processor
runs on PulseAudio devices in tests/e2e/test_echo_e2e.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support import audio_check
from tests.support.prereq import require_binary
from zcall.media.audio import read_wav_48k_mono
from zcall.media.codec import FRAME_SAMPLES
from zcall.media.echo import BLOCK, FILTER_MS, FRAME, RATE, EchoProcessor
from zcall.media.echodelay import estimate_delay
from zcall.media.halfrate import HISTORY, halve
from zcall.media.speexdsp import EchoCanceller, FrameCanceller

FAR = ["The secure phone reads two words aloud.", "If they match, nobody sits in the middle of the call.",
       "Please check the words on your screen."]
NEAR = ["Then press the green key to trust this unit."]
ECHO_DELAY = 150 * 48  # device buffers + air, in samples
MIC_LATE = 40  # frames: the microphone delivers its first frame 0.8 s after playback started
FILTER_SAMPLES = RATE * FILTER_MS // 1000  # the processor's filter
NEAR_AT = 8 * 48000  # room position where the near-end talker starts


def _speech(path: Path, sentences: list[str]) -> np.ndarray:
    require_binary("espeak-ng", "sox")
    parts = [audio_check.read_wav(audio_check.speech_wav(path.with_suffix(f".{i}.wav"), text))[0]
             for i, text in enumerate(sentences)]
    wav = audio_check.write_wav(path, np.concatenate([np.concatenate([p, np.zeros(6400, np.int16)])
                                                      for p in parts]), 16000)
    return read_wav_48k_mono(wav).astype(np.float64)


def _room(played: np.ndarray) -> np.ndarray:
    response = np.zeros(2400)
    response[[0, 300, 1100, 2000]] = [0.25, 0.08, -0.04, 0.02]  # a hand's width away, a desk, two walls
    echo = np.convolve(np.concatenate([np.zeros(ECHO_DELAY), played]), response)[: len(played)]
    return echo + np.random.default_rng(7).normal(0, 20, len(played))  # the microphone's own noise


def _run(tmp_path: Path, cancel_echo: bool) -> tuple[EchoProcessor, np.ndarray, np.ndarray, np.ndarray]:
    far = _speech(tmp_path / "far.wav", FAR + FAR)
    near = _speech(tmp_path / "near.wav", NEAR)
    frames = len(far) // FRAME_SAMPLES
    mic = _room(far)
    mic[NEAR_AT : NEAR_AT + len(near)] += near[: len(mic) - NEAR_AT] * 0.5
    mic16 = np.clip(mic, -32768, 32767).astype("<i2")
    processor = EchoProcessor(cancel_echo=cancel_echo)
    out = []
    for i in range(frames):
        processor.played(far[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES].astype("<i2").tobytes())
        if i >= MIC_LATE:  # the microphone delivers from then on
            out.append(processor.process(mic16[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES].tobytes()))
    captured = mic16[MIC_LATE * FRAME_SAMPLES : frames * FRAME_SAMPLES].astype(np.float64)
    return processor, captured, np.frombuffer(b"".join(out), "<i2").astype(np.float64), near


def _samples(frames: list[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(frames), "<i2").astype(np.float64)


def _db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(x**2) + 1e-9))


def test_far_end_echo_is_removed_and_near_speech_survives_double_talk(tmp_path: Path) -> None:
    processor, mic, out, _near = _run(tmp_path, cancel_echo=True)
    stats = processor.snapshot()
    # The microphone starts 0.8 s after playback: the offset between the streams is not part of the delay.
    assert stats["delay_ms"] is not None and abs(stats["delay_ms"] * 48 - ECHO_DELAY) <= 48 * 2, stats
    window = slice(3 * 48000, NEAR_AT - MIC_LATE * FRAME_SAMPLES)  # far end alone, 2 s after the alignment
    erle = _db(mic[window]) - _db(out[window])
    near_out = tmp_path / "near_out.wav"
    audio_check.write_wav(near_out, out[NEAR_AT - MIC_LATE * FRAME_SAMPLES - 4800 :].astype(np.int16), 48000)
    double_talk = audio_check.pesq_wb(tmp_path / "near.wav", near_out)
    print(f"simulated room: ERLE {erle:.1f} dB after 2 s, delay found {stats['delay_ms']} ms,"
          f" double-talk near-end PESQ-WB {double_talk:.2f}")
    assert erle >= 25
    # Issue 15's bar, with the near talker 6 dB over the echo: 3.44 here (ERLE 32 dB). Before: 2.82 with a
    # 120 ms filter and -25 dB of noise suppression, 3.08 with an 80 ms filter and an AGC that turned every
    # talker down to -37.5 dBFS (see echo.FILTER_MS and speexdsp.AGC_LEVEL).
    assert double_talk >= 3.0


def _subtracted_from_a_near_talker_db(canceller: EchoCanceller | FrameCanceller, step: int, far: np.ndarray,
                                      near: np.ndarray) -> float:
    """The far end plays and there is no echo at all; a near talker starts after 4 s. What the canceller
    subtracts while the talker talks (learnt from the talker, subtracting far-end speech), in dB against the
    talker (both after speex's DC notch, which a zero reference alone applies). At the processor's rate."""
    frames = len(far) // FRAME * FRAME
    mic = np.random.default_rng(3).normal(0, 20, frames)
    at = 4 * RATE
    mic[at : at + len(near)] += near[: frames - at] * 0.5
    mic16, far16 = np.clip(mic, -32768, 32767).astype("<i2"), far[:frames].astype("<i2")
    notch, silent = EchoCanceller(FRAME, FILTER_SAMPLES, RATE), bytes(2 * FRAME)
    out, alone = [], []
    for i in range(0, frames, step):
        out.append(canceller.cancel(mic16[i : i + step].tobytes(), far16[i : i + step].tobytes()))
    for i in range(0, frames, FRAME):
        alone.append(notch.cancel(mic16[i : i + FRAME].tobytes(), silent))
    talker = _samples(alone)[at : at + len(near)]
    return _db(_samples(out)[at : at + len(near)] - talker) - _db(talker)


def _halved(speech: np.ndarray) -> np.ndarray:
    whole = np.concatenate([np.zeros(HISTORY), speech[: len(speech) // 2 * 2]])
    return halve(np.clip(whole, -32768, 32767).astype(np.int16)).astype(np.float64)


def test_the_canceller_does_not_learn_a_near_talker(tmp_path: Path) -> None:
    """speex's filter adapts while both ends talk; on 10 ms blocks at 48 kHz it learnt a near talker and
    subtracted far-end speech from it (-17.3 dB against the talker here), and on PulseAudio devices double
    talk scored 2.90-3.20; on whole 20 ms frames, -24.5 dB and 3.5-3.7. As EchoProcessor runs it now, on
    whole frames at 24 kHz (speexdsp.FrameCanceller), it subtracts nothing measurable; on its preprocessor's
    6.7 ms blocks it would subtract -16 dB."""
    far = _halved(_speech(tmp_path / "far.wav", FAR + FAR))
    near = _halved(_speech(tmp_path / "near.wav", NEAR))
    on_frames = _subtracted_from_a_near_talker_db(FrameCanceller(FRAME, BLOCK, FILTER_SAMPLES, RATE), FRAME,
                                                  far, near)
    on_blocks = _subtracted_from_a_near_talker_db(EchoCanceller(BLOCK, FILTER_SAMPLES, RATE), BLOCK, far,
                                                  near)
    print(f"subtracted from a near talker with no echo: {on_frames:.1f} dB on 20 ms frames,"
          f" {on_blocks:.1f} dB on {BLOCK / RATE * 1000:.1f} ms blocks")
    assert on_frames <= -22
    assert on_blocks > -22  # what the test tells apart


def test_with_echo_cancellation_off_the_echo_stays(tmp_path: Path) -> None:
    processor, mic, out, _near = _run(tmp_path, cancel_echo=False)
    window = slice(3 * 48000, NEAR_AT - MIC_LATE * FRAME_SAMPLES)
    assert _db(mic[window]) - _db(out[window]) < 10  # noise suppression and AGC alone do not hide an echo
    assert processor.snapshot()["delay_ms"] is None


@pytest.mark.parametrize("gap", ["microphone", "speaker"])
def test_the_canceller_stays_aligned_across_lost_frames(tmp_path: Path, gap: str) -> None:
    """A loaded unit's microphone ring overflows (100 ms captured and lost) or its speaker underruns (130 ms
    of silence played between frames): the device says so, and the canceller's timelines move on by exactly
    that much. Without it the echo path seems to move by the gap, and the filter starts again (ERLE 19-20 dB
    over the same second, realigned twice)."""
    far = _speech(tmp_path / "far.wav", FAR + FAR)
    frames, at, lost = len(far) // FRAME_SAMPLES, 300, 5
    silence = 6240 if gap == "speaker" else 0
    sounded = np.concatenate([far[: at * FRAME_SAMPLES], np.zeros(silence), far[at * FRAME_SAMPLES :]])
    mic = np.clip(_room(sounded), -32768, 32767).astype("<i2")
    processor, heard, out, skip = EchoProcessor(), [], [], 0
    for i in range(frames):
        if i == at and gap == "speaker":
            processor.played_silence(silence)
        processor.played(far[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES].astype("<i2").tobytes())
        if i == at and gap == "microphone":
            skip = lost
            processor.captured_lost(lost)
        j = i + skip
        if i >= MIC_LATE and (j + 1) * FRAME_SAMPLES <= len(mic):
            heard.append(mic[j * FRAME_SAMPLES : (j + 1) * FRAME_SAMPLES].tobytes())
            out.append(processor.process(heard[-1]))
    after = slice((at + 50 - MIC_LATE) * FRAME_SAMPLES, None)  # from 1 s after the gap to the end
    erle = _db(_samples(heard)[after]) - _db(_samples(out)[after])
    print(f"{gap} gap: ERLE {erle:.1f} dB from 1 s after it, {processor.snapshot()}")
    assert processor.snapshot()["realigned"] == 1  # the first alignment held
    assert erle >= 25


def test_delay_estimate_finds_the_lag_or_nothing() -> None:
    rng = np.random.default_rng(1)
    reference = (rng.normal(0, 3000, 48000 + 24000)).astype(np.int16)
    for lag in (0, 480, 7200, 23994):
        captured = reference[24000 - lag : 24000 - lag + 48000]
        found = estimate_delay(reference, captured, 24000)
        assert found is not None and abs(found[0] - lag) <= 6
    noise = rng.normal(0, 3000, 48000).astype(np.int16)
    assert estimate_delay(reference, noise, 24000) is None


_ONE_THREAD_PROBE = """
import json, time
import numpy as np
from zcall.media.codec import FRAME_SAMPLES as F
from zcall.media.echo import EchoProcessor
rng = np.random.default_rng(4)
frames = 750  # 15 s: about 30 looks for the echo path
far = rng.normal(0, 3000, frames * F) * np.repeat(rng.random(frames) > 0.3, F)
# A near end as loud as the echo all along: the filter never seems to hold it, and the looks go on.
mic = np.concatenate([np.zeros(4800), far])[: len(far)] * 0.2 + rng.normal(0, 600, len(far))
far16, mic16 = far.astype(np.int16), mic.astype(np.int16)
processor = EchoProcessor()
process0, thread0 = time.process_time(), time.thread_time()
for i in range(frames):
    processor.played(far16[i * F : (i + 1) * F].tobytes())
    processor.process(mic16[i * F : (i + 1) * F].tobytes())
own = time.thread_time() - thread0
print(json.dumps({"own": own, "others": time.process_time() - process0 - own, **processor.snapshot()}))
"""


def test_the_processor_keeps_its_work_on_the_calling_thread() -> None:
    """numpy's dot product on tens of thousands of samples runs in OpenBLAS on a second thread, which then
    spins for 10-20 ms: through the delay search's two looks a second that cost more than all the rest of
    the processing. The work a frame costs must be the calling thread's alone (measured in a fresh
    process: this one may hold threads of earlier tests)."""
    run = subprocess.run([sys.executable, "-c", _ONE_THREAD_PROBE], capture_output=True, text=True,
                         check=True, timeout=120, cwd=Path(__file__).parents[3])
    report = json.loads(run.stdout)
    print(report)
    assert report["estimates"] >= 20
    assert report["others"] < 0.2 * report["own"] + 0.05


def test_a_speaker_xrun_found_late_is_put_where_it_happened(tmp_path: Path) -> None:
    """The speaker device runs dry for 208 ms inside PortAudio; its length comes from the stream's timing
    three callbacks late, after 140 ms of frames that sounded after the gap. Put where it happened, the
    echo stays cancelled right through (33-36 dB over the next second); put at the end of the reference (as
    first done) the filter chased the misplaced frames and lost the echo for a second (-6 and 1 dB)."""
    far = _speech(tmp_path / "far.wav", FAR + FAR)
    frames, at, late, silence = len(far) // FRAME_SAMPLES, 300, 7, 10000
    sounded = np.concatenate([far[: at * FRAME_SAMPLES], np.zeros(silence), far[at * FRAME_SAMPLES :]])
    mic = np.clip(_room(sounded), -32768, 32767).astype("<i2")
    processor, heard, out = EchoProcessor(), [], []
    for i in range(frames):
        if i == at + late:
            processor.played_gap(silence, late * FRAME_SAMPLES)
        processor.played(far[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES].astype("<i2").tobytes())
        if i >= MIC_LATE and (i + 1) * FRAME_SAMPLES <= len(mic):
            heard.append(mic[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES].tobytes())
            out.append(processor.process(heard[-1]))
    start = (at - MIC_LATE) * FRAME_SAMPLES
    for half in (slice(start, start + 24000), slice(start + 24000, start + 48000)):
        erle = _db(_samples(heard)[half]) - _db(_samples(out)[half])
        print(f"speaker xrun found late: ERLE {erle:.1f} dB over half a second after it")
        assert erle >= 25
    assert processor.snapshot()["realigned"] == 1


@pytest.mark.parametrize(("measured", "sounded"), [(4071, 4148), (393, 0), (10731, 17500)])
def test_a_speaker_xrun_measured_off_keeps_the_echo_away(tmp_path: Path, measured: int, sounded: int) -> None:
    """Recorded on PulseAudio devices under load (tests/support/echo_record.py, replayed): the device clock
    measured an xrun 4071 samples long where the echo path then lay 1.6 ms later (4148 sounded), a 393-sample
    "gap" moved it by nothing, and a stall at the start of a call measured 10731 moved it 141 ms more than
    that. Fed a reference 1.6 ms off, the converged filter made the echo louder (ERLE -4 dB) for over a
    second. Now the canceller is held from where the gap's echo arrives until the path is found again in
    the signals (the microphone turned down meanwhile while the far end talks), then runs on, not reset."""
    far = _speech(tmp_path / "far.wav", FAR + FAR)
    frames, at, late = len(far) // FRAME_SAMPLES, 300, 4
    played = np.concatenate([far[: at * FRAME_SAMPLES], np.zeros(sounded), far[at * FRAME_SAMPLES :]])
    mic = np.clip(_room(played), -32768, 32767).astype("<i2")
    processor, heard, out = EchoProcessor(), [], []
    for i in range(frames):
        if i == at + late:
            processor.played_gap(measured, late * FRAME_SAMPLES)
        processor.played(far[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES].astype("<i2").tobytes())
        if i >= MIC_LATE and (i + 1) * FRAME_SAMPLES <= len(mic):
            heard.append(mic[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES].tobytes())
            out.append(processor.process(heard[-1]))
    start = (at - MIC_LATE) * FRAME_SAMPLES
    stats = processor.snapshot()
    for name, part in (("the second after the gap", slice(start, start + 48000)),
                       ("the second after that", slice(start + 48000, start + 96000))):
        erle = _db(_samples(heard)[part]) - _db(_samples(out)[part])
        print(f"xrun measured {measured}, sounded {sounded}: ERLE {erle:.1f} dB over {name}; {stats}")
        assert erle >= 25
    assert stats["realigned"] == 1  # the filter was not reset
    assert abs(stats["delay_ms"] * 48 - ECHO_DELAY - (sounded - measured)) <= 2  # found to the sample


def test_a_path_that_jumps_out_of_the_watchs_reach_is_found_again(tmp_path: Path) -> None:
    """The echo path jumps by 100 ms with no xrun reported (a device re-buffered), farther than the watch
    follows: the periodic look finds it and realigns the filter (two looks must agree). Looks half a second
    apart realign 1.3 s on; a second apart once the alignment held (0.012 ms a frame less), 2.3 s."""
    far = _speech(tmp_path / "far.wav", FAR + FAR)
    frames, at, moved = len(far) // FRAME_SAMPLES, 300, 4800
    played = np.concatenate([far[: at * FRAME_SAMPLES], np.zeros(moved), far[at * FRAME_SAMPLES :]])
    mic = np.clip(_room(played), -32768, 32767).astype("<i2")
    processor, heard, out = EchoProcessor(), [], []
    realigned_at = None
    for i in range(frames):
        processor.played(far[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES].astype("<i2").tobytes())
        if i >= MIC_LATE and (i + 1) * FRAME_SAMPLES <= len(mic):
            heard.append(mic[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES].tobytes())
            out.append(processor.process(heard[-1]))
            if realigned_at is None and processor.snapshot()["realigned"] == 2:
                realigned_at = (i - at) / 50
    part = slice((at - MIC_LATE) * FRAME_SAMPLES + 144000, (at - MIC_LATE) * FRAME_SAMPLES + 192000)
    erle = _db(_samples(heard)[part]) - _db(_samples(out)[part])
    stats = processor.snapshot()
    print(f"path jumped 100 ms: realigned {realigned_at} s on; ERLE {erle:.1f} dB 3-4 s on; {stats}")
    assert realigned_at is not None and realigned_at <= 2.0
    assert abs(stats["delay_ms"] * 48 - ECHO_DELAY - moved) <= 2
    assert erle >= 25


@pytest.mark.parametrize("moved", [12, 48])
def test_a_path_that_moves_with_no_xrun_reported_is_followed(tmp_path: Path, moved: int) -> None:
    """Replayed from a call on PulseAudio devices under load: the echo path moved by 0.25 ms (12 samples) with
    no xrun reported and the converged filter lost the echo for 1.5 s (ERLE 4-14 dB). Here it moves 12 or 48
    samples at frame 300: the filter's return loss falls, the path is looked for and followed. Before:
    ERLE 12.7 and 7.5 dB over the second after the next one; now 37.5 and 42.6 dB."""
    far = _speech(tmp_path / "far.wav", FAR + FAR)
    frames, at = len(far) // FRAME_SAMPLES, 300
    played = np.concatenate([far[: at * FRAME_SAMPLES], np.zeros(moved), far[at * FRAME_SAMPLES :]])
    mic = np.clip(_room(played), -32768, 32767).astype("<i2")
    processor, heard, out = EchoProcessor(), [], []
    for i in range(frames):
        processor.played(far[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES].astype("<i2").tobytes())
        if i >= MIC_LATE and (i + 1) * FRAME_SAMPLES <= len(mic):
            heard.append(mic[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES].tobytes())
            out.append(processor.process(heard[-1]))
    part = slice((at - MIC_LATE) * FRAME_SAMPLES + 96000, (at - MIC_LATE) * FRAME_SAMPLES + 144000)
    erle = _db(_samples(heard)[part]) - _db(_samples(out)[part])
    stats = processor.snapshot()
    print(f"path moved {moved} samples, no xrun: ERLE {erle:.1f} dB two seconds on; {stats}")
    assert erle >= 25
    assert stats["realigned"] == 1 and stats["delay_ms"] * 48 - ECHO_DELAY == moved
