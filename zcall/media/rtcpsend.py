"""Our RTCP (RFC 3550 §6): when the next compound is due, and what it holds (a sender report with one report
block about the peer's stream, our CNAME, and BYE at the end of the call)."""

from __future__ import annotations

import random
import time
from typing import Any

from zcall.media.rtp import Bye, SdesChunk, SenderReport, SourceDescription, serialize_rtcp_compound
from zcall.media.stats import MediaStats

RTCP_INTERVAL_S = 5.0
_NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900 (NTP) to 1970 (Unix)
_SDES_CNAME = 1


def rtcp_delay(interval: float) -> float:
    """RFC 3550 §6.3.1: randomise to [0.5, 1.5] × the interval so peers do not synchronise."""
    return interval * (0.5 + random.random())


def sender_report(
    ssrc: int, cname: bytes, rtp_timestamp: int, stats: MediaStats, now: float, *, bye: bool = False
) -> bytes:
    """The compound packet (before SRTCP) reporting on both directions; the SR's send time goes to `stats`
    (for the round trip the peer's next report gives)."""
    ntp = ntp_now()
    report = stats.report_block(now)
    blocks = () if report is None else (report,)
    packets: list[Any] = [
        SenderReport(ssrc, ntp, rtp_timestamp, stats.packets_sent & 0xFFFFFFFF,
                     stats.octets_sent & 0xFFFFFFFF, blocks),
        SourceDescription((SdesChunk(ssrc, ((_SDES_CNAME, cname),)),)),
    ]
    if bye:
        packets.append(Bye((ssrc,)))
    stats.on_sr_sent(ntp, now)
    return serialize_rtcp_compound(packets)


def ntp_now() -> int:
    now = time.time() + _NTP_EPOCH_OFFSET
    return (int(now) << 32 | int((now % 1) * (1 << 32))) & 0xFFFFFFFFFFFFFFFF
