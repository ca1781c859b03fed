"""An active man in the middle on the LAN, built from zcall's own ZRTP cores (tests/support/mitm.py): the
caller is directed to it (as a spoofed mDNS answer or a rogue SIP hop would), it forwards SIP to the callee
with the SDP rewritten to itself, terminates ZRTP on both sides and bridges the audio. Both calls go secure,
and what gives it away is what zcall promises (issue 12):

- the two ends' words differ, every run (ZCALL_MITM_RUNS, 10 here; `make test-mitm` runs 100);
- for ends that hold secrets from an earlier call, both raise the cache alarm, even when the MITM announces
  the ZIDs each end expects; neither is reported verified.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.netns import Host, Lan
from tests.support.zcall_peer import ZcallPeer

pytestmark = [pytest.mark.netns, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
RUNS = int(os.environ.get("ZCALL_MITM_RUNS", "10"))
MITM_PORT = 5070


@contextmanager
def mitm(host: Host, callee: Host, claim: tuple[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    argv = [sys.executable, "-m", "tests.support.mitm", "--listen", f"{host.ip}:{MITM_PORT}",
            "--to", f"{callee.ip}:5060"]  # fmt: skip
    if claim is not None:
        argv += ["--claim-zids", *claim]
    proc = host.popen(argv, stdout=subprocess.PIPE, text=True, cwd=str(ROOT))
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        proc.kill()
        proc.wait(5)


def both_secure(alice: ZcallPeer, bob: ZcallPeer, proc: subprocess.Popen[str]) -> tuple[dict[str, Any], ...]:
    secure_a = alice.wait_event("secure", timeout=30)
    secure_b = bob.wait_event("secure", timeout=30)
    assert proc.stdout is not None
    keys_held = json.loads(proc.stdout.readline())  # the MITM is secure with both ends
    assert keys_held["a"]["sas"] == secure_a["sas"] and keys_held["b"]["sas"] == secure_b["sas"]
    return secure_a, secure_b


def hang_up(alice: ZcallPeer, bob: ZcallPeer) -> None:
    alice.ctl("hangup")
    alice.wait_event("ended", timeout=10)
    bob.wait_event("ended", timeout=10)


@pytest.fixture
def ends(lan3: Lan, tmp_path: Path) -> Iterator[tuple[ZcallPeer, ZcallPeer, Lan]]:
    a, b, _ = lan3.hosts
    # "continue": on a cache mismatch the call stays up, muted, and the words are asked for; with "hangup"
    # the first end to see the mismatch would end the call before the other finishes its exchange.
    extra = ["--no-mdns", "--on-mismatch", "continue"]
    alice = ZcallPeer(a, tmp_path / "alice", name="alice", audio_in="tone:440", extra=extra)
    bob = ZcallPeer(b, tmp_path / "bob", name="bob", audio_in="tone:660", auto_answer=True, extra=extra)
    with alice, bob:
        alice.wait_event("ready")
        bob.wait_event("ready")
        yield alice, bob, lan3


def test_the_words_differ_every_run(ends: tuple[ZcallPeer, ZcallPeer, Lan]) -> None:
    alice, bob, lan = ends
    differ = 0
    for _ in range(RUNS):
        with mitm(lan[2], lan[1]) as proc:
            alice.ctl("call", f"sip:zcall@{lan[2].ip}:{MITM_PORT}")
            secure_a, secure_b = both_secure(alice, bob, proc)
            differ += secure_a["sas_words"] != secure_b["sas_words"]
            assert secure_a["verified"] is False and secure_b["verified"] is False
            hang_up(alice, bob)
    assert differ == RUNS  # 16 bits of SAS: a MITM wins one run in 65536 by chance


def test_cached_secrets_raise_the_alarm_on_both_ends(ends: tuple[ZcallPeer, ZcallPeer, Lan]) -> None:
    alice, bob, lan = ends
    alice.ctl("call", f"sip:zcall@{lan[1].ip}:5060")  # a direct call first: both keep a secret
    first_a, first_b = alice.wait_event("secure", timeout=30), bob.wait_event("secure", timeout=30)
    assert first_a["cache"] == first_b["cache"] == "new"
    hang_up(alice, bob)
    alarms = 0
    for _ in range(max(1, RUNS // 5)):
        # The MITM announces, toward each end, the ZID that end expects (the identity binding holds).
        with mitm(lan[2], lan[1], claim=(first_b["peer_zid"], first_a["peer_zid"])) as proc:
            mark_a, mark_b = alice.mark(), bob.mark()
            alice.ctl("call", f"sip:zcall@{lan[2].ip}:{MITM_PORT}")
            secure_a, secure_b = both_secure(alice, bob, proc)
            assert secure_a["cache"] == secure_b["cache"] == "mismatch"
            assert secure_a["verified"] is False and secure_b["verified"] is False
            alert_a = alice.wait_event("alert", since=mark_a, timeout=10)
            alert_b = bob.wait_event("alert", since=mark_b, timeout=10)
            alarms += alert_a["kind"] == alert_b["kind"] == "cache_mismatch"
            alice.ctl("hangup")
            alice.wait_event("ended", timeout=10)
            bob.wait_event("ended", timeout=10)
    assert alarms == max(1, RUNS // 5)
