"""Real mDNS between network namespaces: units find each other, say goodbye, and resolve name clashes."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from tests.support import netns
from zcall.discovery.lan import YIELD_WINDOW_S

pytestmark = [pytest.mark.netns, pytest.mark.slow]

ZID_A = "aa" * 12
ZID_B = "bb" * 12
ZID_C = "cc" * 12


class Agent:
    """`python -m zcall.discovery` inside a namespace; its JSON lines collected by a reader thread."""

    def __init__(
        self, host: netns.Host, name: str, zid: str, sip_port: int, bind: bool = True,
        start_at: float | None = None, probe: bool = True, browse_only: bool = False,
    ) -> None:
        argv = [sys.executable, "-m", "zcall.discovery", "--name", name, "--zid", zid,
                "--sip-port", str(sip_port), "--for", "60"]
        if start_at is not None:
            argv += ["--start-at", repr(start_at)]
        if not probe:
            argv += ["--no-probe"]
        if browse_only:
            argv += ["--browse-only"]
        if bind:
            argv += ["--bind", host.ip]
        self.proc = host.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def wait_for(self, timeout: float, **match: Any) -> dict[str, Any]:
        """The first event (already seen or arriving within timeout) whose fields include `match`."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.seen:
                if all(event.get(k) == v for k, v in match.items()):
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                err = self.proc.stderr.read() if self.proc.poll() is not None and self.proc.stderr else ""
                raise AssertionError(f"no {match} within {timeout}s; saw {self.seen}; stderr: {err}")
            try:
                self.seen.append(self.lines.get(timeout=remaining))
            except queue.Empty:
                continue

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=15)
        self.wait_for(2, event="closed")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)


def _sip_service_lookup(host: netns.Host, instance: str) -> dict[str, Any]:
    """Resolve `<instance>._sip._udp.local.` with a plain zeroconf client, independent of our browser."""
    script = (
        "import json,sys;from zeroconf import Zeroconf,IPVersion;"
        f"z=Zeroconf(interfaces=['{host.ip}'],ip_version=IPVersion.V4Only);"
        f"i=z.get_service_info('_sip._udp.local.',{instance + '._sip._udp.local.'!r},4000);"
        "print(json.dumps(None if i is None else {'port':i.port,'addresses':i.parsed_addresses(),"
        "'zid':(i.properties.get(b'zid') or b'').decode()}));z.close()"
    )
    out = host.run([sys.executable, "-c", script], timeout=30)
    assert out.returncode == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def test_two_units_find_each_other_and_say_goodbye(lan2: netns.Lan) -> None:
    host_a, host_b = lan2.hosts
    a = Agent(host_a, "Alpha", ZID_A, 5060)
    b: Agent | None = None
    try:
        a.wait_for(15, event="registered", name="Alpha")
        b = Agent(host_b, "Bravo", ZID_B, 5070, bind=False)  # no --bind: advertises its own addresses
        b_registered = b.wait_for(15, event="registered", name="Bravo")
        up = a.wait_for(3 + max(0.0, b_registered["t"] - time.time()), event="up", name="Bravo")
        assert up["t"] - b_registered["t"] < 3.0
        assert (up["zid"], up["address"], up["port"], up["sip_port"]) == (ZID_B, host_b.ip, 5070, 5070)
        back = b.wait_for(5, event="up", name="Alpha")
        assert (back["zid"], back["address"], back["sip_port"]) == (ZID_A, host_a.ip, 5060)

        # The _sip._udp twin is there for ordinary SIP phones.
        sip = _sip_service_lookup(host_a, "Bravo")
        assert sip == {"port": 5070, "addresses": [host_b.ip], "zid": ZID_B}

        stopped_at = time.time()
        b.stop()
        down = a.wait_for(5, event="down", name="Bravo")
        assert down["zid"] == ZID_B and down["t"] - stopped_at < 3.0

        # A browse-only lister carrying A's identity (a clone, or `zcall peers` beside the phone) drops A by
        # its ZID. It runs on B's host, now quiet, so it surely hears A.
        lister = Agent(host_b, "Lister", ZID_A, 5060, browse_only=True)
        try:
            lister.wait_for(10, event="browsing")
            time.sleep(2.5)
        finally:
            lister.stop()
        assert not [e for e in lister.seen if e["event"] == "up"]
        drops = lister.wait_for(1, event="closed")["drops"]
        assert set(drops) == {"self"} and drops["self"] >= 1
    finally:
        if b is not None:
            b.kill()
        a.stop()
    # Neither ever reported itself.
    for agent, own in ((a, ZID_A), (b, ZID_B)):
        assert agent is not None
        assert not [e for e in agent.seen if e["event"] == "up" and e["zid"] == own]
    assert a.wait_for(1, event="closed")["drops"] == {}  # nothing malformed on this LAN


def test_same_name_on_three_hosts_is_made_unique(lan3: netns.Lan) -> None:
    host_a, host_b, host_c = lan3.hosts
    agents: list[Agent] = []
    try:
        observer = Agent(host_a, "Observer", ZID_A, 5060)
        agents.append(observer)
        first = Agent(host_b, "Desk", ZID_B, 5060)
        agents.append(first)
        first.wait_for(15, event="registered", name="Desk")
        second = Agent(host_c, "Desk", ZID_C, 5060)
        agents.append(second)
        second.wait_for(15, event="registered", name="Desk (2)")
        assert observer.wait_for(5, event="up", name="Desk")["zid"] == ZID_B
        assert observer.wait_for(5, event="up", name="Desk (2)")["zid"] == ZID_C
        assert first.wait_for(5, event="up", name="Desk (2)")["zid"] == ZID_C
        assert second.wait_for(5, event="up", name="Desk")["zid"] == ZID_B
        # The renamed unit advertises its new name to SIP phones too.
        assert _sip_service_lookup(host_a, "Desk (2)")["zid"] == ZID_C
    finally:
        for agent in agents:
            agent.kill()


def _final_view(agent: Agent) -> dict[str, str]:
    """name -> zid as the agent's up/down events leave it."""
    view: dict[str, str] = {}
    for event in agent.seen:
        if event["event"] == "up":
            view[event["name"]] = event["zid"]
        elif event["event"] == "down" and view.get(event["name"]) == event["zid"]:
            del view[event["name"]]
    return view


def _holder_then_claimer(lan3: netns.Lan, agents: list[Agent], claim_after: float) -> tuple[Agent, ...]:
    """An observer; a holder of "Desk" with the higher ZID; `claim_after` s later a claimer of "Desk" with the
    lower ZID that does not probe (as after probing at the same instant, or a unit that lies)."""
    host_a, host_b, host_c = lan3.hosts
    observer = Agent(host_a, "Observer", ZID_A, 5060)
    agents.append(observer)
    holder = Agent(host_b, "Desk", ZID_C, 5060)
    agents.append(holder)
    holder.wait_for(15, event="registered", name="Desk")
    time.sleep(claim_after)
    claimer = Agent(host_c, "Desk", ZID_B, 5060, probe=False)
    agents.append(claimer)
    claimer.wait_for(15, event="registered", name="Desk")
    return observer, holder, claimer


def test_late_conflict_lower_zid_keeps_the_name(lan3: netns.Lan) -> None:
    """Two units that both believe they own "Desk" (as after probing at the same instant) sort it out."""
    agents: list[Agent] = []
    try:
        observer, holder, claimer = _holder_then_claimer(lan3, agents, claim_after=0.0)
        renamed = holder.wait_for(10, event="renamed")
        assert (renamed["old"], renamed["new"]) == ("Desk", "Desk (2)")
        assert not [e for e in claimer.seen if e["event"] == "renamed"]
        observer.wait_for(10, event="up", name="Desk (2)", zid=ZID_C)
        claimer.wait_for(10, event="up", name="Desk (2)", zid=ZID_C)
        holder.wait_for(10, event="up", name="Desk", zid=ZID_B)
        time.sleep(2.0)  # let re-announcements settle, then read everyone's final picture
        for agent in agents:
            while not agent.lines.empty():
                agent.seen.append(agent.lines.get())
        assert _final_view(observer) == {"Desk": ZID_B, "Desk (2)": ZID_C}
        assert _final_view(holder) == {"Observer": ZID_A, "Desk": ZID_B}
        assert _final_view(claimer) == {"Observer": ZID_A, "Desk (2)": ZID_C}
    finally:
        for agent in agents:
            agent.kill()


def test_a_unit_that_held_its_name_past_the_start_keeps_it(lan3: netns.Lan) -> None:
    """A rival that claims our name long after we announced it (it did not probe, and its ZID is lower) does
    not make us rename: otherwise anyone could walk a unit through its names until it stops advertising."""
    agents: list[Agent] = []
    try:
        observer, holder, _ = _holder_then_claimer(lan3, agents, claim_after=YIELD_WINDOW_S + 1)
        observer.wait_for(10, event="up", name="Desk", zid=ZID_B)  # the claim did reach the LAN
        time.sleep(5.0)
        for agent in agents:
            while not agent.lines.empty():
                agent.seen.append(agent.lines.get())
        assert not [e for e in holder.seen if e["event"] == "renamed"]
    finally:
        for agent in agents:
            agent.kill()
