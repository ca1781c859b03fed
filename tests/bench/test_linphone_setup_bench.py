"""Anchor figures for zcall's ZRTP path: linphonec <-> linphonec (bzrtp) on a namespace LAN, SIP over UDP.

Prints, over a few calls between the same two instances (the first call meets a new peer, the later ones find
retained secrets), the call setup time from the caller sending its INVITE to both sides having the SAS, split
into INVITE -> caller's media start (SIP) and ZRTP start -> SAS on both sides. Those come from linphonec's own
debug logs (one system clock, ms resolution), so pipe and polling delays do not count; the "as seen" figure is
`call` command -> both consoles showed the SAS, as a script driving it sees it. Once with Debian's default
Hello (DH3k, B32), once with X255 and B256. Nothing is asserted about timings; zcall's bench prints the same.
"""

from __future__ import annotations

import statistics
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.support.linphone import Linphonec
from tests.support.netns import Lan

RUNS = 5
SUITES: dict[str, dict[str, list[str]]] = {
    "default (DH3k, B32)": {},
    "X255, B256": {"key_agreements": ["X255"], "sas_types": ["B256"]},
}

pytestmark = [pytest.mark.interop, pytest.mark.netns, pytest.mark.timeout(240)]


def _ms(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() * 1000


def _measure(lan: Lan, workdir: Path, suites: dict[str, list[str]]) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {
        "INVITE -> both SAS": [], "INVITE -> media start": [], "ZRTP": [], "as seen (console)": [],
    }  # fmt: skip
    ka, sas = suites.get("key_agreements"), suites.get("sas_types")
    with (
        Linphonec(lan[0], workdir / "a", user="alice", key_agreements=ka, sas_types=sas) as a,
        Linphonec(lan[1], workdir / "b", user="bob", key_agreements=ka, sas_types=sas) as b,
    ):
        for _ in range(RUNS):
            since_a, since_b = a.mark(), b.mark()
            start = time.monotonic()
            a.call(b.uri)
            assert a.wait_for_sas() == b.wait_for_sas(since=since_b)
            figures["as seen (console)"].append((time.monotonic() - start) * 1000)
            invite = a.log_time(r"liblinphone-message-\S+ calling \[sip:", since_a)
            zrtp_start = a.log_time(r"Starting ZRTP engine on rtp session", since_a)
            both_sas = max(a.log_time(r"ZRTP secrets on: SAS is", since_a),
                           b.log_time(r"ZRTP secrets on: SAS is", since_b))  # fmt: skip
            figures["INVITE -> both SAS"].append(_ms(invite, both_sas))
            figures["INVITE -> media start"].append(_ms(invite, zrtp_start))
            figures["ZRTP"].append(_ms(zrtp_start, both_sas))
            since_b = b.mark()
            a.terminate()
            b.wait_for_end(since=since_b)
    return figures


def test_linphonec_call_setup_time(lan2: Lan, tmp_path: Path) -> None:
    print(f"\nlinphonec <-> linphonec call setup, {RUNS} calls each (first call: new peer; then cached)")
    for name, suites in SUITES.items():
        figures = _measure(lan2, tmp_path / name.split()[0].strip(","), suites)
        print(f" {name}")
        for what, values in figures.items():
            runs = " ".join(f"{v:.0f}" for v in values)
            print(f"  {what:<24} median {statistics.median(values):7.1f} ms   first {values[0]:6.0f} ms"
                  f"   runs (ms): {runs}")
