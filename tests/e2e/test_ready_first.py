"""The events contract: nothing before `ready` is a call. A unit still probing its mDNS name has its SIP port
open but takes no call yet: the INVITE goes unanswered, and the caller's retransmission reaches it after
`ready` (docs/events.md)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.netns import Lan
from tests.support.zcall_peer import ZcallPeer

pytestmark = [pytest.mark.netns, pytest.mark.timeout(90)]


def test_a_call_arriving_while_the_unit_probes_its_name_comes_after_ready(lan2: Lan, tmp_path: Path) -> None:
    a, b = lan2.hosts
    alice = ZcallPeer(a, tmp_path / "alice", name="alice", extra=["--no-mdns"])
    bob = ZcallPeer(b, tmp_path / "bob", name="bob", auto_answer=True)
    with alice:
        alice.wait_event("ready")
        with bob:
            deadline = time.monotonic() + 20
            while ":5060 " not in b.run(["ss", "-Hlun"], capture_output=True, text=True).stdout:
                assert time.monotonic() < deadline, "bob never opened its SIP port"
                time.sleep(0.02)
            alice.ctl("call", f"sip:zcall@{b.ip}:5060")  # bob's mDNS probe takes a second or two more
            bob.wait_event("secure")
            alice.wait_event("secure")
            bob.wait_event("ready", since=0)
            kinds = [event["event"] for event in bob.events]
            assert kinds.index("ready") < kinds.index("call"), kinds[:4]
