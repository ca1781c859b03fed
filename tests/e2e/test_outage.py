"""A 10-second total network outage in the middle of a secure call, between two `zcall --headless` units in
namespaces: nftables drops everything either host receives on its LAN interface for 10 s, then lets it through
again. Nothing may hang the call up (no RTP/RTCP timeout, no SIP session timer, no key deadline once secure);
audio resumes both ways, checked by content (each side still hears the other's tone after the outage), and
the recordings hold the gap (the outage did happen); the call then ends normally, by a hangup.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.audio_check import dominant_frequency, read_wav, silent_fraction
from tests.support.netns import Host, Lan
from tests.support.zcall_peer import ZcallPeer

pytestmark = [pytest.mark.netns, pytest.mark.timeout(150)]

OUTAGE_S = 10.0
TABLE = "zcall_outage"


def _outage(host: Host, on: bool) -> None:
    if on:
        rules = (
            f"table inet {TABLE} {{\n  chain input {{\n    type filter hook input priority -10;\n"
            f'    iifname "{host.iface}" drop\n  }}\n}}\n'
        )
        result = host.run(["nft", "-f", "-"], input=rules)
    else:
        result = host.run(["nft", "delete", "table", "inet", TABLE])
    assert result.returncode == 0, result.stderr


def _received(event: dict[str, Any]) -> int:
    return int(event["received"])


def test_call_survives_a_10s_total_outage(lan2: Lan, tmp_path: Path) -> None:
    heard_by = {"alice": tmp_path / "alice.wav", "bob": tmp_path / "bob.wav"}
    alice = ZcallPeer(lan2[0], tmp_path / "alice", name="alice", audio_in="tone:440",
                      audio_out=f"file:{heard_by['alice']}", extra=["--no-mdns"])  # fmt: skip
    bob = ZcallPeer(lan2[1], tmp_path / "bob", name="bob", audio_in="tone:660",
                    audio_out=f"file:{heard_by['bob']}", auto_answer=True, extra=["--no-mdns"])  # fmt: skip
    with alice, bob:
        alice.wait_event("ready")
        uri = bob.wait_event("ready")["sip_uri"]
        alice.ctl("call", uri)
        alice.wait_event("secure")
        bob.wait_event("secure")
        before = alice.wait_event("stats", timeout=10)  # audio has flowed a while
        hosts = (lan2[0], lan2[1])
        for host in hosts:
            _outage(host, True)
        try:
            time.sleep(OUTAGE_S)
        finally:
            for host in hosts:
                _outage(host, False)
        marks = {"alice": alice.mark(), "bob": bob.mark()}
        # Two stats reports after the outage, each side: the second counts more packets than the first.
        for peer in (alice, bob):
            first = peer.wait_event("stats", timeout=10, since=marks[peer.name])
            second = peer.wait_event("stats", timeout=10)
            assert _received(second) > _received(first), (peer.name, first, second)
            if peer is alice:
                assert _received(first) > _received(before)
        for peer in (alice, bob):
            assert not [e for e in peer.events if e["event"] == "ended"], f"{peer.name} hung up"
            assert not [e for e in peer.events if e["event"] == "alert"], f"{peer.name} raised an alarm"
        alice.ctl("hangup")
        ended = alice.wait_event("ended", timeout=10)
        bob.wait_event("ended", timeout=10)
    assert ended["duration_s"] > OUTAGE_S + 5
    for name, tone in (("alice", 660), ("bob", 440)):
        samples, rate = read_wav(heard_by[name])
        tail = samples[-2 * rate :]  # the last two seconds before the hangup: after the outage
        assert abs(dominant_frequency(tail, rate) - tone) < 5, f"{name} hears {tone} Hz again"
        assert silent_fraction(tail, rate) < 0.1, f"{name}: the audio after the outage has gaps"
        gap = _longest_quiet_s(samples, rate)
        print(f"\n{name}: {samples.size / rate:.1f} s recorded, longest gap {gap:.2f} s")
        assert OUTAGE_S - 1.0 < gap < OUTAGE_S + 3.0, f"{name}: the gap is not the outage ({gap:.2f} s)"


def _longest_quiet_s(samples: np.ndarray, rate: int, frame_ms: int = 20) -> float:
    """The longest run of 20 ms frames quieter than -50 dBFS, in seconds."""
    size = rate * frame_ms // 1000
    frames = samples[: samples.size // size * size].astype(np.float64).reshape(-1, size) / 32768.0
    quiet = np.mean(frames * frames, axis=1) < 1e-5
    longest = run = 0
    for q in quiet:
        run = run + 1 if q else 0
        longest = max(longest, run)
    return longest * frame_ms / 1000
