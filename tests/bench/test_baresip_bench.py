"""Anchor figures for zcall's SIP-TLS path: baresip <-> baresip through Kamailio over TLS, DTLS-SRTP, Opus.

Prints, over a few runs: registration time (account added -> REGISTER_OK, includes the TLS handshake and the
digest challenge) and call setup time (dial -> both CALL_ESTABLISHED, and dial -> both sides' media keyed),
once as is and once with delayed ACKs off on Kamailio's host, which shows what baresip loses to Nagle.
Nothing is asserted about timings; zcall's own bench prints the same figures to compare against.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytest

from tests.support import netns
from tests.support.baresip import Baresip
from tests.support.kamailio import sip_server
from tests.support.prereq import require_binary

RUNS = 5
USERS = {"alice": "alice-secret", "bob": "bob-secret"}

pytestmark = [pytest.mark.interop, pytest.mark.netns, pytest.mark.timeout(240)]


def _ms(values: list[float]) -> str:
    return " ".join(f"{v * 1000:.0f}" for v in values)


def _report(name: str, values: list[float]) -> None:
    print(f"  {name:<38} median {statistics.median(values) * 1000:7.1f} ms   runs (ms): {_ms(values)}")


def _measure(lan: netns.Lan, workdir: Path, quickack: bool) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {"register": [], "established": [], "secure": []}
    with sip_server(lan[0], USERS, workdir, quickack=quickack) as srv:
        uri = srv.kamailio.tls_uri
        for run in range(RUNS):
            # Fresh user agents each run, so every registration opens its TLS connection anew.
            runs_dir = workdir / str(run)
            alice, bob = (
                Baresip(lan[i], name, USERS[name], registrar=uri, outbound=uri, workdir=runs_dir / name)
                for i, name in ((1, "alice"), (2, "bob"))
            )
            with alice, bob:
                for ua in (alice, bob):
                    figures["register"].append(ua.wait_registered().at - ua.started_at)
                start = time.monotonic()
                alice.dial(f"sip:bob@{srv.kamailio.host.ip}")
                bob.wait_event("CALL_INCOMING")
                bob.answer()
                established = max(ua.wait_event("CALL_ESTABLISHED").at for ua in (alice, bob))
                figures["established"].append(established - start)
                figures["secure"].append(max(ua.wait_secure().at for ua in (alice, bob)) - start)
                alice.hangup()
                for ua in (alice, bob):
                    ua.wait_event("CALL_CLOSED")
    return figures


def test_baresip_registration_and_call_setup(lan3: netns.Lan, tmp_path: Path) -> None:
    require_binary("kamailio", "baresip", "ss")
    plain = _measure(lan3, tmp_path / "plain", quickack=False)
    quick = _measure(lan3, tmp_path / "quickack", quickack=True)
    print(f"\nbaresip <-> Kamailio (TLS) <-> baresip, DTLS-SRTP + Opus, {RUNS} runs each, fresh UAs per run")
    for title, figures in (("as is", plain), ("Kamailio host without delayed ACKs (quickack)", quick)):
        print(f" {title}:")
        _report("registration (uanew -> 200 OK)", figures["register"])
        _report("call setup (dial -> both ESTABLISHED)", figures["established"])
        _report("call setup (dial -> both media secure)", figures["secure"])
    nagle = statistics.median(plain["established"]) - statistics.median(quick["established"])
    print(f" baresip's Nagle wait per call (median difference): {nagle * 1000:.1f} ms")
    dtls = statistics.median(quick["secure"]) - statistics.median(quick["established"])
    print(f" media keyed after ESTABLISHED (median, quickack): {dtls * 1000:.1f} ms (baresip's DTLS race)")
