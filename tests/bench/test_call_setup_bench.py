"""Call setup time, INVITE sent -> `secure` on both sides: zcall <-> zcall (X255, DH3k) against linphonec <->
linphonec (bzrtp) measured in the same run on the same namespace LAN. Prints medians and the ratios; the goal
is zcall with X255 at most 0.5x linphonec's time. Nothing is asserted about timings.

zcall's figure is from its own event stream: the `dialing` event goes out as the INVITE is sent, `secure`
when SRTP keys are installed. linphonec's is from its debug log (INVITE -> "ZRTP secrets on" on both sides).
"""

from __future__ import annotations

import statistics
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.support.linphone import Linphonec
from tests.support.netns import Lan
from tests.support.zcall_peer import ZcallPeer

RUNS = 5
pytestmark = [pytest.mark.interop, pytest.mark.netns, pytest.mark.timeout(400)]


def _zcall_setup_ms(lan: Lan, workdir: Path, key_agreement: str) -> list[float]:
    for side in ("a", "b"):
        (workdir / side).mkdir(parents=True)
        (workdir / side / "config.toml").write_text(f'[security]\nkey_agreements = ["{key_agreement}"]\n')
    times: list[float] = []
    with (
        ZcallPeer(lan[0], workdir / "a", name="alice", extra=["--no-mdns"]) as a,
        ZcallPeer(lan[1], workdir / "b", name="bob", auto_answer=True, extra=["--no-mdns"]) as b,
    ):
        a.wait_event("ready")
        ready_b = b.wait_event("ready")
        for _ in range(RUNS):
            a.ctl("call", ready_b["sip_uri"])
            dialing = a.wait_event("call", state="dialing")
            secure_a, secure_b = a.wait_event("secure"), b.wait_event("secure")
            assert secure_a["key_agreement"] == key_agreement
            assert secure_a["sas"] == secure_b["sas"]
            times.append((max(secure_a["_t"], secure_b["_t"]) - dialing["_t"]) * 1000)
            a.ctl("hangup")
            a.wait_event("ended")
            b.wait_event("ended")
            time.sleep(0.2)
    return times


def _ms(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() * 1000


def _linphonec_setup_ms(lan: Lan, workdir: Path) -> list[float]:
    times: list[float] = []
    with (
        Linphonec(lan[0], workdir / "a", user="alice") as a,
        Linphonec(lan[1], workdir / "b", user="bob") as b,
    ):
        for _ in range(RUNS):
            since_a, since_b = a.mark(), b.mark()
            a.call(b.uri)
            assert a.wait_for_sas() == b.wait_for_sas(since=since_b)
            invite = a.log_time(r"liblinphone-message-\S+ calling \[sip:", since_a)
            both = max(
                a.log_time(r"ZRTP secrets on: SAS is", since_a),
                b.log_time(r"ZRTP secrets on: SAS is", since_b),
            )
            times.append(_ms(invite, both))
            since_b = b.mark()
            a.terminate()
            b.wait_for_end(since=since_b)
    return times


def test_call_setup_against_linphonec(lan2: Lan, tmp_path: Path) -> None:
    figures = {
        "linphonec <-> linphonec (DH3k)": _linphonec_setup_ms(lan2, tmp_path / "linphonec"),
        "zcall <-> zcall (X255)": _zcall_setup_ms(lan2, tmp_path / "x255", "X255"),
        "zcall <-> zcall (DH3k)": _zcall_setup_ms(lan2, tmp_path / "dh3k", "DH3k"),
    }
    anchor = statistics.median(figures["linphonec <-> linphonec (DH3k)"])
    print(f"\ncall setup, INVITE -> secure on both sides, {RUNS} calls each (first: new peer, then cached)")
    for name, values in figures.items():
        median = statistics.median(values)
        runs = " ".join(f"{v:.0f}" for v in values)
        print(f"  {name:<32} median {median:7.1f} ms  ratio {median / anchor:5.2f}x linphonec  runs: {runs}")
