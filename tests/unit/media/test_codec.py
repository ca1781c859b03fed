"""Opus through opuslib.api: settings really reach libopus, FEC really recovers, bad packets are refused."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import audio_check
from tests.support.prereq import require_binary
from zcall.media.audio import read_wav_48k_mono
from zcall.media.codec import FRAME_BYTES, FRAME_SAMPLES, CodecError, OpusDecoder, OpusEncoder


@pytest.fixture(scope="module")
def speech_frames(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    require_binary("espeak-ng", "sox")
    path = audio_check.speech_wav(Path(tmp_path_factory.mktemp("speech")) / "speech.wav",
                                  "Secure calls need matching words. Read them aloud.")
    pcm = read_wav_48k_mono(path).astype(np.float64)
    pcm = (pcm / np.max(np.abs(pcm)) * 20000).astype("<i2")
    count = len(pcm) // FRAME_SAMPLES
    return [pcm[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES].tobytes() for i in range(count)]


def _tone(hz: float, frames: int) -> list[bytes]:
    n = np.arange(frames * FRAME_SAMPLES)
    pcm = (10000 * np.sin(2 * math.pi * hz * n / 48000)).astype("<i2")
    return [pcm[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES].tobytes() for i in range(frames)]


def _snr_db(reference: list[bytes], test: list[bytes]) -> float:
    ref = np.frombuffer(b"".join(reference), "<i2").astype(np.float64)
    out = np.frombuffer(b"".join(test), "<i2").astype(np.float64)
    return float(10 * np.log10(np.sum(ref**2) / max(np.sum((ref - out) ** 2), 1e-9)))


def test_settings_reach_libopus() -> None:
    enc = OpusEncoder(bitrate=24000, complexity=5, fec=True, dtx=True, expected_loss_pct=15)
    assert (enc.bitrate, enc.complexity, enc.fec, enc.dtx) == (24000, 5, True, True)
    assert enc.expected_loss_pct == 15
    enc = OpusEncoder(fec=False, dtx=False, expected_loss_pct=0)
    assert (enc.bitrate, enc.complexity, enc.fec, enc.dtx) == (32000, 9, False, False)
    assert enc.expected_loss_pct == 0
    enc.set_expected_loss(140)
    assert enc.expected_loss_pct == 100
    assert not enc.fec  # FEC not allowed stays off whatever the loss


def test_fec_is_on_only_while_loss_is_expected() -> None:
    enc = OpusEncoder(fec=True, expected_loss_pct=0)
    assert not enc.fec
    enc.set_expected_loss(10)
    assert enc.fec
    enc.set_expected_loss(0)
    assert not enc.fec


def test_round_trip_keeps_a_tone() -> None:
    enc, dec = OpusEncoder(), OpusDecoder()
    out = [dec.decode(enc.encode(frame)) for frame in _tone(1000, 50)]
    assert all(len(frame) == FRAME_BYTES for frame in out)
    pcm = np.frombuffer(b"".join(out[10:]), "<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(pcm))
    assert abs(np.argmax(spectrum) * 48000 / len(pcm) - 1000) < 10


def test_bitrate_controls_packet_size(speech_frames: list[bytes]) -> None:
    sizes = {}
    for bitrate in (12000, 48000):
        enc = OpusEncoder(bitrate=bitrate, fec=False)
        sizes[bitrate] = sum(len(enc.encode(f)) for f in speech_frames) / len(speech_frames)
    assert sizes[48000] > 2 * sizes[12000]
    assert sizes[12000] * 8 * 50 < 12000 * 1.3


def test_dtx_shrinks_silence() -> None:
    silent = [bytes(FRAME_BYTES)] * 100
    sizes = {}
    for dtx in (False, True):
        enc = OpusEncoder(dtx=dtx)
        sizes[dtx] = [len(enc.encode(f)) for f in silent][20:]
    # With DTX nearly every silent frame is a 1-byte "nothing" (a comfort-noise update every 400 ms).
    assert sum(n <= 2 for n in sizes[True]) >= 0.85 * len(sizes[True])
    assert min(sizes[False]) > 2


def _lose(packets: list[bytes], lost: set[int], mode: str) -> list[bytes]:
    dec = OpusDecoder()
    out = []
    for i, packet in enumerate(packets):
        if i not in lost:
            out.append(dec.decode(packet))
        elif mode == "fec":
            out.append(dec.decode_fec(packets[i + 1]))
        else:
            out.append(dec.conceal())
    return out


def test_fec_recovers_lost_speech_better_than_plc(speech_frames: list[bytes]) -> None:
    results = {}
    for fec in (True, False):
        enc = OpusEncoder(fec=fec, expected_loss_pct=10)
        packets = [enc.encode(f) for f in speech_frames]
        clean_dec = OpusDecoder()
        clean = [clean_dec.decode(p) for p in packets]
        lost = set(range(5, len(packets) - 1, 7))
        picks = sorted(lost)
        for mode in ("fec", "plc"):
            out = _lose(packets, lost, mode)
            results[(fec, mode)] = _snr_db([clean[i] for i in picks], [out[i] for i in picks])
    print("SNR of lost frames vs clean decode (dB):", {k: round(v, 1) for k, v in results.items()})
    # FEC on: the next packet carries a coarse copy of the lost one.
    assert results[(True, "fec")] > results[(True, "plc")] + 4
    # FEC off: decode_fec can only conceal, so it is no better than PLC (shows the comparison can fail).
    assert results[(False, "fec")] < results[(False, "plc")] + 1.5


def test_conceal_without_history_is_a_frame() -> None:
    assert OpusDecoder().conceal() == bytes(FRAME_BYTES)


@pytest.mark.parametrize("size", [0, 959 * 2, FRAME_BYTES + 2])
def test_encode_rejects_wrong_frame_size(size: int) -> None:
    with pytest.raises(CodecError) as info:
        OpusEncoder().encode(bytes(size))
    assert info.value.reason == "frame-size"


def test_decode_rejects_empty_and_oversize() -> None:
    dec = OpusDecoder()
    for payload, reason in ((b"", "empty"), (bytes(7651), "too-long")):
        with pytest.raises(CodecError) as info:
            dec.decode(payload)
        assert info.value.reason == reason
        with pytest.raises(CodecError):
            dec.decode_fec(payload)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=1600))
def test_fuzz_decode_never_crashes(payload: bytes) -> None:
    dec = OpusDecoder()
    try:
        pcm = dec.decode(payload)
    except CodecError as exc:
        assert exc.reason in ("empty", "too-long", "decode")
    else:
        assert len(pcm) % 2 == 0 and len(pcm) <= 5760 * 2
    try:
        assert len(dec.decode_fec(payload)) == FRAME_BYTES
    except CodecError as exc:
        assert exc.reason in ("empty", "too-long", "decode")
