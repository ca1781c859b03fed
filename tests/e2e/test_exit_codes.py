"""`--exit-after-call` tells a script how the call went: real zcall processes calling on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.zcall_peer import ZcallPeer
from zcall.exitcodes import ExitCode

LOOPBACK = ["--no-mdns", "--bind", "127.0.0.1"]


def _peer(home: Path, name: str, *extra: str, auto_answer: bool = False) -> ZcallPeer:
    return ZcallPeer(None, home, name=name, sip_port=0, auto_answer=auto_answer, extra=[*LOOPBACK, *extra])


def _exit_code(peer: ZcallPeer, timeout: float = 30.0) -> int:
    assert peer.proc is not None
    return peer.proc.wait(timeout)


@pytest.fixture
def bob(tmp_path: Path) -> Iterator[tuple[ZcallPeer, str]]:
    with _peer(tmp_path / "bob", "bob", auto_answer=True) as peer:
        yield peer, peer.wait_event("ready")["sip_uri"]


def test_a_secure_call_that_ends_normally_exits_0(tmp_path: Path, bob: tuple[ZcallPeer, str]) -> None:
    _, uri = bob
    with _peer(tmp_path / "a", "alice", "--call", uri, "--hangup-after", "0.3", "--exit-after-call") as alice:
        alice.wait_event("secure")
        assert _exit_code(alice) == ExitCode.OK


def test_words_differ_exits_with_the_alert_code(tmp_path: Path, bob: tuple[ZcallPeer, str]) -> None:
    _, uri = bob
    with _peer(tmp_path / "a", "alice", "--call", uri, "--exit-after-call") as alice:
        alice.wait_event("secure")
        alice.ctl("verify", "--differ")
        assert _exit_code(alice) == ExitCode.ALERT


def test_a_rejected_call_exits_1(tmp_path: Path) -> None:
    with _peer(tmp_path / "carol", "carol") as carol:
        uri = carol.wait_event("ready")["sip_uri"]
        with _peer(tmp_path / "a", "alice", "--call", uri, "--exit-after-call") as alice:
            carol.wait_event("call", state="incoming")
            carol.ctl("hangup")
            assert _exit_code(alice) == ExitCode.FAILED
            alice.wait_event("ended")


def test_a_bad_target_exits_1(tmp_path: Path) -> None:
    with _peer(tmp_path / "a", "alice", "--call", "sip:@@", "--exit-after-call") as alice:
        assert _exit_code(alice) == ExitCode.FAILED
        alice.wait_event("error")
