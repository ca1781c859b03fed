"""Units behind NAT for the bench: a WAN (a bridge joining server hosts and routers), and behind each router a
unit on a private network, masqueraded by nftables.

Two kinds of NAT (both filter like a stateful firewall: only replies to flows started inside get in):
- "persistent": `masquerade persistent`, a flow keeps its source port where it can: the address a STUN server
  sees is the one a peer can reach once both sides have sent (hole punching works: srflx);
- "random": `masquerade fully-random`, every flow gets a new random port: what a STUN server sees is useless
  to a peer, so two units meet only through a TURN relay.

wan hosts: 0 SIP server, 1 DNS, 2 STUN/TURN, 3.. routers; `units[i]` sits behind router i.
`nat_world()` runs the servers there (Kamailio over TLS for zcall.test, found by NAPTR/SRV from dnsmasq;
coturn) and `nat_unit()` makes a zcall behind a NAT that knows only `sips:zcall.test` and [nat].
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support import netns
from tests.support.coturn import Coturn
from tests.support.dnsmasq import Dnsmasq, resolv_conf
from tests.support.kamailio import Kamailio, sip_server
from tests.support.netns import Host
from tests.support.prereq import require_binary, require_root
from tests.support.zcall_peer import ZcallPeer

NAT_RULE = {"persistent": "masquerade persistent", "random": "masquerade fully-random"}


@dataclass
class NatBench:
    wan: netns.Lan
    units: list[Host]
    routers: list[Host]

    @property
    def sip(self) -> Host:
        return self.wan[0]

    @property
    def dns(self) -> Host:
        return self.wan[1]

    @property
    def turn(self) -> Host:
        return self.wan[2]


def _run(*argv: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {result.stderr.strip()}")


@contextlib.contextmanager
def nat_bench(kinds: Sequence[str] = ("persistent", "random")) -> Iterator[NatBench]:
    require_root()
    require_binary("nft", "ip")
    with netns.lan(3 + len(kinds), prefix="zn") as wan:
        units: list[Host] = []
        created: list[str] = []
        # As on the internet, a packet to a private address elsewhere leaves by a default route and is lost
        # there (the DNS host does not forward): no "network unreachable" at the sender. coturn closes an
        # allocation whose relayed send fails, and ICE does pair the relay with the peer's host candidates.
        for host in wan.hosts:
            if host is not wan[1]:
                _run("ip", "-n", host.netns, "route", "add", "default", "via", wan[1].ip)
        try:
            for i, kind in enumerate(kinds):
                router = wan[3 + i]
                unit_ns = f"{router.netns}u"
                _run("ip", "netns", "add", unit_ns)
                created.append(unit_ns)
                subnet = f"192.168.{i + 1}"
                _run("ip", "-n", router.netns, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0",
                     "netns", unit_ns)  # fmt: skip
                _run("ip", "-n", router.netns, "addr", "add", f"{subnet}.1/24", "dev", "lan0")
                _run("ip", "-n", router.netns, "link", "set", "lan0", "up")
                _run("ip", "netns", "exec", router.netns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
                # Unsolicited packets to the router itself are dropped before conntrack confirms them: an
                # entry for a peer's early hole-punching packet would take the mapping our own flow needs
                # (Linux then gives our flow another port, and punching never succeeds).
                rules = (
                    "table ip zcall_nat {\n"
                    " chain post { type nat hook postrouting priority 100; policy accept;\n"
                    f'  oifname "{router.iface}" ip saddr {subnet}.0/24 {NAT_RULE[kind]}\n }}\n'
                    " chain input { type filter hook input priority 0; policy accept;\n"
                    f'  iifname "{router.iface}" ct state new drop\n }}\n'
                    "}\n"
                )
                _run("ip", "netns", "exec", router.netns, "nft", rules)
                for argv in (["link", "set", "lo", "up"], ["addr", "add", f"{subnet}.2/24", "dev", "eth0"],
                             ["link", "set", "eth0", "up"],
                             ["route", "add", "default", "via", f"{subnet}.1"]):
                    _run("ip", "-n", unit_ns, *argv)
                units.append(Host(unit_ns, "eth0", f"{subnet}.2"))
            yield NatBench(wan, units, [wan[3 + i] for i in range(len(kinds))])
        finally:
            for name in reversed(created):
                for pid in subprocess.run(["ip", "netns", "pids", name], capture_output=True,
                                          text=True).stdout.split():  # fmt: skip
                    with contextlib.suppress(ProcessLookupError, ValueError):
                        os.kill(int(pid), 9)
                subprocess.run(["ip", "netns", "del", name], capture_output=True)


DOMAIN = "zcall.test"
USERS = {"alice": "alice-secret", "bob": "bob-secret", "carol": "carol-secret", "dave": "dave-secret"}
TURN_USER, TURN_PASSWORD = "relay", "relay-secret"


@dataclass
class NatWorld:
    """The bench with its WAN servers running: what units behind the NATs need."""

    bench: NatBench
    ca: Path  # signs Kamailio's and coturn's certificates
    turn: Coturn
    kamailio: Kamailio

    def registered(self, *units: ZcallPeer, timeout: float = 30) -> None:
        """Each unit registered; if one is not, the failure says how Kamailio is (alive, what it logged)."""
        for unit in units:
            try:
                unit.wait_event("registered", timeout=timeout)
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{self.kamailio.state()}") from None


@contextlib.contextmanager
def nat_world(tmp: Path, kinds: tuple[str, str]) -> Iterator[NatWorld]:
    """The WAN servers running (Kamailio answering TLS) and both units pointed at the DNS server."""
    require_binary("kamailio", "dnsmasq", "turnserver", "nft", "ss", "openssl")
    with nat_bench(kinds) as bench, sip_server(bench.sip, USERS, tmp, dns_name=DOMAIN) as srv:
        kam = srv.kamailio
        records = Dnsmasq(
            bench.dns, domains=(DOMAIN,), workdir=tmp / "dns", hosts={f"sip.{DOMAIN}": kam.host.ip},
            srv=[(f"_sips._tcp.{DOMAIN}", f"sip.{DOMAIN}", kam.tls_port, 10, 0)],
            naptr=[(DOMAIN, 10, 10, "s", "SIPS+D2T", f"_sips._tcp.{DOMAIN}")],
        )  # fmt: skip
        # coturn's TLS certificate comes from the SIP server's CA: units verify both with [server] ca_file.
        cert = srv.ca.server_cert(bench.turn.ip, f"turn.{DOMAIN}", stem="turn")
        turn = Coturn(bench.turn.ip, host=bench.turn, user=TURN_USER, password=TURN_PASSWORD, tls_port=5349,
                      cert=cert.cert_path, key=cert.key_path, workdir=tmp / "coturn")  # fmt: skip
        a, b = bench.units
        with records, turn, resolv_conf(a, bench.dns.ip), resolv_conf(b, bench.dns.ip):
            yield NatWorld(bench, srv.ca.cert_path, turn, kam)


def nat_unit(
    world: NatWorld, index: int, user: str, tmp: Path, relay: bool = True, transport: str = "udp",
    **kw: object,
) -> ZcallPeer:
    """A unit knowing only the SIP domain and [nat]: STUN, and TURN over `transport` (udp, tcp or tls)
    unless `relay` is off."""
    turn = world.turn
    home = tmp / user
    home.mkdir(parents=True, exist_ok=True)
    nat = f'[nat]\nstun = "{turn.stun_uri}"\n'
    if relay:
        nat += f'turn = "{turn.turn_uri(transport)}"\nturn_user = "{TURN_USER}"\n'
        nat += f'turn_password = "{TURN_PASSWORD}"\n'
    (home / "config.toml").write_text(
        f'[server]\nuri = "sips:{DOMAIN}"\nuser = "{user}"\npassword = "{USERS[user]}"\n'
        f'ca_file = "{world.ca}"\n{nat}'
    )
    return ZcallPeer(world.bench.units[index], home, name=user, extra=["--no-mdns"], **kw)  # type: ignore[arg-type]
