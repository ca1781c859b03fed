"""Media path benchmark: CPU of a two-way call split into libopus / libsrtp / our Python, and the latency the
session adds between capture and playback (device buffers excluded). Prints figures; asserts only sanity.

Anchors: goal ≤ 5 % of one core for the whole path at complexity 9 with Python ≤ 30 % of it; added latency
≤ 40 ms (Linphone's playback buffer alone is 60 ms, baresip's 100–200 ms).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import resource
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import opuslib.api.decoder as opus_dec
import pylibsrtp

from zcall.media import codec
from zcall.media.audio import ToneSource
from zcall.media.codec import FRAME_BYTES, FRAME_SAMPLES, OpusDecoder, OpusEncoder
from zcall.media.rtp import RtpPacket
from zcall.media.srtp import SrtpReceiver, SrtpSender
from zcall.media.srtpkeys import SrtpKeys, SrtpProfile
from zcall.media.stream import MediaSession

KEY_A = SrtpKeys(SrtpProfile.AES_CM_128_HMAC_SHA1_80, bytes(range(16)), bytes(range(50, 64)))
KEY_B = SrtpKeys(SrtpProfile.AES_CM_128_HMAC_SHA1_80, bytes(range(16, 32)), bytes(range(70, 84)))
CALL_SECONDS = 12.0
CLICK_EVERY = 25  # frames (0.5 s)
CLICK_AT = 300  # sample offset of the click inside its frame


class ClickSource:
    """Silence with a short 2 kHz burst every CLICK_EVERY frames; notes when each burst was handed over."""

    paced = False

    def __init__(self) -> None:
        self.frames = 0
        self.sent_at: list[float] = []
        burst = np.sin(2 * np.pi * 2000 * np.arange(48) / 48000) * np.hanning(48) * 20000
        click = np.zeros(FRAME_SAMPLES)
        click[CLICK_AT : CLICK_AT + 48] = burst
        self._click = click.astype("<i2").tobytes()

    def read_frame(self) -> bytes:
        self.frames += 1
        if self.frames % CLICK_EVERY:
            return bytes(FRAME_BYTES)
        self.sent_at.append(time.monotonic() + CLICK_AT / 48000)
        return self._click

    def close(self) -> None:
        pass


class ClickSink:
    """Notes when each burst reaches playback (frame hand-over time plus its offset inside the frame)."""

    def __init__(self) -> None:
        self.heard_at: list[float] = []

    def write_frame(self, pcm: bytes) -> None:
        x = np.abs(np.frombuffer(pcm, "<i2"))
        if x.max() > 8000:
            self.heard_at.append(time.monotonic() + int(np.argmax(x)) / 48000)

    def close(self) -> None:
        pass


class NullSink:
    def write_frame(self, pcm: bytes) -> None:
        pass

    def close(self) -> None:
        pass


class TimedSource:
    """A test source with its CPU time measured in place (it is not part of the media path)."""

    def __init__(self, inner: Any, spent: dict[str, float]) -> None:
        self._inner, self._spent = inner, spent
        self.paced = bool(getattr(inner, "paced", False))

    def read_frame(self) -> bytes | None:
        start = time.thread_time()
        try:
            frame: bytes | None = self._inner.read_frame()
            return frame
        finally:
            self._spent["harness"] += time.thread_time() - start
            self._spent["calls"] += 1

    def close(self) -> None:
        self._inner.close()


class TimedSink:
    """A test sink with its CPU time measured in place."""

    def __init__(self, inner: Any, spent: dict[str, float]) -> None:
        self._inner, self._spent = inner, spent

    def write_frame(self, pcm: bytes) -> None:
        start = time.thread_time()
        try:
            self._inner.write_frame(pcm)
        finally:
            self._spent["harness"] += time.thread_time() - start
            self._spent["calls"] += 1

    def close(self) -> None:
        self._inner.close()


def _per_call_us(fn: Callable[[], object], count: int) -> float:
    start = time.process_time()
    for _ in range(count):
        fn()
    return (time.process_time() - start) / count * 1e6


def _cycle(frames: list[bytes]) -> Callable[[], bytes]:
    it = itertools.cycle(frames)
    return lambda: next(it)


@contextlib.contextmanager
def _library_timers() -> Iterator[dict[str, float]]:
    """Thread CPU time spent inside libopus and libsrtp calls (their ctypes/cffi bindings included) while the
    call runs: measured in place, so cold caches between frames count where they belong."""
    spent = {"libopus": 0.0, "libsrtp": 0.0, "harness": 0.0, "calls": 0.0}
    patched: list[tuple[Any, str, Any]] = []

    def wrap(owner: Any, name: str, key: str) -> None:
        original = getattr(owner, name)

        def timed(*args: Any) -> Any:
            start = time.thread_time()
            try:
                return original(*args)
            finally:
                spent[key] += time.thread_time() - start
                spent["calls"] += 1

        patched.append((owner, name, original))
        setattr(owner, name, timed)

    wrap(codec, "_opus_encode", "libopus")
    wrap(opus_dec, "libopus_decode", "libopus")
    for name in ("protect", "unprotect", "protect_rtcp", "unprotect_rtcp"):
        wrap(pylibsrtp.Session, name, "libsrtp")
    try:
        yield spent
    finally:
        for owner, name, original in patched:
            setattr(owner, name, original)


def _timer_overhead_s() -> float:
    """CPU a timing wrapper costs outside its own measured interval, per call (taken out of 'our Python')."""

    def noop() -> None:
        pass

    holder = type("Holder", (), {"noop": staticmethod(noop)})
    with _library_timers_on(holder, "noop") as spent:
        start = time.process_time()
        for _ in range(20000):
            holder.noop()
        total = time.process_time() - start
    return max(0.0, (total - spent["x"]) / 20000)


@contextlib.contextmanager
def _library_timers_on(owner: Any, name: str) -> Iterator[dict[str, float]]:
    spent = {"x": 0.0}
    original = getattr(owner, name)

    def timed(*args: Any) -> Any:
        start = time.thread_time()
        try:
            return original(*args)
        finally:
            spent["x"] += time.thread_time() - start

    setattr(owner, name, timed)
    try:
        yield spent
    finally:
        setattr(owner, name, original)


def _tight_loop_costs_us() -> dict[str, float]:
    """Per-frame costs with warm caches, for reference (b's tone)."""
    tone = ToneSource(440)
    frames = [tone.read_frame() for _ in range(50)]
    enc, dec = OpusEncoder(complexity=9), OpusDecoder()
    packets = [enc.encode(f) for f in frames]
    next_frame, next_packet = _cycle(frames), _cycle(packets)
    sender, receiver = SrtpSender(KEY_A), SrtpReceiver(KEY_A)
    rtps = [RtpPacket(111, i, i * 960, 1, packets[i % 50]).serialize() for i in range(2000)]
    protected, plain = iter([sender.protect(p) for p in rtps[:1000]]), iter(rtps[1000:])
    return {
        "opus_encode": _per_call_us(lambda: enc.encode(next_frame()), 500),
        "opus_decode": _per_call_us(lambda: dec.decode(next_packet()), 1000),
        "srtp_protect": _per_call_us(lambda: sender.protect(next(plain)), 1000),
        "srtp_unprotect": _per_call_us(lambda: receiver.unprotect(next(protected)), 1000),
    }


async def _call(spent: dict[str, float]) -> tuple[float, float, dict[str, float], ClickSource, ClickSink,
                                                 dict[str, Any]]:
    source, sink = ClickSource(), ClickSink()
    # Our test sources and sinks are not part of the media path: their CPU is measured where it is spent
    # (cold caches between frames included) and taken out.
    a = MediaSession(TimedSource(source, spent), TimedSink(NullSink(), spent), complexity=9)
    b = MediaSession(TimedSource(ToneSource(440), spent), TimedSink(sink, spent), complexity=9)
    addr_a = await a.open(("127.0.0.1", 0))
    addr_b = await b.open(("127.0.0.1", 0), addr_a)
    a.set_remote(addr_b)
    a.start_srtp(KEY_A, KEY_B)
    b.start_srtp(KEY_B, KEY_A)
    await asyncio.sleep(1.0)  # settle: first reports, jitter buffer start-up
    libs0 = dict(spent)
    before, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    await asyncio.sleep(CALL_SECONDS)
    after, wall = resource.getrusage(resource.RUSAGE_SELF), time.monotonic() - wall0
    libs = {k: (v - libs0[k]) / wall for k, v in spent.items()}  # per second; "calls" too
    stats = b.stats()
    a.close()
    b.close()
    user = (after.ru_utime - before.ru_utime) / wall
    kernel = (after.ru_stime - before.ru_stime) / wall
    return user, kernel, libs, source, sink, stats


def test_media_path_cpu_and_latency() -> None:
    loop_costs = _tight_loop_costs_us()
    overhead = _timer_overhead_s()
    with _library_timers() as spent:
        user, kernel, libs, source, sink, stats = asyncio.run(_call(spent))
    user -= libs["calls"] * overhead  # the timing wrappers' own cost is not the media path's
    harness = libs["harness"]
    # Two endpoints ran in this process: halve everything for one endpoint of the two-way call.
    total = (user + kernel - harness) / 2
    opus, srtp = libs["libopus"] / 2, libs["libsrtp"] / 2
    python = max(0.0, user / 2 - harness / 2 - opus - srtp)
    print()
    print("tight-loop µs per 20 ms frame (warm caches):", {k: round(v, 1) for k, v in loop_costs.items()})
    print(f"one endpoint of a two-way call, complexity 9: {total * 100:.2f} % of one core "
          f"(goal ≤ 5 %: ratio {total * 100 / 5:.2f})")
    print(f"  libopus {opus * 100:.2f} %  libsrtp {srtp * 100:.3f} %  our Python {python * 100:.2f} %  "
          f"kernel (UDP, epoll) {kernel / 2 * 100:.2f} %")
    print(f"  (excluded: test sources and sinks {harness / 2 * 100:.3f} % measured in place, timing wrappers "
          f"{libs['calls'] * overhead / 2 * 100:.2f} %)")
    share = python / total if total else 0.0
    print(f"  Python share {share * 100:.1f} % of the path (goal ≤ 30 %: ratio {share / 0.30:.2f})")
    echo_ms, _report = _echo_per_frame_ms()
    whole = total * 100 + echo_ms / 20 * 100
    print(f"  with echo cancellation + NS + AGC ({echo_ms:.3f} ms per 20 ms frame): {whole:.2f} % of one core"
          f" (goal ≤ 5 %: ratio {whole / 5:.2f})")
    # The call path above is measured in place, where each tick wakes from a 20 ms sleep; the loop above
    # keeps the processor's caches warm. Run as in a call, it costs more, and so does all code here.
    paced_ms, _report = _echo_per_frame_ms(frames=500, pace_s=0.02)
    loop_ms, _report = _echo_per_frame_ms(frames=500)
    in_place = total * 100 + paced_ms / 20 * 100
    print(f"  the processor run as in a call, a frame every 20 ms: {paced_ms:.3f} ms per frame against "
          f"{loop_ms:.3f} in a loop (10 s); the path with it: {in_place:.2f} % (ratio {in_place / 5:.2f})")
    hot_us, woken_us = _wake_penalty_us()
    print(f"  (here, code run just after a 20 ms sleep is slower: a fixed piece of Python {hot_us:.1f} µs "
          f"in a loop, {woken_us:.1f} µs woken)")

    pairs = list(zip(source.sent_at, sink.heard_at, strict=False))
    latencies = [(heard - sent) * 1000 for sent, heard in pairs]
    settled = latencies[len(latencies) // 2 :]  # the jitter buffer starts deeper and shrinks to its floor
    median = statistics.median(settled)
    first = [round(x, 1) for x in latencies[:3]]
    print(f"added latency capture→playback (device buffers excluded), ms: first {first}")
    print(f"  settled: median {median:.1f}  min {min(settled):.1f}  max {max(settled):.1f} "
          f"(goal ≤ 40 ms: ratio {median / 40:.2f}; Linphone's buffer alone 60 ms: ratio {median / 60:.2f}; "
          f"baresip 100–200 ms: ratio {median / 150:.2f})")
    print("  receiver:", {k: stats[k] for k in ("received", "lost", "jitter_ms", "jitter_buffer_ms", "mos")})
    assert len(pairs) >= CALL_SECONDS * 50 / CLICK_EVERY - 4
    assert all(0 < lat < 500 for lat in latencies)


def _wake_penalty_us() -> tuple[float, float]:
    """The same small piece of work (median µs) called in a loop and called once after each 20 ms sleep."""

    def work() -> int:
        return sum(range(300))

    def timed() -> float:
        start = time.perf_counter()
        work()
        return (time.perf_counter() - start) * 1e6

    hot = statistics.median(timed() for _ in range(200))
    woken = []
    for _ in range(100):
        time.sleep(0.02)
        woken.append(timed())
    return hot, statistics.median(woken)


def _echo_per_frame_ms(frames: int = 1500, pace_s: float = 0.0) -> tuple[float, dict[str, Any]]:
    """CPU ms per 20 ms frame of echo cancellation + NS + AGC (libspeexdsp), far-end speech-like noise
    playing and its echo in the microphone; with the processor's own report. Frame after frame in a loop, or
    with `pace_s` of sleep between frames, as in a call (CPU then counted while the processor runs)."""
    from zcall.media.echo import EchoProcessor

    rng = np.random.default_rng(5)
    far = (rng.normal(0, 3000, frames * FRAME_SAMPLES) * np.repeat(rng.random(frames) > 0.3, FRAME_SAMPLES))
    echo = np.concatenate([np.zeros(4800), far])[: len(far)] * 0.2 + rng.normal(0, 30, len(far))
    far16, mic16 = far.astype("<i2"), echo.astype("<i2")
    processor = EchoProcessor()
    spent, start = 0.0, time.process_time()
    for i in range(frames):
        processor.played(far16[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES].tobytes())
        processor.process(mic16[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES].tobytes())
        if pace_s:
            spent += time.process_time() - start
            time.sleep(pace_s)
            start = time.process_time()
    spent += time.process_time() - start
    return spent / frames * 1000, processor.snapshot()


def test_echo_cancellation_cost_and_latency() -> None:
    """Echo cancellation + noise suppression + AGC (libspeexdsp) per 20 ms frame. Anchors (issue 15): the
    whole call path <= 5 % of one core (3.4 % before the canceller; test_media_path_cpu_and_latency adds the
    two measured in one run), added latency <= 10 ms."""
    from zcall.media.echo import EchoProcessor

    rng = np.random.default_rng(6)
    per_frame_ms, report = _echo_per_frame_ms()
    # Latency: speech-like noise through a fresh processor (no far end), the lag of the output behind it.
    fresh = EchoProcessor()
    probe = (rng.normal(0, 4000, 100 * FRAME_SAMPLES) * np.repeat(rng.random(100) > 0.5, FRAME_SAMPLES))
    probe16 = probe.astype("<i2")
    out = np.frombuffer(b"".join(fresh.process(probe16[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES].tobytes())
                                 for i in range(100)), "<i2").astype(np.float64)
    corr = np.correlate(out[4800 - 2400 : -4800 + 2400], probe[4800:-4800], mode="valid")
    added_ms = (int(np.argmax(corr)) - 2400) / 48  # out[k] = probe[k - lag]
    share = per_frame_ms / 20 * 100
    print(f"\necho cancel + NS + AGC: {per_frame_ms:.3f} ms CPU per 20 ms frame = {share:.2f} % of a core"
          f" (whole-path goal 5 %, path before it 3.4 %: {(3.4 + share) / 5:.2f}x the goal);"
          f" added latency {added_ms:.1f} ms (goal 10 ms: {added_ms / 10:.2f}x); {report}")
    assert per_frame_ms < 20
    assert abs(added_ms) <= 10
