"""Every secure call reports its totals before it ends, however short (two real units on loopback)."""

from __future__ import annotations

from pathlib import Path

from tests.support.zcall_peer import ZcallPeer
from tests.tui.helpers import free_port

LOOPBACK = ["--bind", "127.0.0.1", "--no-mdns", "--rtp-port", "0"]


def test_a_two_second_call_reports_stats_before_ended(tmp_path: Path) -> None:
    bob_port = free_port()
    bob = ZcallPeer(None, tmp_path / "bob", name="bob", audio_in="tone:440", auto_answer=True,
                    sip_port=bob_port, extra=LOOPBACK)  # fmt: skip
    alice = ZcallPeer(None, tmp_path / "alice", name="alice", audio_in="tone:660", sip_port=free_port(),
                      extra=[*LOOPBACK, "--hangup-after", "2"])  # fmt: skip
    with bob, alice:
        bob.wait_event("ready")
        alice.wait_event("ready")
        alice.ctl("call", f"sip:zcall@127.0.0.1:{bob_port}")
        for peer in (alice, bob):
            secure = peer.wait_event("secure")
            stats = peer.wait_event("stats", id=secure["id"])
            ended = peer.wait_event("ended", id=secure["id"])
            assert stats["_t"] <= ended["_t"] and ended["duration_s"] < 5  # no 5 s report came first
            assert stats["sent"] > 0 and stats["received"] > 0, stats
