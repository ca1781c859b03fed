"""Received audio to the speaker: authenticated RTP (and the blocks of RED packets) → jitter buffer → Opus
(decode, in-band FEC, concealment) → one 20 ms frame per tick. Packets are decoded whole, whatever they last
(10/20/40/60 ms): decoded audio waits in a small queue, and the jitter buffer is asked for the next packet
whenever under 20 ms remain."""

from __future__ import annotations

from collections import Counter

import numpy as np

from zcall.media import red
from zcall.media.codec import FRAME_BYTES, CodecError, OpusDecoder
from zcall.media.jitter import JitterBuffer, PlayoutKind
from zcall.media.rtp import RtpPacket

_MAX_POPS_PER_TICK = 8  # 2.5 ms packets would need 8 for one 20 ms frame
# -45 dBFS RMS: quieter than any syllable at speaking level, louder than a quiet room through a desk mic.
_QUIET_MEAN_SQUARE = (32768 * 10 ** (-45 / 20)) ** 2


class Playout:
    """The receive side of one call: `accepts(pt)`, `push(packet, now)`, and `frame(now)` once per tick."""

    def __init__(
        self, payload_type: int, *, min_ms: int, max_ms: int, drops: Counter[str], counters: Counter[str]
    ) -> None:
        # What we accept: the PT our own SDP gave Opus and the peer's (RFC 3264 lets them differ).
        self._pts = {payload_type}
        self._red_pt: int | None = None
        self.jitter = JitterBuffer(clock_rate=48000, frame_ms=20, min_ms=min_ms, max_ms=max_ms)
        self._decoder = OpusDecoder()
        self._decoded_any = False
        self._played = bytearray()  # decoded audio not yet played (a packet longer than 20 ms)
        self._drops = drops
        self._counters = counters

    def accept_payload_type(self, payload_type: int) -> None:
        self._pts.add(payload_type)

    def set_red(self, red_payload_type: int | None) -> None:
        self._red_pt = red_payload_type

    def accepts(self, payload_type: int) -> bool:
        return payload_type in self._pts or payload_type == self._red_pt

    def push(self, packet: RtpPacket, now: float) -> None:
        if packet.payload_type == self._red_pt:
            self._push_red(packet, now)
        else:
            self.jitter.push(packet, now * 1000.0)

    def _push_red(self, packet: RtpPacket, now: float) -> None:
        """Each block of a RED packet as the packet it stands for (older ones first; copies of frames already
        here are the jitter buffer's duplicates)."""
        try:
            blocks = red.parse(packet.payload, packet.payload_type)
        except red.RedError as exc:
            self._drops[f"red-{exc.reason}"] += 1
            return
        frame = self.jitter.frame_samples
        for block in blocks:
            if block.payload_type not in self._pts or not block.payload:
                self._drops["red-block-payload-type" if block.payload else "red-empty-block"] += 1
                continue
            back = round(block.ts_offset / frame)
            if back and block.ts_offset != back * frame:
                self._drops["red-offset"] += 1
                continue
            copy = RtpPacket(block.payload_type, (packet.sequence - back) & 0xFFFF,
                             (packet.timestamp - block.ts_offset) & 0xFFFFFFFF, packet.ssrc, block.payload,
                             marker=packet.marker and not back)
            self.jitter.push(copy, now * 1000.0)
            if back:
                self._counters["red_blocks"] += 1

    def frame(self, now: float) -> bytes:
        """The next 20 ms to play (silence when nothing is there)."""
        out = self._played
        for _ in range(_MAX_POPS_PER_TICK):
            if len(out) >= FRAME_BYTES:
                break
            out += self._next_decoded(now)
        if len(out) < FRAME_BYTES:
            out += bytes(FRAME_BYTES - len(out))
        frame = bytes(out[:FRAME_BYTES])
        del out[:FRAME_BYTES]
        return frame

    def _next_decoded(self, now: float) -> bytes:
        jitter = self.jitter
        out = jitter.pop(now * 1000.0)
        samples = jitter.frame_samples
        pcm: bytes
        try:
            if out.kind is PlayoutKind.PLAY and out.payload is not None:
                pcm = self._decoder.decode(out.payload)
                self._decoded_any = True
            elif out.kind is PlayoutKind.FEC and out.payload is not None:
                pcm = self._decoder.decode_fec(out.payload, samples)
            elif out.kind is PlayoutKind.CONCEAL and self._decoded_any:
                pcm = self._decoder.conceal(samples)
            else:
                pcm = bytes(2 * samples)
        except CodecError:
            self._drops["undecodable"] += 1
            pcm = self._decoder.conceal(samples) if self._decoded_any else bytes(2 * samples)
        if jitter.wants_level:
            jitter.note_level(is_quiet(pcm))
        return pcm


def is_quiet(pcm: bytes) -> bool:
    """Below speech level (a pause, room noise): where the jitter buffer may drop a frame unheard."""
    samples = np.frombuffer(pcm, "<i2", len(pcm) // 2).astype(np.float32)
    return bool(samples.size == 0 or float(np.dot(samples, samples)) < _QUIET_MEAN_SQUARE * samples.size)
