"""A unit that changes address (a new network, a new DHCP lease) registers again from the new one within
seconds, instead of keeping a flow the server can no longer reach it on; calls then reach it there.

Topology (lan3): Kamailio on host 0, alice on host 1 (not pinned with --bind, as a desk unit runs), bob on
host 2. Alice's address is replaced while she is registered.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import netns
from tests.support.kamailio import sip_server
from tests.support.prereq import require_binary
from tests.support.zcall_peer import ZcallPeer

pytestmark = [pytest.mark.interop, pytest.mark.netns, pytest.mark.timeout(120)]

USERS = {"alice": "alice-secret", "bob": "bob-secret"}


def test_a_new_address_is_registered_again(lan3: netns.Lan, tmp_path: Path) -> None:
    require_binary("kamailio")
    with sip_server(lan3[0], USERS, tmp_path / "srv") as srv:
        kam = srv.kamailio
        peers = []
        for index, user in ((1, "alice"), (2, "bob")):
            home = tmp_path / user
            home.mkdir()
            (home / "config.toml").write_text(
                f'[server]\nuri = "sips:{srv.dns_name}:{kam.tls_port}"\nuser = "{user}"\n'
                f'password = "{USERS[user]}"\nca_file = "{srv.ca.cert_path}"\n'
                f'outbound_proxy = "{kam.host.ip}:{kam.tls_port}"\n'
            )
            peer = ZcallPeer(lan3[index], home, name=user, extra=["--no-mdns"], auto_answer=True)
            if user == "alice":
                at = peer.argv.index("--bind")
                del peer.argv[at : at + 2]  # the unit follows whatever address it has
            peers.append(peer)
        alice, bob = peers
        host = lan3[1]
        old = host.ip
        new = old.rsplit(".", 1)[0] + ".77"
        with alice, bob:
            alice.wait_event("registered", timeout=20)
            bob.wait_event("registered", timeout=20)
            for argv in (["ip", "addr", "del", f"{old}/24", "dev", host.iface],
                         ["ip", "addr", "add", f"{new}/24", "dev", host.iface]):  # fmt: skip
                assert host.run(argv).returncode == 0
            moved = alice.wait_event("registration_failed", timeout=15)
            assert f"address changed ({old} -> {new})" in moved["reason"], moved
            alice.wait_event("registered", timeout=20)
            # The server reaches alice on her new address: a call from bob comes up secure.
            bob.ctl("call", "alice")
            assert bob.wait_event("secure", timeout=20)["method"] == "dtls-srtp"
            assert alice.wait_event("secure", timeout=20)["method"] == "dtls-srtp"
            bob.ctl("hangup")
            alice.wait_event("ended", timeout=10)
