"""Bar meters: call quality (loss, jitter, RTT, MOS) and an input level in dBFS."""

from __future__ import annotations

import array
import math
import sys

from rich.text import Text

from zcall import events

BAR = 10


def bar(fraction: float, width: int = BAR) -> str:
    filled = max(0, min(width, round(fraction * width)))
    return "█" * filled + "░" * (width - filled)


def loss_percent(stats: events.Stats) -> float:
    expected = stats.received + stats.lost
    return 100.0 * stats.lost / expected if expected else 0.0


def quality_text(stats: events.Stats | None) -> Text:
    """One line: MOS bar (1..4.5 mapped to the bar), loss, jitter, RTT."""
    if stats is None:
        return Text("quality: waiting for the first report", style="dim")
    mos = stats.mos
    style = "red"
    if mos is not None and mos >= 3.0:
        style = "green" if mos >= 3.6 else "yellow"
    text = Text("MOS ")
    if mos is None:
        text.append("-  " + bar(0.0), style="dim")
    else:
        text.append(f"{mos:.1f} " + bar((mos - 1.0) / 3.5), style=style)
    rtt = f"{stats.rtt_ms:.0f} ms" if stats.rtt_ms is not None else "-"
    text.append(f"  loss {loss_percent(stats):.1f}%  jitter {stats.jitter_ms:.0f} ms  RTT {rtt}")
    return text


def rms_dbfs(pcm: bytes) -> float:
    """Level of s16le PCM in dBFS (-inf for silence). Plain Python: one 20 ms frame ten times a second
    does not need numpy, and the TUI starts faster without it."""
    samples = array.array("h", pcm[: len(pcm) // 2 * 2])
    if sys.byteorder == "big":
        samples.byteswap()
    if not samples:
        return -math.inf
    rms = math.sqrt(math.fsum(s * s for s in samples) / len(samples))
    return 20.0 * math.log10(rms / 32768.0) if rms > 0 else -math.inf


def level_text(dbfs: float | None, width: int = 20) -> Text:
    if dbfs is None:
        return Text("level: no input", style="dim")
    if math.isinf(dbfs):
        return Text("level: " + bar(0.0, width) + " silent")
    fraction = (max(-60.0, min(0.0, dbfs)) + 60.0) / 60.0
    return Text(f"level: {bar(fraction, width)} {dbfs:.0f} dBFS", style="green" if dbfs < -3 else "red")
