"""NAT traversal's cost: dial -> media keyed on both sides (DTLS-SRTP, and the words: ZRTP over the same flow;
audio flows from that moment) for zcall -> zcall through Kamailio,

- through TURN: two units behind a port-preserving and a random-port NAT (tests/support/nat.py), where only
  coturn's relay carries media, gathering STUN + TURN per call;
- host-only, no ICE: the same two units on one LAN with Kamailio ([nat] unset), the anchor;
- ICE on that LAN ([nat] stun set): what gathering and checks add when the path is direct;
- baresip -> baresip, the outside anchors (DTLS-SRTP, no ICE): through the same LAN Kamailio, and behind the
  same two NATs through the same Kamailio and coturn (baresip's medianat=turn: all media via its relay).

Median of 10 calls each; prints figures and ratios, asserts only that every call came up on the path named.
"""

from __future__ import annotations

import re
import statistics
import time
from pathlib import Path

import pytest

from tests.support import netns
from tests.support.baresip import Baresip
from tests.support.coturn import Coturn
from tests.support.kamailio import Kamailio, SipServer, sip_server
from tests.support.nat import TURN_PASSWORD, TURN_USER, USERS, nat_unit, nat_world
from tests.support.prereq import require_binary
from tests.support.zcall_peer import ZcallPeer

RUNS = 10
pytestmark = [pytest.mark.interop, pytest.mark.netns, pytest.mark.timeout(600)]


def _call_times(alice: ZcallPeer, bob: ZcallPeer, path: str | None) -> list[float]:
    """RUNS calls alice -> bob: seconds from dialing to both sides secure."""
    alice.wait_event("registered", timeout=30)
    bob.wait_event("registered", timeout=30)
    times = []
    for _ in range(RUNS):
        alice.ctl("call", "bob")
        dialing = alice.wait_event("call", state="dialing")
        secure = [side.wait_event("secure", timeout=30) for side in (alice, bob)]
        times.append(max(event["_t"] for event in secure) - dialing["_t"])
        assert {event.get("path") for event in secure} == {path}, secure
        alice.ctl("hangup")
        alice.wait_event("ended", timeout=10)
        bob.wait_event("ended", timeout=10)
    return times


def _lan_unit(lan: netns.Lan, srv: SipServer, index: int, user: str, tmp: Path, nat: str) -> ZcallPeer:
    home = tmp / user
    home.mkdir(parents=True, exist_ok=True)
    kam = srv.kamailio
    (home / "config.toml").write_text(
        f'[server]\nuri = "sips:{srv.dns_name}:{kam.tls_port}"\nuser = "{user}"\n'
        f'password = "{USERS[user]}"\nca_file = "{srv.ca.cert_path}"\n'
        f'outbound_proxy = "{kam.host.ip}:{kam.tls_port}"\n{nat}'
    )
    return ZcallPeer(lan[index], home, name=user, extra=["--no-mdns"], auto_answer=user == "bob")


def test_dial_to_keyed_through_turn_against_host_only(lan3: netns.Lan, tmp_path: Path) -> None:
    require_binary("kamailio", "baresip", "turnserver", "ping")
    figures: dict[str, list[float]] = {}
    with nat_world(tmp_path / "nat", ("persistent", "random")) as world:
        alice = nat_unit(world, 0, "alice", tmp_path / "nat")
        bob = nat_unit(world, 1, "bob", tmp_path / "nat", auto_answer=True)
        with alice, bob:
            figures["zcall->zcall via TURN (ICE)"] = _call_times(alice, bob, "relay")
        relay = (f"{world.turn.ip}:{world.turn.port}", TURN_USER, TURN_PASSWORD)
        units = world.bench.units
        figures["baresip->baresip via TURN"] = _baresip_times(units[0], units[1], world.kamailio,
                                                              tmp_path / "baresip-turn", relay)  # fmt: skip
    with sip_server(lan3[0], USERS, tmp_path / "srv") as srv:
        for label, nat, path in (("zcall->zcall host, no ICE", "", None),
                                 ("zcall->zcall host, ICE", "ice", "host")):  # fmt: skip
            tmp = tmp_path / label.replace(" ", "_").replace(",", "").replace(">", "")
            stun = ""
            with Coturn(lan3[0].ip, host=lan3[0], workdir=tmp / "coturn") as lan_turn:
                if nat:
                    stun = f'[nat]\nstun = "{lan_turn.stun_uri}"\n'
                with _lan_unit(lan3, srv, 1, "alice", tmp, stun) as alice, \
                        _lan_unit(lan3, srv, 2, "bob", tmp, stun) as bob:  # fmt: skip
                    figures[label] = _call_times(alice, bob, path)
        figures["baresip->baresip host"] = _baresip_times(lan3[1], lan3[2], srv.kamailio,
                                                          tmp_path / "baresip")  # fmt: skip
        rtt_ms = _ping_rtt_ms(lan3[1], lan3[2].ip)
    medians = {name: statistics.median(values) * 1000 for name, values in figures.items()}
    anchor = medians["zcall->zcall host, no ICE"]
    turn, ice = medians["zcall->zcall via TURN (ICE)"], medians["zcall->zcall host, ICE"]
    baresip = medians["baresip->baresip host"]
    print(f"\nNAT traversal: dial -> keyed on both sides (audio flows from then), {RUNS} calls each, medians")
    for name, values in figures.items():
        runs = " ".join(f"{v * 1000:.0f}" for v in values)
        print(f"  {name:<30} {medians[name]:8.1f} ms   runs (ms): {runs}")
    print(f"  via TURN: {turn:.0f} ms against the goal of 500 ms: {'met' if turn <= 500 else 'NOT MET'}")
    allowed, added = rtt_ms + 50.0, ice - anchor
    print(f"  ICE adds {added:+.1f} ms over host-only (host ICE {ice:.1f} - host no ICE {anchor:.1f} ms); "
          f"goal <= 1 RTT + 50 ms = {allowed:.1f} ms, RTT {rtt_ms:.2f} ms (ping alice -> bob, the path ICE "
          f"selects): {'met' if added <= allowed else 'NOT MET'}")  # fmt: skip
    print(f"  ratio via TURN / host no ICE:  {turn / anchor:5.2f}x")
    print(f"  ratio host ICE / host no ICE:  {ice / anchor:5.2f}x")
    baresip_turn = medians["baresip->baresip via TURN"]
    print(f"  via TURN against baresip->baresip via the same TURN and Kamailio ({baresip_turn:.1f} ms): "
          f"{turn / baresip_turn:.2f}x; best of {RUNS}: "
          f"{min(figures['zcall->zcall via TURN (ICE)']) / min(figures['baresip->baresip via TURN']):.2f}x")
    print(f"  against baresip->baresip through the same LAN Kamailio ({baresip:.1f} ms): "
          f"via TURN {turn / baresip:.2f}x, host ICE {ice / baresip:.2f}x, "
          f"host no ICE {anchor / baresip:.2f}x")  # fmt: skip
    # baresip's runs are bimodal here: ~50 ms, or ~1050 ms when its callee's DTLS ClientHello reaches the
    # caller a second late (its log: the call established, then 'incoming DTLS connect' 1 s on); best runs
    # compare the paths without that wait.
    best = {name: min(values) * 1000 for name, values in figures.items()}
    print(f"  best of {RUNS} against baresip's best ({best['baresip->baresip host']:.1f} ms): via TURN "
          f"{best['zcall->zcall via TURN (ICE)'] / best['baresip->baresip host']:.2f}x, host ICE "
          f"{best['zcall->zcall host, ICE'] / best['baresip->baresip host']:.2f}x, host no ICE "
          f"{best['zcall->zcall host, no ICE'] / best['baresip->baresip host']:.2f}x")  # fmt: skip


def _ping_rtt_ms(host: netns.Host, target: str) -> float:
    """The median-ish round trip between two bench hosts (ping's average of 10)."""
    result = host.run(["ping", "-n", "-q", "-c", "10", "-i", "0.2", target])
    match = re.search(r"= [\d.]+/([\d.]+)/", result.stdout)
    assert result.returncode == 0 and match, result.stdout + result.stderr
    return float(match.group(1))


def _baresip_times(
    dave_host: netns.Host, carol_host: netns.Host, kam: Kamailio, tmp: Path,
    turn: tuple[str, str, str] | None = None,
) -> list[float]:  # fmt: skip
    """RUNS calls dave -> carol through Kamailio: seconds from dialing to both sides secure. With `turn`,
    both send all media through that relay (baresip's medianat=turn: it has no ICE towards TURN)."""
    uri = kam.tls_uri
    carol = Baresip(carol_host, "carol", USERS["carol"], registrar=uri, outbound=uri, workdir=tmp / "carol",
                    turn=turn)  # fmt: skip
    dave = Baresip(dave_host, "dave", USERS["dave"], registrar=uri, outbound=uri, ctrl_port=4445,
                   workdir=tmp / "dave", rtp_ports="21000-21100", turn=turn)  # fmt: skip
    times = []
    with carol, dave:
        for ua in (carol, dave):
            ua.wait_registered()
        for _ in range(RUNS):
            start = time.monotonic()
            dave.dial(f"sip:carol@{kam.host.ip}")
            carol.wait_event("CALL_INCOMING", timeout=15)
            carol.answer()
            times.append(max(dave.wait_secure().at, carol.wait_secure().at) - start)
            dave.hangup()
            carol.wait_event("CALL_CLOSED")
    if turn is not None:
        for ua in (carol, dave):
            assert ua.log().count("media-nat 'turn' established") >= RUNS, ua.log_path
    return times
