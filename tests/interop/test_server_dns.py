"""Finding the server in DNS (RFC 3263) on the bench: dnsmasq in Kamailio's namespace serves NAPTR/SRV/A
for zcall.test, and zcall is configured with nothing but `uri = "sips:zcall.test"` (no outbound proxy, no
address).

Topology (lan3): Kamailio and dnsmasq on host 0, zcall on host 1, decoy SRV targets on host 2. Kamailio's
certificate names the SIP domain zcall.test (and not the SRV target's name), so registering proves the
certificate was checked against the domain (RFC 5922), and the decoys prove failover (RFC 3263 §4.3).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import netns
from tests.support.dnsmasq import Dnsmasq, resolv_conf
from tests.support.kamailio import SipServer, sip_server
from tests.support.pki import wrong_ca_server_cert
from tests.support.prereq import require_binary
from tests.support.zcall_peer import ZcallPeer

pytestmark = [pytest.mark.interop, pytest.mark.netns, pytest.mark.timeout(120)]

DOMAIN = "zcall.test"
USERS = {"alice": "alice-secret", "bob": "bob-secret"}


@pytest.fixture
def server(lan3: netns.Lan, tmp_path: Path) -> Iterator[SipServer]:
    require_binary("kamailio", "dnsmasq", "openssl", "ss", "nft")
    with sip_server(lan3[0], USERS, tmp_path, dns_name=DOMAIN) as srv:
        yield srv


def account(
    lan: netns.Lan, srv: SipServer, index: int, user: str, tmp: Path, uri: str, **kw: object
) -> ZcallPeer:
    """A headless zcall on host `index` whose [server] is a sips: URI only: the rest comes from DNS."""
    home = tmp / user
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        f'[server]\nuri = "{uri}"\nuser = "{user}"\npassword = "{USERS[user]}"\n'
        f'ca_file = "{srv.ca.cert_path}"\n'
    )
    return ZcallPeer(lan[index], home, name=user, extra=["--no-mdns"], **kw)  # type: ignore[arg-type]


@pytest.fixture
def rogue_tls(lan3: netns.Lan, tmp_path: Path) -> Iterator[int]:
    """A TLS server on host 2, port 5071, whose certificate names zcall.test but comes from another CA."""
    _, cert = wrong_ca_server_cert(tmp_path / "rogue", lan3[2].ip, DOMAIN)
    port = 5071
    proc = lan3[2].popen(
        ["openssl", "s_server", "-quiet", "-accept", f"{lan3[2].ip}:{port}", "-cert", str(cert.cert_path),
         "-key", str(cert.key_path)],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while f":{port}" not in lan3[2].run(["ss", "-Hltn", f"sport = :{port}"]).stdout:
            assert time.monotonic() < deadline and proc.poll() is None, "openssl s_server did not start"
            time.sleep(0.05)
        yield port
    finally:
        proc.kill()
        proc.wait(5)


def test_server_found_by_naptr_and_srv_fails_over_past_dead_and_rogue_targets(
    lan3: netns.Lan, server: SipServer, rogue_tls: int, tmp_path: Path
) -> None:
    kam, decoy = server.kamailio, lan3[2].ip
    records = Dnsmasq(
        lan3[0], domains=(DOMAIN,), workdir=tmp_path / "dns",
        hosts={f"dead.{DOMAIN}": decoy, f"rogue.{DOMAIN}": decoy, f"sip.{DOMAIN}": kam.host.ip},
        srv=[
            (f"_sips._tcp.{DOMAIN}", f"dead.{DOMAIN}", 5061, 10, 0),  # nothing listens: connection refused
            (f"_sips._tcp.{DOMAIN}", f"rogue.{DOMAIN}", rogue_tls, 20, 0),  # TLS fails: unknown CA
            (f"_sips._tcp.{DOMAIN}", f"sip.{DOMAIN}", kam.tls_port, 30, 0),  # Kamailio
        ],
        naptr=[(DOMAIN, 10, 10, "s", "SIPS+D2T", f"_sips._tcp.{DOMAIN}")],
    )  # fmt: skip
    bob = account(lan3, server, 2, "bob", tmp_path, f"sips:{kam.host.ip}", auto_answer=True)
    alice = account(lan3, server, 1, "alice", tmp_path, f"sips:{DOMAIN}")
    with records as dns, resolv_conf(lan3[1], kam.host.ip), alice, bob:
        registered = alice.wait_event("registered", timeout=30)
        assert registered["expires"] > 0
        assert alice.ctl("status")["server"]["address"] == f"{kam.host.ip}:{kam.tls_port}"
        assert not [e for e in alice.events if e["event"] == "registration_failed"], alice.events
        asked = dns.queries()
        walk = [f"query[NAPTR] {DOMAIN}", f"query[SRV] _sips._tcp.{DOMAIN}", f"query[A] dead.{DOMAIN}"]
        assert asked[:3] == walk
        assert f"query[A] rogue.{DOMAIN}" in asked and f"query[A] sip.{DOMAIN}" in asked
        # The account works: a call to a user of the domain goes through the server found in DNS.
        bob.wait_event("registered", timeout=15)
        alice.ctl("call", "bob")
        assert alice.wait_event("secure", timeout=20)["method"] == "dtls-srtp"
        alice.ctl("hangup")
        bob.wait_event("ended", timeout=10)


@pytest.mark.parametrize(("case", "reason"), [("nxdomain", "no such domain"), ("timeout", "DNS timeout")])
def test_dns_failure_is_reported(
    lan3: netns.Lan, server: SipServer, tmp_path: Path, case: str, reason: str
) -> None:
    records = Dnsmasq(lan3[0], domains=("test",), workdir=tmp_path / "dns",
                      srv=[(f"_sips._tcp.{DOMAIN}", f"sip.{DOMAIN}", 5061, 10, 0)])  # fmt: skip
    nameserver = lan3[0].ip
    if case == "timeout":
        # Host 2 silently drops DNS: the resolver hears nothing at all.
        nameserver = lan3[2].ip
        for rule in (["add", "table", "ip", "zcall_dns"],
                     ["add", "chain", "ip", "zcall_dns", "in", "{ type filter hook input priority 0 ; }"],
                     ["add", "rule", "ip", "zcall_dns", "in", "udp", "dport", "53", "drop"]):  # fmt: skip
            assert lan3[2].run(["nft", *rule]).returncode == 0
    uri = f"sips:nowhere.{DOMAIN}" if case == "nxdomain" else f"sips:{DOMAIN}"
    alice = account(lan3, server, 1, "alice", tmp_path, uri)
    with records as dns, resolv_conf(lan3[1], nameserver), alice:
        failed = alice.wait_event("registration_failed", timeout=30)
        assert "DNS" in failed["reason"] and reason in failed["reason"], failed
        assert uri.removeprefix("sips:") in failed["reason"]
        assert alice.ctl("status")["server"]["registered"] is False
        if case == "timeout":
            assert dns.queries() == []
