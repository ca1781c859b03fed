"""zcall through a SIP server against baresip through the same Kamailio, in one run: registration time
(TLS handshake + digest challenge + 200) and call setup time (dial -> media keyed on both sides, DTLS-SRTP),
zcall <-> baresip next to baresip <-> baresip. Prints medians and ratios; asserts nothing about timings."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytest

from tests.support import netns
from tests.support.baresip import Baresip
from tests.support.kamailio import sip_server
from tests.support.prereq import require_binary
from tests.support.zcall_peer import ZcallPeer

RUNS = 5
USERS = {"alice": "alice-secret", "bob": "bob-secret", "carol": "carol-secret"}
pytestmark = [pytest.mark.interop, pytest.mark.netns, pytest.mark.timeout(400)]


def _median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def test_registration_and_call_setup_against_baresip(lan3: netns.Lan, tmp_path: Path) -> None:
    require_binary("kamailio", "baresip")
    names = ("zcall register", "baresip register", "zcall -> baresip setup", "baresip -> baresip setup")
    figures: dict[str, list[float]] = {name: [] for name in names}
    with sip_server(lan3[0], USERS, tmp_path / "srv") as srv:
        kam = srv.kamailio
        uri = kam.tls_uri
        for run in range(RUNS):
            home = tmp_path / f"zcall{run}"
            home.mkdir()
            (home / "config.toml").write_text(
                f'[server]\nuri = "sips:{srv.dns_name}:{kam.tls_port}"\nuser = "alice"\n'
                f'password = "{USERS["alice"]}"\nca_file = "{srv.ca.cert_path}"\n'
                f'outbound_proxy = "{kam.host.ip}:{kam.tls_port}"\n'
            )
            carol = Baresip(lan3[2], "carol", USERS["carol"], registrar=uri, outbound=uri,
                            workdir=tmp_path / f"carol{run}")  # fmt: skip
            bob = Baresip(lan3[1], "bob", USERS["bob"], registrar=uri, outbound=uri, ctrl_port=4445,
                          workdir=tmp_path / f"bob{run}", rtp_ports="21000-21100")  # fmt: skip
            with ZcallPeer(lan3[1], home, name="alice", extra=["--no-mdns"]) as alice, carol, bob:
                ready = alice.wait_event("ready")
                registered = alice.wait_event("registered", timeout=20)
                figures["zcall register"].append(registered["_t"] - ready["_t"])
                for ua in (carol, bob):
                    figures["baresip register"].append(ua.wait_registered().at - ua.started_at)

                alice.ctl("call", "carol")
                dialing = alice.wait_event("call", state="dialing")
                carol.wait_event("CALL_INCOMING", timeout=15)
                carol.answer()
                keyed = max(alice.wait_event("secure", timeout=20)["_t"], carol.wait_secure().at)
                figures["zcall -> baresip setup"].append(keyed - dialing["_t"])
                alice.ctl("hangup")
                alice.wait_event("ended")
                carol.wait_event("CALL_CLOSED")

                start = time.monotonic()
                bob.dial(f"sip:carol@{kam.host.ip}")
                carol.wait_event("CALL_INCOMING", timeout=15)
                carol.answer()
                keyed = max(bob.wait_secure().at, carol.wait_secure().at)
                figures["baresip -> baresip setup"].append(keyed - start)
                bob.hangup()
                carol.wait_event("CALL_CLOSED")
    reg = _median_ms(figures["zcall register"]) / _median_ms(figures["baresip register"])
    setup = _median_ms(figures["zcall -> baresip setup"]) / _median_ms(figures["baresip -> baresip setup"])
    print(f"\nSIP-TLS through Kamailio, {RUNS} runs (medians)")
    for name, values in figures.items():
        runs = " ".join(f"{v * 1000:.0f}" for v in values)
        print(f"  {name:<28} {_median_ms(values):8.1f} ms   runs (ms): {runs}")
    print(f"  ratio register  zcall / baresip: {reg:5.2f}x")
    print(f"  ratio setup     zcall->baresip / baresip->baresip: {setup:5.2f}x")
