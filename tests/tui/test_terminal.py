"""One real terminal: `zcall` (the TUI) runs in tmux inside a namespace; keys go in with send-keys and the
screen comes back with capture-pane. A headless peer in a second namespace appears by mDNS; Enter calls it;
the screen shows the same SAS words the peer reports; Y verifies, H hangs up, Q quits."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.netns import Lan
from tests.support.prereq import require_binary
from tests.support.zcall_peer import ZcallPeer

pytestmark = [pytest.mark.netns, pytest.mark.timeout(120)]
REPO = Path(__file__).resolve().parents[2]


class Tmux:
    """A private tmux server (its own socket), so nothing else's sessions are touched."""

    def __init__(self, name: str, width: int = 80, height: int = 24) -> None:
        self.socket = f"zcall-tui-{os.getpid()}-{name}"
        self.name = name
        self.size = (width, height)

    def tmux(self, *args: str) -> subprocess.CompletedProcess[str]:
        # COLUMNS/LINES (pytest exports them) would override the pane's real size for the app inside.
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        return subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
            env=env,
        )

    def start(self, argv: list[str]) -> None:
        """Size the window first, then run the app in it."""
        width, height = (str(n) for n in self.size)
        for args in (
            ("new-session", "-d", "-s", self.name, "-x", width, "-y", height, "sleep 600"),
            ("resize-window", "-t", self.name, "-x", width, "-y", height),
            ("respawn-pane", "-k", "-t", self.name, self._command(argv)),
        ):
            result = self.tmux(*args)
            assert result.returncode == 0, (args, result.stderr)

    @staticmethod
    def _command(argv: list[str]) -> str:
        return f"cd {shlex.quote(str(REPO))} && {shlex.join(argv)}; sleep 60"

    def keys(self, *keys: str) -> None:
        for key in keys:  # one at a time: an Escape followed at once by a letter would read as Alt+letter
            assert self.tmux("send-keys", "-t", self.name, key).returncode == 0
            time.sleep(0.3)

    def screen(self, history: int = 0) -> str:
        return self.tmux("capture-pane", "-p", "-S", str(-history), "-t", self.name).stdout

    def wait_for(self, *texts: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            shown = self.screen()
            if all(text in shown for text in texts):
                return shown
            if time.monotonic() > deadline:
                raise AssertionError(f"screen never showed {texts}; it shows:\n{self.screen(200)}")
            time.sleep(0.2)

    def close(self) -> None:
        self.tmux("kill-server")


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    require_binary("tmux")
    term = Tmux("alice")
    try:
        yield term
    finally:
        term.close()


def test_tui_in_tmux_calls_a_headless_peer(lan2: Lan, tmp_path: Path, tmux: Tmux) -> None:
    alice_host, bob_host = lan2[0], lan2[1]
    argv = [
        sys.executable, "-m", "zcall", "--home", str(tmp_path / "alice"), "--name", "alice",
        "--bind", alice_host.ip, "--audio-in", "silence", "--audio-out", "null",
    ]
    with ZcallPeer(bob_host, tmp_path / "bob", name="bob", audio_in="tone:660", auto_answer=True) as bob:
        bob.wait_event("ready")
        tmux.start(alice_host.argv(argv))
        tmux.wait_for("zcall · alice", "bob", bob_host.ip)  # bob appeared by mDNS, trust "new"
        tmux.keys("Enter")  # the only peer is selected: call it
        secure = bob.wait_event("secure")
        words = secure["sas_words"]
        shown = tmux.wait_for(*words, "NOT VERIFIED")
        assert "Read your words" in shown
        tmux.keys("y")
        tmux.wait_for("VERIFIED", "Words confirmed")
        tmux.keys("h")
        ended = bob.wait_event("ended", timeout=5)
        assert ended["reason"] == "remote hangup"
        shown = tmux.wait_for("Recent calls", "local hangup")
        assert "verified" in shown  # bob's row: the cache now vouches for him
        tmux.keys("q")
        deadline = time.monotonic() + 10
        while "zcall · alice" in tmux.screen() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "zcall · alice" not in tmux.screen(), "q quits the TUI"


def sas_shown(screen: str) -> str:
    """The plain SAS line: the last line inside the SAS box ("" if there is no box yet)."""
    lines = screen.splitlines()
    bottom = next((i for i, line in enumerate(lines) if line.lstrip().startswith("╰")), 0)
    return lines[bottom - 1].strip().strip("│").strip() if bottom else ""


def wait_sas(term: Tmux, timeout: float = 30.0) -> str:
    """The two SAS words once the screen shows them whole (a capture can land mid-redraw)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = sas_shown(term.screen())
        if re.fullmatch(r"[A-Za-z]+  [A-Za-z]+", line):
            return line
        time.sleep(0.2)
    raise AssertionError(f"no SAS words on screen:\n{term.screen()}")


def test_two_tuis_in_tmux_show_the_same_words(lan2: Lan, tmp_path: Path) -> None:
    require_binary("tmux")
    terms = {name: Tmux(name, 60, 20) for name in ("alice", "bob")}  # the 3.5" panel's console
    try:
        for (name, term), host in zip(terms.items(), lan2.hosts, strict=True):
            term.start(host.argv([
                sys.executable, "-m", "zcall", "--home", str(tmp_path / name), "--name", name,
                "--bind", host.ip, "--audio-in", "silence", "--audio-out", "null",
            ]))
        alice, bob = terms["alice"], terms["bob"]
        alice.wait_for("zcall · alice", "bob")
        alice.keys("Enter")
        bob.wait_for("Answer", "alice")
        bob.keys("Enter")
        try:
            words_a, words_b = wait_sas(alice), wait_sas(bob)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nbob's screen:\n{bob.screen()}") from None
        assert words_a == words_b, (words_a, words_b)
        alice.wait_for("NOT VERIFIED", "Read your words")
        bob.wait_for("NOT VERIFIED", "Read your words")
        alice.keys("y")
        bob.keys("y")
        alice.wait_for("Words confirmed")
        bob.wait_for("Words confirmed")
        alice.keys("h")
        bob.wait_for("Recent calls", "remote hangup")
        bob.keys("t")
        shown = bob.wait_for("Known devices", "alice")
        assert "verified" in shown
    finally:
        for term in terms.values():
            term.close()
