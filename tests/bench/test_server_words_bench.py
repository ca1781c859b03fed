"""What the words cost on the server path: zcall -> zcall through Kamailio, dial -> both sides secure, with
ZRTP bound to DTLS-SRTP (the words) next to the same calls through a server that strips a=zrtp-hash (DTLS
only). Prints medians and the ratio; asserts nothing about timings."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from tests.interop.test_server_words import NO_ZRTP, unit
from tests.interop.test_zcall_server import USERS
from tests.support import netns
from tests.support.kamailio import SdpEdits, sip_server
from tests.support.prereq import require_binary

RUNS = 7
pytestmark = [pytest.mark.interop, pytest.mark.netns, pytest.mark.timeout(400)]


def _setups(lan3: netns.Lan, tmp: Path, edits: SdpEdits | None, words: bool) -> list[float]:
    times = []
    with sip_server(lan3[0], USERS, tmp, sdp_edits=edits) as srv:
        alice = unit(lan3, srv, 1, "alice", tmp)
        bob = unit(lan3, srv, 2, "bob", tmp, auto_answer=True)
        with alice, bob:
            alice.wait_event("registered", timeout=15)
            bob.wait_event("registered", timeout=15)
            for _ in range(RUNS):
                marks = alice.mark(), bob.mark()
                alice.ctl("call", "bob")
                dialing = alice.wait_event("call", state="dialing", since=marks[0])
                secure = [alice.wait_event("secure", since=marks[0], timeout=30),
                          bob.wait_event("secure", since=marks[1], timeout=30)]  # fmt: skip
                assert all(s["verifiable"] is words for s in secure), secure
                times.append(max(s["_t"] for s in secure) - dialing["_t"])
                alice.ctl("hangup")
                alice.wait_event("ended", timeout=10)
                bob.wait_event("ended", timeout=10)
    return times


def test_words_on_the_server_path_cost(lan3: netns.Lan, tmp_path: Path) -> None:
    require_binary("kamailio", "openssl", "ss")
    stripped = SdpEdits(NO_ZRTP, NO_ZRTP)
    figures = {
        "DTLS-SRTP + bound ZRTP (words)": _setups(lan3, tmp_path / "words", None, True),
        "DTLS-SRTP only (hash stripped)": _setups(lan3, tmp_path / "plain", stripped, False),
    }
    medians = {name: statistics.median(values) * 1000 for name, values in figures.items()}
    print(f"\nzcall -> zcall through Kamailio, dial -> both secure, {RUNS} calls (medians)")
    for name, values in figures.items():
        runs = " ".join(f"{v * 1000:.0f}" for v in values)
        print(f"  {name:<32} {medians[name]:8.1f} ms   runs (ms): {runs}")
    words, plain = medians.values()
    print(f"  ratio words / DTLS only: {words / plain:5.2f}x (+{words - plain:.1f} ms)")
