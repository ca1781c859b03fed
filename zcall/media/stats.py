"""Reception statistics (RFC 3550 A.1/A.3/A.8), RTT from SR/RR (RFC 3550 §6.4.1), E-model MOS (ITU-T G.107).

Times are seconds on the caller's monotonic clock. RTT matches report blocks to the SRs we sent by their LSR
value, so no wall clock and no knowledge of our own SSRC is needed.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

from zcall.media.rtp import ReceiverReport, ReportBlock, RtcpPacket, RtpPacket, SenderReport

_SR_MEMORY = 16  # SRs we remember for matching LSR echoes
_MAX_DROPOUT = 3000  # RFC 3550 A.1: a sequence jump this large restarts the count
_MAX_MISORDER = 100

# ---- E-model (ITU-T G.107, narrowband, default parameters) ----
# R0 - Is with every other G.107 parameter at its default: the familiar 93.2.
_R_DEFAULT = 93.2
# ITU-T publishes no Ie/Bpl for Opus (G.113 Appendix I lists G.711, G.729, AMR and others). We use the
# values G.113 Appendix I gives G.711 with packet loss concealment, Ie = 0 and Bpl = 25.1, as a conservative
# stand-in: Opus at 32 kbit/s wideband with PLC rates at least as well as G.711 without loss, and conceals
# better. Loss is counted before FEC repairs it, which also errs on the low side.
OPUS_IE = 0.0
OPUS_BPL = 25.1
# Mouth-to-ear delay beyond network and jitter buffer: one 20 ms frame of packetisation, Opus's 6.5 ms
# look-ahead and about 20 ms of capture/playback buffering.
_FIXED_DELAY_MS = 46.5


def e_model_r(loss_pct: float, one_way_delay_ms: float, ie: float = OPUS_IE, bpl: float = OPUS_BPL,
              burst_ratio: float = 1.0) -> float:
    """G.107 rating R = R0 - Is - Id - Ie,eff (A = 0); Id is the delay term Idd (echo assumed cancelled)."""
    ppl = min(max(loss_pct, 0.0), 100.0)
    ie_eff = ie + (95.0 - ie) * ppl / (ppl / burst_ratio + bpl)
    idd = 0.0
    if one_way_delay_ms > 100.0:
        x = math.log2(one_way_delay_ms / 100.0)
        idd = 25.0 * ((1 + x**6) ** (1 / 6) - 3 * (1 + (x / 3) ** 6) ** (1 / 6) + 2)
    return _R_DEFAULT - idd - ie_eff


def r_to_mos(r: float) -> float:
    """G.107 Annex B mapping from R to the estimated conversational MOS."""
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6


def mos_estimate(loss_pct: float, one_way_delay_ms: float) -> float:
    return r_to_mos(e_model_r(loss_pct, one_way_delay_ms))


class MediaStats:
    """Send/receive counters for one call's single audio stream each way."""

    def __init__(self, clock_rate: int = 48000) -> None:
        self.clock_rate = clock_rate
        self.packets_sent = 0
        self.octets_sent = 0
        self.packets_received = 0
        self.octets_received = 0
        self.rtt_s: float | None = None
        # What the far end reports about our stream.
        self.remote_fraction_lost: float | None = None
        self.remote_jitter_ms: float | None = None
        self._sent_srs: OrderedDict[int, float] = OrderedDict()  # LSR value -> when we sent it
        self._last_sr_lsr = 0
        self._last_sr_at: float | None = None
        self._ssrc: int | None = None
        self._reset_source()

    def _reset_source(self) -> None:
        self._base_seq = 0
        self._max_seq = 0
        self._cycles = 0
        self._received = 0
        self._expected_prior = 0
        self._received_prior = 0
        self._bad_seq: int | None = None
        self._jitter = 0.0  # RTP timestamp units, RFC 3550 A.8
        self._transit: int | None = None

    # ------------------------------------------------------------------ sending side

    def on_sent(self, payload_len: int, rtp_timestamp: int, now: float) -> None:
        del rtp_timestamp, now  # kept in the signature so a future SR can extrapolate the RTP clock
        self.packets_sent += 1
        self.octets_sent += payload_len

    def on_sr_sent(self, ntp_timestamp: int, now: float) -> None:
        lsr = (ntp_timestamp >> 16) & 0xFFFFFFFF
        self._sent_srs[lsr] = now
        while len(self._sent_srs) > _SR_MEMORY:
            self._sent_srs.popitem(last=False)

    # ------------------------------------------------------------------ receiving side

    def on_received(self, packet: RtpPacket, now: float) -> None:
        if packet.ssrc != self._ssrc:
            self._ssrc = packet.ssrc
            self._reset_source()
            self._base_seq = self._max_seq = packet.sequence
        elif not self._update_seq(packet.sequence):
            return
        self._received += 1
        self.packets_received += 1
        self.octets_received += len(packet.payload)
        self._update_jitter(packet.timestamp, now)

    def _update_seq(self, seq: int) -> bool:
        """RFC 3550 A.1 without the start-up probation; returns False for a packet not to be counted."""
        delta = (seq - self._max_seq) & 0xFFFF
        if delta < _MAX_DROPOUT:
            if seq < self._max_seq:
                self._cycles += 1 << 16
            self._max_seq = seq
        elif delta <= 0x10000 - _MAX_MISORDER:
            # A big jump: accept it only when the next packet follows it (the sender restarted).
            if seq != self._bad_seq:
                self._bad_seq = (seq + 1) & 0xFFFF
                return False
            ssrc = self._ssrc
            self._reset_source()
            self._ssrc = ssrc
            self._base_seq = self._max_seq = seq
        # else: duplicate or reordered within the misorder window; counted, as A.1 does
        return True

    def _update_jitter(self, rtp_timestamp: int, now: float) -> None:
        arrival = int(now * self.clock_rate)
        transit = (arrival - rtp_timestamp) & 0xFFFFFFFF
        if self._transit is not None:
            d = (transit - self._transit) & 0xFFFFFFFF
            if d >= 0x80000000:
                d -= 0x100000000
            self._jitter += (abs(d) - self._jitter) / 16.0
        self._transit = transit

    @property
    def expected(self) -> int:
        if self._ssrc is None:
            return 0
        return self._cycles + self._max_seq - self._base_seq + 1

    @property
    def lost(self) -> int:
        return self.expected - self._received

    @property
    def jitter_ms(self) -> float:
        return self._jitter * 1000.0 / self.clock_rate

    def report_block(self, now: float) -> ReportBlock | None:
        """The block for our next SR/RR about the stream we receive (RFC 3550 A.3); None before any packet."""
        if self._ssrc is None:
            return None
        expected = self.expected
        expected_interval = expected - self._expected_prior
        received_interval = self._received - self._received_prior
        self._expected_prior, self._received_prior = expected, self._received
        lost_interval = expected_interval - received_interval
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = (lost_interval << 8) // expected_interval
        cumulative = max(-(1 << 23), min(self.lost, (1 << 23) - 1))
        dlsr = 0
        if self._last_sr_at is not None:
            dlsr = min(int((now - self._last_sr_at) * 65536), 0xFFFFFFFF)
        return ReportBlock(
            ssrc=self._ssrc,
            fraction_lost=min(fraction, 255),
            cumulative_lost=cumulative,
            highest_sequence=(self._cycles + self._max_seq) & 0xFFFFFFFF,
            jitter=min(int(self._jitter), 0xFFFFFFFF),
            lsr=self._last_sr_lsr,
            dlsr=dlsr,
        )

    def on_rtcp(self, packet: RtcpPacket, now: float) -> None:
        if isinstance(packet, SenderReport):
            self._last_sr_lsr = (packet.ntp_timestamp >> 16) & 0xFFFFFFFF
            self._last_sr_at = now
        if isinstance(packet, SenderReport | ReceiverReport):
            for block in packet.reports:
                self._on_report_block(block, now)

    def _on_report_block(self, block: ReportBlock, now: float) -> None:
        sent_at = self._sent_srs.get(block.lsr) if block.lsr else None
        if sent_at is None:
            return  # about someone else's stream, or an SR we no longer remember
        rtt = now - sent_at - block.dlsr / 65536.0
        if rtt >= 0:
            self.rtt_s = rtt
        self.remote_fraction_lost = block.fraction_lost / 256.0
        self.remote_jitter_ms = block.jitter * 1000.0 / self.clock_rate

    # ------------------------------------------------------------------ summary

    def mos(self, jitter_buffer_ms: float) -> float:
        expected = self.expected
        loss_pct = 100.0 * max(self.lost, 0) / expected if expected > 0 else 0.0
        one_way = (self.rtt_s or 0.0) * 500.0 + jitter_buffer_ms + _FIXED_DELAY_MS
        return mos_estimate(loss_pct, one_way)

    def snapshot(self, now: float, jitter_buffer_ms: float = 0.0) -> dict[str, Any]:
        """The event contract's stats fields (numbers, or None for an unknown RTT); callers add their own."""
        del now
        return {
            "sent": self.packets_sent,
            "received": self.packets_received,
            "lost": max(self.lost, 0),
            "jitter_ms": round(self.jitter_ms, 2),
            "rtt_ms": None if self.rtt_s is None else round(self.rtt_s * 1000.0, 1),
            "jitter_buffer_ms": jitter_buffer_ms,
            "mos": round(self.mos(jitter_buffer_ms), 2),
        }
