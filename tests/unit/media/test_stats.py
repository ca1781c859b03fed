"""RFC 3550 reception statistics, LSR/DLSR round-trip time and the G.107 E-model MOS."""

from __future__ import annotations

import pytest

from zcall.media.rtp import (
    ReceiverReport,
    ReportBlock,
    RtpPacket,
    SenderReport,
    parse_rtcp_compound,
    serialize_rtcp_compound,
)
from zcall.media.stats import OPUS_BPL, MediaStats, e_model_r, mos_estimate, r_to_mos

RATE = 48000


def pkt(seq: int, ts: int, ssrc: int = 7) -> RtpPacket:
    return RtpPacket(111, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc, b"x" * 40)


def test_constant_transit_gives_zero_jitter() -> None:
    stats = MediaStats(RATE)
    for i in range(100):
        stats.on_received(pkt(i, 1000 + i * 960), 5.0 + i * 0.02 + 0.013)
    assert stats.jitter_ms == pytest.approx(0.0, abs=0.05)
    assert stats.lost == 0 and stats.packets_received == 100


def test_interarrival_jitter_follows_rfc3550_a8() -> None:
    # Transit alternates between +0 and +10 ms, so every |D| is 10 ms (480 units): J_n = 480 (1 - (15/16)^n).
    stats = MediaStats(RATE)
    n = 40
    for i in range(n + 1):
        stats.on_received(pkt(i, i * 960), i * 0.02 + (0.01 if i % 2 else 0.0))
    expected_units = 480 * (1 - (15 / 16) ** n)
    assert stats.jitter_ms == pytest.approx(expected_units / 48, abs=0.03)


def test_jitter_handles_timestamp_wrap() -> None:
    stats = MediaStats(RATE)
    start = 2**32 - 960 * 10
    for i in range(30):
        stats.on_received(pkt(i, start + i * 960), i * 0.02)
    assert stats.jitter_ms == pytest.approx(0.0, abs=0.05)


def test_loss_fraction_and_cumulative_with_sequence_wrap() -> None:
    stats = MediaStats(RATE)
    seqs = [(65500 + i) & 0xFFFF for i in range(100) if i % 20 != 3]  # 5 lost, across the wrap
    for n, seq in enumerate(seqs):
        stats.on_received(pkt(seq, n * 960), n * 0.02)
    block = stats.report_block(3.0)
    assert block is not None
    assert stats.expected == 100 and stats.lost == 5
    assert block.cumulative_lost == 5
    assert block.fraction_lost == 5 * 256 // 100
    assert block.highest_sequence == (1 << 16) + ((65500 + 99) & 0xFFFF)
    # The next interval has no loss.
    for i in range(100, 150):
        stats.on_received(pkt(65500 + i, i * 960), i * 0.02)
    block = stats.report_block(4.0)
    assert block is not None and block.fraction_lost == 0 and block.cumulative_lost == 5


def test_duplicates_do_not_make_snapshot_loss_negative() -> None:
    stats = MediaStats(RATE)
    for i in range(10):
        stats.on_received(pkt(i, i * 960), i * 0.02)
        stats.on_received(pkt(i, i * 960), i * 0.02 + 0.001)
    assert stats.lost == -10
    assert stats.snapshot(1.0)["lost"] == 0
    block = stats.report_block(1.0)
    assert block is not None and block.cumulative_lost == -10 and block.fraction_lost == 0


def test_ssrc_change_and_sequence_restart_reset_the_source() -> None:
    stats = MediaStats(RATE)
    for i in range(10):
        stats.on_received(pkt(i, i * 960), i * 0.02)
    for i in range(10):
        stats.on_received(pkt(5000 + i, i * 960, ssrc=8), 1 + i * 0.02)
    assert stats.expected == 10 and stats.lost == 0
    # A lone wild sequence number is not counted; two in a row restart the count.
    stats.on_received(pkt(40000, 0, ssrc=8), 2.0)
    assert stats.expected == 10
    stats.on_received(pkt(30000, 0, ssrc=8), 2.02)
    stats.on_received(pkt(30001, 960, ssrc=8), 2.04)
    assert stats.expected == 1 and stats.lost == 0


def test_rtt_from_lsr_and_dlsr_over_the_wire() -> None:
    alice, bob = MediaStats(RATE), MediaStats(RATE)
    ntp = (3_900_000_000 << 32) | 0x4000_0000
    alice.on_sr_sent(ntp, 100.0)
    sr = SenderReport(1, ntp, 960, 10, 400)
    for packet in parse_rtcp_compound(serialize_rtcp_compound([sr])):
        bob.on_rtcp(packet, 100.05)  # 50 ms one way
    bob.on_received(pkt(1, 960), 100.1)
    block = bob.report_block(100.25)  # bob holds the report for 200 ms
    assert block is not None and block.lsr == (ntp >> 16) & 0xFFFFFFFF
    assert block.dlsr == int(0.2 * 65536)
    for packet in parse_rtcp_compound(serialize_rtcp_compound([ReceiverReport(2, (block,))])):
        alice.on_rtcp(packet, 100.35)  # 100 ms back
    assert alice.rtt_s == pytest.approx(0.15, abs=1 / 65536)
    assert alice.snapshot(101.0)["rtt_ms"] == pytest.approx(150.0, abs=0.1)


def test_report_blocks_about_unknown_srs_are_ignored() -> None:
    stats = MediaStats(RATE)
    stats.on_sr_sent(1 << 40, 1.0)
    stranger = ReceiverReport(2, (ReportBlock(1, 0, 0, 0, 0, 12345, 0),))
    stats.on_rtcp(stranger, 2.0)
    assert stats.rtt_s is None
    assert stats.snapshot(2.0)["rtt_ms"] is None


def test_e_model_anchors() -> None:
    # G.107 default parameters: R = 93.2 maps to MOS 4.41; G.107 Annex B anchors R = 50 -> 2.575.
    assert r_to_mos(93.2) == pytest.approx(4.41, abs=0.005)
    assert r_to_mos(50) == pytest.approx(2.575, abs=0.001)
    assert r_to_mos(-5) == 1.0 and r_to_mos(120) == 4.5
    assert e_model_r(0.0, 50.0) == pytest.approx(93.2)
    # Ie,eff = Ie + (95 - Ie) * Ppl / (Ppl / BurstR + Bpl) with Ie = 0, Bpl = 25.1.
    assert e_model_r(5.0, 50.0) == pytest.approx(93.2 - 95 * 5 / (5 + OPUS_BPL))
    # Idd: zero up to 100 ms; at 200 ms X = 1 and Idd = 25 (2^(1/6) - 3 (1 + 1/729)^(1/6) + 2).
    idd_200 = 25 * (2 ** (1 / 6) - 3 * (1 + 1 / 729) ** (1 / 6) + 2)
    assert e_model_r(0.0, 200.0) == pytest.approx(93.2 - idd_200)


def test_mos_falls_with_loss_and_delay() -> None:
    assert mos_estimate(0, 60) > mos_estimate(1, 60) > mos_estimate(5, 60) > mos_estimate(20, 60)
    assert mos_estimate(0, 60) > mos_estimate(0, 300) > mos_estimate(0, 600)
    assert 1.0 <= mos_estimate(100, 5000) < 1.5


def test_snapshot_has_the_contract_fields() -> None:
    stats = MediaStats(RATE)
    for i in range(50):
        stats.on_sent(60, i * 960, i * 0.02)
        if i != 10:
            stats.on_received(pkt(i, i * 960), i * 0.02 + 0.005)
    snap = stats.snapshot(1.0, jitter_buffer_ms=40)
    assert set(snap) == {"sent", "received", "lost", "jitter_ms", "rtt_ms", "jitter_buffer_ms", "mos"}
    assert (snap["sent"], snap["received"], snap["lost"]) == (50, 49, 1)
    assert stats.octets_sent == 3000
    assert snap["jitter_buffer_ms"] == 40
    mos = snap["mos"]
    assert isinstance(mos, float) and 3.5 < mos < 4.41
