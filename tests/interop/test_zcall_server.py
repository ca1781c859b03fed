"""Beyond the LAN: zcall registers to Kamailio over SIP-TLS (digest auth, verified certificate) and calls
through it with DTLS-SRTP — to another zcall and to baresip, both directions, audio checked by tone.

Topology (lan3): Kamailio on host 0, zcall "alice" on host 1, the far end (zcall or baresip) on host 2.
The server certificate names the host's IP and sip.zcall.test; zcall dials that name over the outbound proxy
(IP:5061), so the name is what TLS verifies.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import netns
from tests.support.audio_check import tone_heard, write_tone_wav
from tests.support.baresip import Baresip
from tests.support.capture import capture, media_report, use_srtp_hellos
from tests.support.kamailio import SipServer, sip_server
from tests.support.pki import wrong_ca_server_cert
from tests.support.prereq import require_binary
from tests.support.zcall_peer import ZcallPeer

pytestmark = [pytest.mark.interop, pytest.mark.netns, pytest.mark.timeout(150)]

USERS = {"alice": "alice-secret", "bob": "bob-secret", "carol": "carol-secret"}


@pytest.fixture
def server(lan3: netns.Lan, tmp_path: Path) -> Iterator[SipServer]:
    require_binary("kamailio", "baresip", "openssl", "ss")
    with sip_server(lan3[0], USERS, tmp_path) as srv:
        yield srv


def zcall_account(
    lan: netns.Lan, srv: SipServer, index: int, user: str, tmp: Path, *, password: str | None = None,
    ca: Path | None = None, hostname: str | None = None, keepalive: int = 25, **kw: object,
) -> ZcallPeer:  # fmt: skip
    """A headless zcall on host `index` with a [server] account on Kamailio (outbound proxy = its IP)."""
    home = tmp / user
    home.mkdir(parents=True, exist_ok=True)
    kam = srv.kamailio
    (home / "config.toml").write_text(
        "[server]\n"
        f'uri = "sips:{hostname or srv.dns_name}:{kam.tls_port}"\n'
        f'user = "{user}"\npassword = "{password or USERS[user]}"\n'
        f'ca_file = "{ca or srv.ca.cert_path}"\n'
        f'outbound_proxy = "{kam.host.ip}:{kam.tls_port}"\n'
        f"keepalive = {keepalive}\n"
    )
    extra = [] if kw.pop("mdns", False) else ["--no-mdns"]
    return ZcallPeer(lan[index], home, name=user, extra=extra, **kw)  # type: ignore[arg-type]


def test_register_over_tls_and_reregister_after_restart(
    lan3: netns.Lan, server: SipServer, tmp_path: Path
) -> None:
    with zcall_account(lan3, server, 1, "alice", tmp_path) as alice:
        registered = alice.wait_event("registered", timeout=15)
        assert registered["expires"] > 0
        status = alice.ctl("status")
        assert status["server"]["registered"] is True
        server.kamailio.stop()
        alice.wait_event("registration_failed", timeout=40)
        server.kamailio.start()
        again = alice.wait_event("registered", timeout=60)
        assert again["expires"] > 0


def test_a_server_that_comes_up_late_is_registered_with_within_seconds(
    lan3: netns.Lan, server: SipServer, tmp_path: Path
) -> None:
    """A unit started while its server is down (a power cut brings both up; the server is slower) says why it
    cannot register, and registers a few seconds after the server listens however long that took: retries
    stay a few seconds apart (before: 1, 2, 5, 10, 30, 60 s apart; a server up after 20 s waited ~30 s)."""
    server.kamailio.stop()
    with zcall_account(lan3, server, 1, "alice", tmp_path) as alice:
        failed = alice.wait_event("registration_failed", timeout=15)
        assert "connection refused" in failed["reason"], failed
        time.sleep(22.0)
        assert not [e for e in alice.events if e["event"] == "registered"]
        server.kamailio.start()
        # Retries at most 5 s apart, then TLS and a challenged REGISTER: 10 s leaves room for a busy machine.
        alice.wait_event("registered", timeout=10)


@pytest.mark.parametrize(
    ("case", "reason"),
    [("password", "wrong user name or password"), ("ca", "unknown CA"), ("hostname", "hostname mismatch")],
)
def test_registration_refused_clearly(
    lan3: netns.Lan, server: SipServer, tmp_path: Path, case: str, reason: str
) -> None:
    kw: dict[str, object] = {}
    if case == "password":
        kw["password"] = "not-the-password"
    elif case == "ca":
        other_ca, _ = wrong_ca_server_cert(tmp_path / "other", lan3[0].ip, server.dns_name)
        kw["ca"] = other_ca.cert_path
    else:
        kw["hostname"] = "pbx.elsewhere.test"
    with zcall_account(lan3, server, 1, "alice", tmp_path, **kw) as alice:  # type: ignore[arg-type]
        failed = alice.wait_event("registration_failed", timeout=20)
        assert reason in failed["reason"], failed
        time.sleep(1.0)
        assert not [e for e in alice.events if e["event"] == "registered"]


@pytest.mark.parametrize("direction", ["alice-calls", "bob-calls"])
def test_zcall_to_zcall_through_the_server(
    lan3: netns.Lan, server: SipServer, tmp_path: Path, direction: str
) -> None:
    heard_a, heard_b = tmp_path / "heard_by_alice.wav", tmp_path / "heard_by_bob.wav"
    alice = zcall_account(lan3, server, 1, "alice", tmp_path, audio_in="tone:440",
                          audio_out=f"file:{heard_a}", auto_answer=True)  # fmt: skip
    bob = zcall_account(lan3, server, 2, "bob", tmp_path, audio_in="tone:660", audio_out=f"file:{heard_b}",
                        auto_answer=True)  # fmt: skip
    with capture(lan3[1], tmp_path / "alice.pcap") as pcap, alice, bob:
        alice.wait_event("registered", timeout=15)
        bob.wait_event("registered", timeout=15)
        caller, callee, target = (alice, bob, "bob") if direction == "alice-calls" else (bob, alice, "alice")
        caller.ctl("call", target)
        words = []
        for side in (caller, callee):
            secure = side.wait_event("secure", timeout=20)
            assert secure["method"] == "dtls-srtp" and secure["fingerprint_ok"] is True
            assert secure["verifiable"] is True
            words.append(secure["sas_words"])
        assert words[0] == words[1], "ZRTP over the DTLS-SRTP flow gives both units the same words"
        caller.wait_event("stats", timeout=10)
        callee.ctl("hangup")
        caller.wait_event("ended", timeout=5)
        callee.wait_event("ended", timeout=5)
    report = media_report(pcap, sip_ports=(5060, 5061))
    assert report.dtls > 0 and report.zrtp > 0 and report.rtp_like > 200  # ZRTP gives the words
    assert use_srtp_hellos(pcap) >= 2, "ClientHello and ServerHello negotiate use_srtp"
    assert report.plain_streams() == []
    assert abs(tone_heard(heard_b) - 440) < 10
    assert abs(tone_heard(heard_a) - 660) < 10


@pytest.mark.parametrize("direction", ["zcall-calls", "baresip-calls"])
def test_zcall_and_baresip_through_the_server(
    lan3: netns.Lan, server: SipServer, tmp_path: Path, direction: str
) -> None:
    heard_z, heard_b = tmp_path / "heard_by_zcall.wav", tmp_path / "heard_by_baresip.wav"
    tone = write_tone_wav(tmp_path / "carol660.wav", 660, 60, rate=48000)
    alice = zcall_account(lan3, server, 1, "alice", tmp_path, audio_in="tone:440",
                          audio_out=f"file:{heard_z}", auto_answer=True)  # fmt: skip
    uri = server.kamailio.tls_uri
    carol = Baresip(lan3[2], "carol", USERS["carol"], registrar=uri, outbound=uri, workdir=tmp_path / "carol",
                    audio_wav=tone, record_wav=heard_b, transport="tls")  # fmt: skip
    with capture(lan3[1], tmp_path / "alice.pcap") as pcap, alice, carol:
        alice.wait_event("registered", timeout=15)
        carol.wait_registered()
        if direction == "zcall-calls":
            alice.ctl("call", "carol")
            carol.wait_event("CALL_INCOMING", timeout=15)
            carol.answer()
        else:
            carol.dial(f"sip:alice@{server.kamailio.host.ip}")
        secure = alice.wait_event("secure", timeout=20)
        assert secure["method"] == "dtls-srtp" and secure["fingerprint_ok"] is True
        # baresip speaks no ZRTP: a call without words, and the event says so.
        assert secure["verifiable"] is False and "sas_words" not in secure, secure
        carol.wait_secure()
        alice.wait_event("stats", timeout=10)
        alice.ctl("hangup")
        alice.wait_event("ended", timeout=5)
        carol.wait_event("CALL_CLOSED", timeout=10)
    report = media_report(pcap, sip_ports=(5060, 5061))
    assert report.dtls > 0 and report.rtp_like > 200
    assert use_srtp_hellos(pcap) >= 2, "ClientHello and ServerHello negotiate use_srtp"
    assert report.plain_streams() == []
    assert abs(tone_heard(heard_b) - 440) < 10, "baresip hears zcall"
    assert abs(tone_heard(heard_z) - 660) < 10, "zcall hears baresip"


def test_lan_peer_that_cannot_be_reached_is_called_through_the_server(
    lan3: netns.Lan, server: SipServer, tmp_path: Path
) -> None:
    require_binary("nft")
    alice = zcall_account(lan3, server, 1, "alice", tmp_path, mdns=True)
    bob = zcall_account(lan3, server, 2, "bob", tmp_path, mdns=True, auto_answer=True)
    # Bob's unit is on the LAN (mDNS works) but its SIP port drops what comes straight from alice.
    for rule in (
        ["add", "table", "ip", "zcall_test"],
        ["add", "chain", "ip", "zcall_test", "in", "{ type filter hook input priority 0 ; }"],
        ["add", "rule", "ip", "zcall_test", "in", "ip", "saddr", lan3[1].ip, "udp", "dport", "5060", "drop"],
    ):
        result = lan3[2].run(["nft", *rule])
        assert result.returncode == 0, result.stderr
    with alice, bob:
        alice.wait_event("registered", timeout=15)
        bob.wait_event("registered", timeout=15)
        alice.wait_event("peer", action="up", name="bob", timeout=10, since=0)
        alice.ctl("call", "bob")
        first = alice.wait_event("ended", timeout=10)
        assert first["reason"] == "no answer on the LAN; calling through the server"
        secure = alice.wait_event("secure", timeout=20)
        assert secure["method"] == "dtls-srtp"
        assert bob.wait_event("secure", timeout=10)["method"] == "dtls-srtp"
        alice.ctl("hangup")
        bob.wait_event("ended", timeout=5)


def test_calls_carry_the_account_and_answer_the_servers_challenge(lan3: netns.Lan, tmp_path: Path) -> None:
    """A PBX that takes new requests only From its own domain and challenges every INVITE: zcall's calls say
    who they are (From sips:user@domain) and authenticate, the second call too, in both directions."""
    require_binary("kamailio", "openssl", "ss")
    with sip_server(lan3[0], USERS, tmp_path, dns_name="zcall.test", own_users_only=True) as srv:
        alice = zcall_account(lan3, srv, 1, "alice", tmp_path, auto_answer=True)
        bob = zcall_account(lan3, srv, 2, "bob", tmp_path, auto_answer=True)
        with alice, bob:
            alice.wait_event("registered", timeout=15)
            bob.wait_event("registered", timeout=15)
            for caller, callee, target in ((alice, bob, "bob"), (alice, bob, "bob"), (bob, alice, "alice")):
                caller.ctl("call", target)
                assert callee.wait_event("call", state="incoming", timeout=15)["peer"] == caller.name
                for side in (caller, callee):
                    assert side.wait_event("secure", timeout=20)["method"] == "dtls-srtp"
                caller.ctl("hangup")
                for side in (caller, callee):
                    side.wait_event("ended", timeout=10)
        log = srv.kamailio.log()
    assert log.count("zcall-challenge INVITE from sips:alice@zcall.test") == 2, log[-3000:]
    assert log.count("zcall-accepted INVITE from sips:alice@zcall.test") == 2
    assert log.count("zcall-accepted INVITE from sips:bob@zcall.test") == 1
    assert "Not from this domain" not in log


def test_a_flow_that_stops_answering_pings_is_replaced(
    lan3: netns.Lan, server: SipServer, tmp_path: Path
) -> None:
    """RFC 5626: the server's packets stop reaching zcall (a NAT forgot the binding) while TCP looks open;
    the missing pong is noticed, reported, and the account registers again once the path is back."""
    require_binary("nft")
    with zcall_account(lan3, server, 1, "alice", tmp_path, keepalive=3) as alice:
        alice.wait_event("registered", timeout=15)
        time.sleep(8)  # pings answered meanwhile: nothing is reported
        assert not [e for e in alice.events if e["event"] == "registration_failed"]
        block = [
            ["add", "table", "ip", "zcall_nat"],
            ["add", "chain", "ip", "zcall_nat", "in", "{ type filter hook input priority 0 ; }"],
            ["add", "rule", "ip", "zcall_nat", "in", "ip", "saddr", lan3[0].ip, "drop"],
        ]
        for rule in block:
            assert lan3[1].run(["nft", *rule]).returncode == 0
        # Within one interval and the 10 s pong deadline (TCP alone would take minutes to give up).
        failed = alice.wait_event("registration_failed", timeout=30)
        assert "keep-alive" in failed["reason"], failed
        assert alice.ctl("status")["server"]["registered"] is False
        assert lan3[1].run(["nft", "delete", "table", "ip", "zcall_nat"]).returncode == 0
        assert alice.wait_event("registered", timeout=40)["expires"] > 0
