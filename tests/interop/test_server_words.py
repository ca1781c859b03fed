"""Words on the server path: between zcall units, ZRTP runs over the DTLS-SRTP flow through Kamailio, bound to
the DTLS session by an exporter value (ZRTP's auxiliary secret). Real processes in namespaces.

Topology (lan3): Kamailio (and the man in the middle, when there is one) on host 0, alice on host 1, bob on 2.
The attacker is the server: Kamailio rewrites the SDP (textops) to point media at a man in the middle built
from our own cores (tests/support/dtls_mitm.py) with its own DTLS certificate, or strips a=zrtp-hash.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.interop.test_zcall_server import USERS, zcall_account
from tests.support import netns
from tests.support.kamailio import SdpEdits, SipServer, sip_server
from tests.support.prereq import require_binary
from tests.support.zcall_peer import ZcallPeer
from zcall.identity import load_or_create
from zcall.paths import Paths

pytestmark = [pytest.mark.interop, pytest.mark.netns, pytest.mark.timeout(180)]

REPO = Path(__file__).resolve().parents[2]
RTP_PORT = 40000  # each unit's media port (fixed, so the man in the middle knows where the offerer is)
MITM_A, MITM_B = 41000, 41002  # where the man in the middle takes the offerer's and the answerer's media
# ICE would find the direct path around the man in the middle: the server hides the candidates too.
NO_ICE = ("/a=candidate:/a=x-candidate:/g", "/a=ice-/a=x-ice-/g")
NO_ZRTP = ("/a=zrtp-hash:/a=x-zrtp-hash:/g",)


def unit(lan: netns.Lan, srv: SipServer, index: int, user: str, tmp: Path, **kw: Any) -> ZcallPeer:
    peer = zcall_account(lan, srv, index, user, tmp, **kw)
    with (tmp / user / "config.toml").open("a") as config:
        config.write(f"\n[network]\nrtp_port = {RTP_PORT}\n")
    load_or_create(Paths.resolve(tmp / user).identity_dir)  # now, so the man in the middle can pin it
    return peer


def cert_of(tmp: Path, user: str) -> Path:
    return Paths.resolve(tmp / user).identity_dir / "cert.pem"


def secure_pair(caller: ZcallPeer, callee: ZcallPeer, target: str) -> tuple[dict[str, Any], dict[str, Any]]:
    marks = caller.mark(), callee.mark()
    caller.ctl("call", target)
    first = caller.wait_event("secure", since=marks[0], timeout=30)
    return first, callee.wait_event("secure", since=marks[1], timeout=30)


def alerts(peer: ZcallPeer) -> list[str]:
    peer.mark()
    return [e["kind"] for e in peer.events if e["event"] == "alert"]


def hang_up(caller: ZcallPeer, callee: ZcallPeer) -> None:
    caller.ctl("hangup")
    caller.wait_event("ended", timeout=10)
    callee.wait_event("ended", timeout=10)


def test_units_read_the_same_words_through_the_server_and_are_verified_next_time(
    lan3: netns.Lan, tmp_path: Path
) -> None:
    require_binary("kamailio", "openssl", "ss")
    with sip_server(lan3[0], USERS, tmp_path) as srv:
        alice = unit(lan3, srv, 1, "alice", tmp_path, auto_answer=True)
        bob = unit(lan3, srv, 2, "bob", tmp_path, auto_answer=True)
        with alice, bob:
            alice.wait_event("registered", timeout=15)
            bob.wait_event("registered", timeout=15)
            zids = {
                "alice": alice.wait_event("ready", since=0)["zid"],
                "bob": bob.wait_event("ready", since=0)["zid"],
            }
            for round_, cache in ((1, "new"), (2, "match")):
                a, b = secure_pair(alice, bob, "bob")
                for secure, peer in ((a, "bob"), (b, "alice")):
                    assert secure["method"] == "dtls-srtp" and secure["fingerprint_ok"] is True, secure
                    assert secure["verifiable"] is True and secure["peer_zid"] == zids[peer], secure
                    assert secure["cache"] == cache, (round_, secure)
                    # The people compared the words in the first call: the second says so on both ends.
                    assert secure["verified"] is (round_ == 2), (round_, secure)
                assert a["sas_words"] and a["sas_words"] == b["sas_words"]
                assert alice.ctl("status")["calls"][0]["muted"] is False
                if round_ == 1:
                    alice.ctl("verify")
                    bob.ctl("verify")
                hang_up(alice, bob)
            assert alerts(alice) == alerts(bob) == []


@contextmanager
def dtls_mitm(
    host: netns.Host, mode: str, to_a: str, pins: tuple[Path, Path]
) -> Iterator[tuple[dict[str, Any], subprocess.Popen[str]]]:
    argv = [sys.executable, "-m", "tests.support.dtls_mitm", "--mode", mode, "--a", f"{host.ip}:{MITM_A}",
            "--b", f"{host.ip}:{MITM_B}", "--to-a", f"{to_a}:{RTP_PORT}",
            "--pins", str(pins[0]), str(pins[1])]  # fmt: skip
    proc = host.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=str(REPO))
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        yield first, proc
    finally:
        proc.terminate()
        proc.wait(10)


def mitm_edits(host: netns.Host, info: dict[str, Any], rewrite_hashes: bool) -> SdpEdits:
    """The server's part: every SDP points at the man in the middle and pins its certificate."""
    fingerprint = info["fingerprint"].split()[1]
    common = (
        f"/c=IN IP4 [0-9.]+/c=IN IP4 {host.ip}/g",
        f"/a=fingerprint:sha-256 [0-9A-F:]+/a=fingerprint:sha-256 {fingerprint}/g",
        *NO_ICE,
    )
    offer = (f"/m=audio [0-9]+/m=audio {MITM_B}/", *common)  # bob's media goes to side b
    answer = (f"/m=audio [0-9]+/m=audio {MITM_A}/", *common)
    if rewrite_hashes:
        offer += (f"/a=zrtp-hash:1.10 [0-9a-f]+/a=zrtp-hash:{info['hash_b']}/",)
        answer += (f"/a=zrtp-hash:1.10 [0-9a-f]+/a=zrtp-hash:{info['hash_a']}/",)
    return SdpEdits(offer, answer)


def mitm_call(
    lan3: netns.Lan, tmp_path: Path, mode: str
) -> tuple[dict[str, Any], dict[str, Any], list[str], list[str], list[str]]:
    require_binary("kamailio", "openssl", "ss")
    pins = (cert_of(tmp_path, "alice"), cert_of(tmp_path, "bob"))
    for user in ("alice", "bob"):
        load_or_create(Paths.resolve(tmp_path / user).identity_dir)
    with dtls_mitm(lan3[0], mode, lan3[1].ip, pins) as (info, proc):
        edits = mitm_edits(lan3[0], info, rewrite_hashes=mode == "terminate")
        with sip_server(lan3[0], USERS, tmp_path, sdp_edits=edits) as srv:
            alice = unit(lan3, srv, 1, "alice", tmp_path)
            bob = unit(lan3, srv, 2, "bob", tmp_path, auto_answer=True)
            with alice, bob:
                alice.wait_event("registered", timeout=15)
                bob.wait_event("registered", timeout=15)
                a, b = secure_pair(alice, bob, "bob")
                time.sleep(1.0)  # alerts after secure, if any, have arrived
                muted = [
                    str(alice.ctl("status")["calls"][0]["muted"]),
                    str(bob.ctl("status")["calls"][0]["muted"]),
                ]
                said = alerts(alice), alerts(bob)
                hang_up(alice, bob)
        proc.terminate()
        assert proc.stdout is not None
        lines = proc.stdout.read()
    assert '"secure": "a"' in lines and '"secure": "b"' in lines, (
        f"the man in the middle keyed both sides: {lines}"
    )
    return a, b, said[0], said[1], muted


def test_a_man_in_the_middle_of_dtls_relaying_zrtp_is_a_channel_binding_mismatch(
    lan3: netns.Lan, tmp_path: Path
) -> None:
    a, b, alerts_a, alerts_b, muted = mitm_call(lan3, tmp_path, "relay")
    assert alerts_a == alerts_b == ["channel_binding_mismatch"]
    assert muted == ["True", "True"], "the microphone stays muted on both ends"
    # ZRTP ran end to end through it, so the words agree: that is why they cannot be trusted here.
    assert a["sas_words"] == b["sas_words"] and a["verified"] is False and b["verified"] is False


def test_a_man_in_the_middle_terminating_zrtp_too_is_caught_by_differing_words(
    lan3: netns.Lan, tmp_path: Path
) -> None:
    a, b, alerts_a, alerts_b, _ = mitm_call(lan3, tmp_path, "terminate")
    assert alerts_a == alerts_b == []  # it bound each ZRTP side to its own DTLS session
    assert a["verifiable"] is True and b["verifiable"] is True
    assert a["sas_words"] != b["sas_words"], "the people reading their words catch it"


def test_a_verified_unit_reached_through_the_server_without_words_is_a_downgrade(
    lan3: netns.Lan, tmp_path: Path
) -> None:
    """Alice and bob compared words on the LAN. Later bob's unit cannot be reached on the LAN and the call
    goes through a server that strips a=zrtp-hash: no words, and both are told loudly."""
    require_binary("kamailio", "openssl", "ss", "nft")
    with sip_server(lan3[0], USERS, tmp_path, sdp_edits=SdpEdits(NO_ZRTP, NO_ZRTP)) as srv:
        alice = unit(lan3, srv, 1, "alice", tmp_path, mdns=True)
        bob = unit(lan3, srv, 2, "bob", tmp_path, mdns=True, auto_answer=True)
        with alice, bob:
            alice.wait_event("registered", timeout=15)
            bob.wait_event("registered", timeout=15)
            alice.wait_event("peer", action="up", name="bob", timeout=15, since=0)
            a, b = secure_pair(alice, bob, "bob")  # on the LAN: ZRTP
            assert a["method"] == "zrtp" and a["sas_words"] == b["sas_words"]
            alice.ctl("verify")
            bob.ctl("verify")
            hang_up(alice, bob)
            for rule in (
                ["add", "table", "ip", "zcall_test"],
                ["add", "chain", "ip", "zcall_test", "in", "{ type filter hook input priority 0 ; }"],
                [
                    "add",
                    "rule",
                    "ip",
                    "zcall_test",
                    "in",
                    "ip",
                    "saddr",
                    lan3[1].ip,
                    "udp",
                    "dport",
                    "5060",
                    "drop",
                ],
            ):
                result = lan3[2].run(["nft", *rule])
                assert result.returncode == 0, result.stderr
            mark, mark_bob = alice.mark(), bob.mark()
            alice.ctl("call", "bob")
            assert alice.wait_event("ended", since=mark, timeout=15)["cause"] == "fallback"
            secure = alice.wait_event("secure", since=mark, timeout=30)
            assert secure["method"] == "dtls-srtp" and secure["verifiable"] is False and "sas" not in secure
            alert = alice.wait_event("alert", since=mark, timeout=5)
            assert alert["kind"] == "downgrade", alert
            # Bob knows the caller too: alice's unit announces her server account on the LAN (aor= in TXT).
            assert bob.wait_event("secure", since=mark_bob, timeout=10)["verifiable"] is False
            assert bob.wait_event("alert", since=mark_bob, timeout=5)["kind"] == "downgrade"
            hang_up(alice, bob)


def test_a_verified_unit_calling_through_the_server_is_answered_unattended_and_heard_once_proven(
    lan3: netns.Lan, tmp_path: Path
) -> None:
    """Bob's desk unit answers only verified devices. Alice calls it through the server (her account, which
    her unit announces on the LAN): bob's unit knows her ZID, answers, and opens its microphone because the
    bound ZRTP proves her device and both V flags, as a LAN call would."""
    require_binary("kamailio", "openssl", "ss")
    with sip_server(lan3[0], USERS, tmp_path) as srv:
        alice = unit(lan3, srv, 1, "alice", tmp_path, mdns=True, auto_answer=True)
        bob = unit(lan3, srv, 2, "bob", tmp_path, mdns=True)
        with (tmp_path / "bob" / "config.toml").open("a") as config:
            config.write('\n[call]\nauto_answer = "verified"\n')
        with alice, bob:
            for peer in (alice, bob):
                peer.wait_event("registered", timeout=15)
            bob.wait_event("peer", action="up", name="alice", timeout=15, since=0)
            a, b = secure_pair(bob, alice, "alice")  # bob calls on the LAN; they compare words
            assert a["method"] == "zrtp" and a["sas_words"] == b["sas_words"]
            alice.ctl("verify")
            bob.ctl("verify")
            hang_up(bob, alice)
            a, b = secure_pair(alice, bob, f"sips:bob@{srv.dns_name}")  # through the server
            for secure in (a, b):
                assert secure["method"] == "dtls-srtp" and secure["verified"] is True, secure
            (call,) = bob.ctl("status")["calls"]
            assert call["direction"] == "in" and call["muted"] is False
            assert alerts(alice) == alerts(bob) == []
            hang_up(alice, bob)
