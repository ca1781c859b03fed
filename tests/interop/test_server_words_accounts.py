"""The trust cache remembers which device answered at a server account (a bound ZRTP exchange met it
there), so a verified unit off the LAN, dialled by its account or calling from it, is still recognised:
reached without words it is a downgrade; another device answering there with words, an identity mismatch.

Real processes in namespaces (lan3): Kamailio on host 0, alice on host 1, bob on host 2, no mDNS anywhere.
Each phase has a server of its own (the second one strips a=zrtp-hash); the units keep their homes.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.interop.test_server_words import NO_ZRTP, alerts, hang_up, secure_pair
from tests.interop.test_zcall_server import USERS, zcall_account
from tests.support import netns
from tests.support.kamailio import SdpEdits, sip_server
from tests.support.prereq import require_binary

pytestmark = [pytest.mark.interop, pytest.mark.netns, pytest.mark.timeout(240)]


def test_a_verified_account_is_recognised_off_the_lan(lan3: netns.Lan, tmp_path: Path) -> None:
    require_binary("kamailio", "openssl", "ss")
    # 1. Alice calls bob's account through the server; they read the words and say they match.
    with sip_server(lan3[0], USERS, tmp_path / "s1") as srv:
        bob_aor = f"sips:bob@{srv.dns_name}"
        alice = zcall_account(lan3, srv, 1, "alice", tmp_path)
        bob = zcall_account(lan3, srv, 2, "bob", tmp_path, auto_answer=True)
        with alice, bob:
            for peer in (alice, bob):
                peer.wait_event("registered", timeout=15)
            bob_zid = bob.wait_event("ready", since=0)["zid"]
            a, b = secure_pair(alice, bob, bob_aor)
            assert a["verifiable"] is True and a["peer_zid"] == bob_zid and a["sas_words"] == b["sas_words"]
            alice.ctl("verify")
            bob.ctl("verify")
            hang_up(alice, bob)
            assert alerts(alice) == alerts(bob) == []

    # 2. A server that strips a=zrtp-hash: no words. Both ends know the account, so both are told.
    with sip_server(lan3[0], USERS, tmp_path / "s2", sdp_edits=SdpEdits(NO_ZRTP, NO_ZRTP)) as srv:
        alice = zcall_account(lan3, srv, 1, "alice", tmp_path)
        bob = zcall_account(lan3, srv, 2, "bob", tmp_path, auto_answer=True)
        with alice, bob:
            for peer in (alice, bob):
                peer.wait_event("registered", timeout=15)
            a, b = secure_pair(alice, bob, bob_aor)
            assert a["verifiable"] is False and b["verifiable"] is False
            time.sleep(1.0)  # alerts after secure, if any, have arrived
            assert alerts(alice) == ["downgrade"], "dialled at the account of a verified unit"
            assert alerts(bob) == ["downgrade"], "called from the account of a verified unit"
            hang_up(alice, bob)

    # 3. Another unit holds bob's account and answers with words: not the device alice verified there.
    with sip_server(lan3[0], USERS, tmp_path / "s3") as srv:
        alice = zcall_account(lan3, srv, 1, "alice", tmp_path)
        other = zcall_account(lan3, srv, 2, "bob", tmp_path / "other", auto_answer=True)
        with alice, other:
            for peer in (alice, other):
                peer.wait_event("registered", timeout=15)
            mark = alice.mark()
            a, _ = secure_pair(alice, other, bob_aor)
            assert a["verifiable"] is True and a["peer_zid"] != bob_zid and a["verified"] is False
            assert alice.wait_event("alert", since=mark, timeout=5)["kind"] == "identity_mismatch"
            assert alice.ctl("status")["calls"][0]["muted"] is True
            hang_up(alice, other)
