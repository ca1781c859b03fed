"""PyAudio against our own ALSA configuration (tests/support/alsa/asound.conf): real PortAudio/ALSA devices
without a sound card. ALSA reads its configuration once per process, so device tests run in a subprocess:
`python -m tests.support.alsa capture|play ...` drives zcall.media's devices and prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.support.realtime import make_this_thread_realtime

ROOT = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).resolve().parent / "alsa" / "asound.conf"
PULSE_CONFIG = Path(__file__).resolve().parent / "alsa" / "pulse.conf"


@contextlib.contextmanager
def pulse_server(home: Path, modules: tuple[str, ...] = (), prefix: tuple[str, ...] = ()) -> Iterator[str]:
    """A private PulseAudio daemon (no D-Bus, no real card) with two null sinks, plus `modules` (each a
    "module-name args" line loaded after them), run under `prefix` (e.g. realtime_prefix()): yields its
    server address."""
    home.mkdir(parents=True, exist_ok=True)
    socket_path = home / "native"
    env = {**os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(home), "XDG_CONFIG_HOME": str(home)}
    proc = subprocess.Popen(
        [*prefix, "pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no",
         "--disable-shm=yes", "-L", "module-null-sink sink_name=zmic rate=48000 channels=1",
         "-L", "module-null-sink sink_name=zspeaker rate=48000 channels=1",
         "-L", f"module-native-protocol-unix socket={socket_path} auth-anonymous=1",
         *[arg for module in modules for arg in ("-L", module)]],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not socket_path.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("pulseaudio did not start")
            time.sleep(0.05)
        yield f"unix:{socket_path}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


def alsa_env(
    infile: Path | None = None, outfile: Path | None = None, config: Path = CONFIG, pulse: str | None = None
) -> dict[str, str]:
    env = dict(os.environ)
    env["ALSA_CONFIG_PATH"] = str(config)
    if pulse is not None:
        env["ZCALL_PULSE_SERVER"] = pulse
    env.pop("ZCALL_ALSA_INFILE", None)
    env.pop("ZCALL_ALSA_OUTFILE", None)
    if infile is not None:
        env["ZCALL_ALSA_INFILE"] = str(infile)
    if outfile is not None:
        env["ZCALL_ALSA_OUTFILE"] = str(outfile)
    return env


def run_probe(args: list[str], infile: Path | None = None, outfile: Path | None = None,
              timeout: float = 60, config: Path = CONFIG, pulse: str | None = None) -> dict[str, Any]:
    """Run this module as a subprocess under the test ALSA config; return its JSON result."""
    proc = subprocess.run(
        [sys.executable, "-m", "tests.support.alsa", *args], cwd=ROOT,
        env=alsa_env(infile, outfile, config, pulse), capture_output=True, text=True, timeout=timeout,
    )
    if proc.returncode != 0:
        raise AssertionError(f"probe {args} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["stderr"] = proc.stderr
    return result


def _capture(ns: argparse.Namespace) -> dict[str, Any]:
    from zcall.media.audiospec import open_source
    from zcall.media.devices import DeviceSource

    source = open_source(ns.device)
    assert isinstance(source, DeviceSource)
    frames: list[bytes] = []
    deadline = time.monotonic() + ns.seconds
    # First let the callback overrun the ring (nobody reads), then drain it.
    time.sleep(ns.idle)
    while time.monotonic() < deadline and len(frames) < ns.frames:
        frame = source.read_frame()
        if frame is None:
            time.sleep(0.001)
            continue
        frames.append(frame)
    source.close()
    Path(ns.out).write_bytes(b"".join(frames))
    return {"frames": len(frames), "dropped": source.dropped, "callbacks": source.callbacks,
            "sizes": sorted({len(f) for f in frames})}


def _play(ns: argparse.Namespace) -> dict[str, Any]:
    from zcall.media.audiospec import open_sink, open_source
    from zcall.media.devices import DeviceSink

    sink = open_sink(ns.device)
    assert isinstance(sink, DeviceSink)
    source = open_source(ns.source)
    written = 0
    deadline = time.monotonic() + ns.seconds
    while not sink.started and time.monotonic() < deadline:  # it refuses frames until it plays
        time.sleep(0.001)
    while written < ns.frames and time.monotonic() < deadline:
        if len(sink.ring) < sink.ring.capacity:
            sink.write_frame(source.read_frame() or b"")
            written += 1
        else:
            time.sleep(0.0005)
    # Give the callback time to drain what is queued, then overfill on purpose to count drops.
    while len(sink.ring) and time.monotonic() < deadline:
        time.sleep(0.001)
    sink.close()
    return {"written": written, "underruns": sink.underruns, "dropped": sink.dropped,
            "callbacks": sink.callbacks}


async def _session_call(seconds: float, realtime: bool) -> dict[str, Any]:
    from zcall.media.audio import NullSink, SilenceSource
    from zcall.media.devices import DeviceSink, DeviceSource
    from zcall.media.srtpkeys import SrtpKeys, SrtpProfile
    from zcall.media.stream import MediaSession

    key_a = SrtpKeys(SrtpProfile.AEAD_AES_128_GCM, bytes(range(16)), bytes(range(12)))
    key_b = SrtpKeys(SrtpProfile.AEAD_AES_128_GCM, bytes(range(16, 32)), bytes(range(12, 24)))
    a = MediaSession(DeviceSource("zcall_in"), NullSink())
    b = MediaSession(SilenceSource(), DeviceSink("zcall_out"))
    if realtime:  # the sessions' loop only: the unpaced devices' threads spin, they stay where they are
        make_this_thread_realtime()
    addr_a = await a.open(("127.0.0.1", 0))
    a.set_remote(await b.open(("127.0.0.1", 0), addr_a))
    a.start_srtp(key_a, key_b)
    b.start_srtp(key_b, key_a)
    await asyncio.sleep(seconds)
    result = {"a": a.stats(), "b": b.stats()}
    a.close()
    b.close()
    return result


def _session(ns: argparse.Namespace) -> dict[str, Any]:
    return asyncio.run(_session_call(ns.seconds, ns.realtime))


async def _paced_call(seconds: float, ear_out: Path, realtime: bool) -> dict[str, Any]:
    """A tone is played into the microphone's sink; session a captures the microphone in real time, session
    b plays to the speaker; we listen to the speaker's monitor."""
    from zcall.media.audio import NullSink, SilenceSource, ToneSource
    from zcall.media.devices import DeviceSink, DeviceSource
    from zcall.media.srtpkeys import SrtpKeys, SrtpProfile
    from zcall.media.stream import MediaSession

    key_a = SrtpKeys(SrtpProfile.AES_CM_128_HMAC_SHA1_80, bytes(range(16)), bytes(range(14)))
    key_b = SrtpKeys(SrtpProfile.AES_CM_128_HMAC_SHA1_80, bytes(range(16, 32)), bytes(range(14, 28)))
    feed, tone = DeviceSink("zcall_mic_feed"), ToneSource(440)
    ear = DeviceSource("zcall_ear", ring_frames=500)
    a = MediaSession(DeviceSource("zcall_mic"), NullSink())
    speaker = DeviceSink("zcall_speaker")
    if realtime:  # the sessions' loop, once the devices are open: their threads poll, and at real-time
        make_this_thread_realtime()  # priority starve the server's (5) and the loop (100 ms RR slices)
    b = MediaSession(SilenceSource(), speaker)
    addr_a = await a.open(("127.0.0.1", 0))
    a.set_remote(await b.open(("127.0.0.1", 0), addr_a))
    a.start_srtp(key_a, key_b)
    b.start_srtp(key_b, key_a)
    heard: list[bytes] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        while feed.started and len(feed.ring) < 3:  # it refuses frames until it plays
            feed.write_frame(tone.read_frame())
        while (frame := ear.read_frame()) is not None:
            heard.append(frame)
        await asyncio.sleep(0.01)
    result = {"a": a.stats(), "b": b.stats(), "speaker_underruns": speaker.underruns,
              "speaker_callbacks": speaker.callbacks, "speaker_ring_dropped": speaker.ring.dropped,
              "speaker_dropped": speaker.dropped, "ear_dropped": ear.dropped}
    a.close()
    b.close()
    feed.close()
    ear.close()
    ear_out.write_bytes(b"".join(heard))
    return result


def _paced_session(ns: argparse.Namespace) -> dict[str, Any]:
    return asyncio.run(_paced_call(ns.seconds, Path(ns.out), ns.realtime))


async def _echo_call(ns: argparse.Namespace) -> dict[str, Any]:
    """The desk unit (session a) on the PulseAudio microphone and speaker, whose playback the server loops
    back into the microphone (module-loopback: the echo path); a near-end talker speaks into the microphone
    from --near-at seconds. The far end (session b) plays --far and records what the unit sends."""
    from tests.support.media_peer import LeadIn
    from zcall.media import speakerphone
    from zcall.media.audio import AudioSink, SilenceSource, WavSink, WavSource
    from zcall.media.devices import DeviceSink, DeviceSource
    from zcall.media.srtpkeys import SrtpKeys, SrtpProfile
    from zcall.media.stream import MediaSession

    key_a = SrtpKeys(SrtpProfile.AES_CM_128_HMAC_SHA1_80, bytes(range(16)), bytes(range(14)))
    key_b = SrtpKeys(SrtpProfile.AES_CM_128_HMAC_SHA1_80, bytes(range(16, 32)), bytes(range(14, 28)))
    speaker = DeviceSink("zcall_speaker")
    if ns.record:  # every call into the processor, replayed without devices (tests/support/echo_record.py)
        from tests.support.echo_record import RecordingProcessor

        wanted = speakerphone.wanted(ns.echo_cancel, "zcall_mic", "zcall_speaker")
        recorder = RecordingProcessor(cancel_echo=wanted)
        source = speakerphone.ProcessedSource(DeviceSource("zcall_mic"), recorder)
        sink: AudioSink = speakerphone.ReferenceSink(speaker, recorder)
    else:
        source, sink = speakerphone.wrap(DeviceSource("zcall_mic"), speaker, ns.echo_cancel,
                                         "zcall_mic", "zcall_speaker")
    assert isinstance(source, speakerphone.ProcessedSource)
    a = MediaSession(source, sink)
    b = MediaSession(LeadIn(WavSource(ns.far, loop=False), 25), WavSink(ns.heard))
    feed = DeviceSink("zcall_mic_feed", ring_frames=8)
    near = LeadIn(WavSource(ns.near, loop=False), round(ns.near_at / 0.02)) if ns.near else SilenceSource()
    addr_a = await a.open(("127.0.0.1", 0))
    a.set_remote(await b.open(("127.0.0.1", 0), addr_a))
    a.start_srtp(key_a, key_b)
    b.start_srtp(key_b, key_a)
    mic = DeviceSource("zcall_mic", ring_frames=100)  # the raw microphone, for the test's own ERLE
    loop = asyncio.get_running_loop()
    start = loop.time()
    fed, recorded = 0, []
    stalls = sorted(float(t) for t in ns.stall_at.split(",") if t)
    while (now := loop.time() - start) < ns.seconds:
        if stalls and now >= stalls[0]:
            stalls.pop(0)
            _stall(ns.stall_ms / 1000)
        while fed < now / 0.02 + 2:  # the talker keeps pace with the clock, a frame or two ahead
            feed.write_frame(near.read_frame() or b"")
            fed += 1
        while (frame := mic.read_frame()) is not None:
            recorded.append(frame)
        await asyncio.sleep(0.01)
    result = {"a": a.stats(), "b": b.stats(), "echo": source.processor.snapshot(),
              "devices": {"mic_dropped": source.dropped, "speaker_dropped": speaker.dropped,
                          "speaker_ring_dropped": speaker.ring.dropped,
                          "speaker_underruns": speaker.underruns, "speaker_xruns": speaker.xruns,
                          "mic_xruns": getattr(getattr(source, "_source", None), "xruns", None),
                          "speaker_gaps": speaker.gap_clock.gaps,
                          "speaker_gap_ms": speaker.gap_clock.gap_samples / 48,
                          "speaker_rewinds": speaker.gap_clock.rewinds}}
    a.close()
    b.close()
    feed.close()
    mic.close()
    if ns.record:
        recorder.save(Path(ns.record))
    recording = WavSink(ns.heard + ".mic.wav")
    for frame in recorded:
        recording.write_frame(frame)
    recording.close()
    return result


def _stall(seconds: float) -> None:
    """The whole phone stalls (a busy loop that keeps the GIL): the event loop and the devices' callbacks
    wait, and the devices over- and underrun as they do on a loaded machine, but on cue."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(seconds + 0.1)  # no other thread gets the GIL before the stall is over
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass
    finally:
        sys.setswitchinterval(interval)


def _echo(ns: argparse.Namespace) -> dict[str, Any]:
    return asyncio.run(_echo_call(ns))


def _devices(_ns: argparse.Namespace) -> dict[str, Any]:
    from zcall.media.devices import list_devices

    return {"devices": list_devices()}


def _open_error(ns: argparse.Namespace) -> dict[str, Any]:
    from zcall.media.audio import AudioSpecError
    from zcall.media.audiospec import open_sink, open_source

    opener = open_source if ns.direction == "in" else open_sink
    try:
        opener(ns.device).close()
    except AudioSpecError as exc:
        return {"error": str(exc)}
    return {"error": None}


def main() -> None:
    parser = argparse.ArgumentParser(prog="tests.support.alsa")
    sub = parser.add_subparsers(dest="cmd", required=True)
    cap = sub.add_parser("capture")
    cap.add_argument("device")
    cap.add_argument("out")
    cap.add_argument("--frames", type=int, default=100)
    cap.add_argument("--idle", type=float, default=0.2)
    cap.add_argument("--seconds", type=float, default=10)
    play = sub.add_parser("play")
    play.add_argument("device")
    play.add_argument("source")
    play.add_argument("--frames", type=int, default=100)
    play.add_argument("--seconds", type=float, default=10)
    sub.add_parser("devices")
    session = sub.add_parser("session", help="a MediaSession pair: zcall_in -> SRTP on loopback -> zcall_out")
    session.add_argument("--seconds", type=float, default=2.0)
    session.add_argument("--realtime", action="store_true", help="the sessions' loop under SCHED_RR")
    paced = sub.add_parser("paced-session", help="a MediaSession pair on real-time PulseAudio devices")
    paced.add_argument("out")
    paced.add_argument("--seconds", type=float, default=3.0)
    paced.add_argument("--realtime", action="store_true", help="the sessions' loop under SCHED_RR")
    echo_call = sub.add_parser("echo-call", help="the desk unit with its speaker looped into its microphone")
    echo_call.add_argument("far")
    echo_call.add_argument("heard")
    echo_call.add_argument("--near", default="")
    echo_call.add_argument("--near-at", type=float, default=0.0)
    echo_call.add_argument("--echo-cancel", default="on")
    echo_call.add_argument("--seconds", type=float, default=10.0)
    echo_call.add_argument("--stall-at", default="", help="seconds into the call, comma-separated")
    echo_call.add_argument("--stall-ms", type=float, default=300.0)
    echo_call.add_argument("--record", default="", help="save what the echo processor was told (.npz)")
    err = sub.add_parser("open-error")
    err.add_argument("direction", choices=["in", "out"])
    err.add_argument("device")
    ns = parser.parse_args()
    handlers = {"capture": _capture, "play": _play, "devices": _devices, "open-error": _open_error,
                "session": _session, "paced-session": _paced_session, "echo-call": _echo}
    print(json.dumps(handlers[ns.cmd](ns)))


if __name__ == "__main__":
    main()
