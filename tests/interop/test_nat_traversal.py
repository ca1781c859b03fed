"""Two units behind two NATs reach each other through a SIP server found only in DNS, with ICE (RFC 8445)
over coturn: audio both ways, media always DTLS-SRTP on the pair ICE selected.

Topology (tests/support/nat.py): on the WAN, Kamailio (TLS, zcall.test), dnsmasq (NAPTR/SRV/A for
zcall.test) and coturn (STUN/TURN); alice behind a port-preserving NAT, bob behind a port-preserving NAT
(srflx: hole punching works) or a random-port NAT (direct paths fail: only the relay carries media).
The units know nothing but `sips:zcall.test`, the DNS server and [nat].
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.audio_check import tone_heard, write_tone_wav
from tests.support.baresip import Baresip
from tests.support.capture import capture, media_report
from tests.support.nat import USERS, nat_unit, nat_world
from tests.support.prereq import require_binary

pytestmark = [pytest.mark.interop, pytest.mark.netns, pytest.mark.slow, pytest.mark.timeout(180)]

@pytest.mark.parametrize(
    ("nat_b", "path", "transport"),
    [("persistent", "srflx", "udp"), ("random", "relay", "udp"), ("random", "relay", "tcp"),
     ("random", "relay", "tls")],
)
def test_zcall_to_zcall_behind_two_nats(tmp_path: Path, nat_b: str, path: str, transport: str) -> None:
    """srflx: STUN only, so hole punching is the only way (aioice nominates the first pair that works, and
    with a relay on offer that is often the relay). relay: a random-port NAT, where nothing else works; TURN
    over UDP, over TCP, or over TLS (turns:, the server's certificate verified with the unit's CA file)."""
    heard_a, heard_b = tmp_path / "heard_by_alice.wav", tmp_path / "heard_by_bob.wav"
    relay = path == "relay"
    with nat_world(tmp_path, ("persistent", nat_b)) as world:
        alice = nat_unit(world, 0, "alice", tmp_path, relay, transport, audio_in="tone:440",
                         audio_out=f"file:{heard_a}")  # fmt: skip
        bob = nat_unit(world, 1, "bob", tmp_path, relay, transport, audio_in="tone:660",
                       audio_out=f"file:{heard_b}", auto_answer=True)  # fmt: skip
        with capture(world.bench.routers[1], tmp_path / "bob-wan.pcap") as pcap, alice, bob:
            world.registered(alice, bob)
            alice.ctl("call", "bob")
            try:
                secure = [side.wait_event("secure", timeout=30) for side in (alice, bob)]
            except AssertionError as exc:
                bob._drain(1.0)
                raise AssertionError(f"{exc}\nbob: {bob.events[-4:]}") from None
            for event in secure:
                assert event["method"] == "dtls-srtp" and event["fingerprint_ok"] is True, event
            # ZRTP runs over the DTLS-SRTP flow on the same pair: both read the same words.
            assert secure[0]["verifiable"] and secure[0]["sas_words"] == secure[1]["sas_words"], secure
            paths = {event["path"] for event in secure}
            assert path in paths and paths <= {path, "prflx", "srflx"}, secure
            alice.wait_event("stats", timeout=10)
            alice.ctl("hangup")
            bob.wait_event("ended", timeout=10)
            alice.wait_event("ended", timeout=10)
        report = media_report(pcap, sip_ports=(5060, 5061))
        if transport == "udp":  # over TCP or TLS to the relay, what leaves bob's NAT is inside TURN's stream
            assert report.dtls > 0 and report.rtp_like > 100, report
        assert report.plain_streams() == []  # what crossed bob's NAT: never plain RTP
    assert abs(tone_heard(heard_b) - 440) < 10
    assert abs(tone_heard(heard_a) - 660) < 10


@pytest.mark.parametrize("direction", ["zcall-calls", "baresip-calls"])
def test_zcall_behind_nat_and_baresip_without_ice(tmp_path: Path, direction: str) -> None:
    """baresip (no ICE, DTLS-SRTP only) on the WAN; zcall behind the random-port NAT, where only its relay
    works: zcall's c= is its relay, it sends from the relay to baresip's c= address, and opens the relay's
    permission first so baresip's DTLS gets in. A call without words, audio both ways."""
    require_binary("baresip")
    heard_z, heard_b = tmp_path / "heard_by_zcall.wav", tmp_path / "heard_by_baresip.wav"
    tone = write_tone_wav(tmp_path / "carol660.wav", 660, 60, rate=48000)
    with nat_world(tmp_path, ("random", "random")) as world:
        bench = world.bench
        uri = f"sip:{bench.sip.ip}:5061;transport=tls"
        alice = nat_unit(world, 0, "alice", tmp_path, audio_in="tone:440", audio_out=f"file:{heard_z}",
                         auto_answer=True)  # fmt: skip
        carol = Baresip(bench.dns, "carol", USERS["carol"], registrar=uri, outbound=uri,
                        workdir=tmp_path / "carol", audio_wav=tone, record_wav=heard_b,
                        transport="tls")  # fmt: skip
        with alice, carol:
            world.registered(alice)
            carol.wait_registered()
            if direction == "zcall-calls":
                alice.ctl("call", "carol")
                carol.wait_event("CALL_INCOMING", timeout=15)
                carol.answer()
            else:
                carol.dial(f"sip:alice@{bench.sip.ip}")
            secure = alice.wait_event("secure", timeout=30)
            assert secure["method"] == "dtls-srtp" and secure["fingerprint_ok"] is True, secure
            assert secure["verifiable"] is False and secure["path"] == "relay", secure
            carol.wait_secure(timeout=20)
            alice.wait_event("stats", timeout=10)
            alice.ctl("hangup")
            alice.wait_event("ended", timeout=10)
            carol.wait_event("CALL_CLOSED", timeout=10)
    assert abs(tone_heard(heard_b) - 440) < 10, "baresip hears zcall"
    assert abs(tone_heard(heard_z) - 660) < 10, "zcall hears baresip"


def test_a_path_that_stops_consenting_ends_the_call(tmp_path: Path) -> None:
    """RFC 7675: once the peer stops answering consent checks on the media path (here a NAT starts dropping
    all UDP, SIP over TLS still flows), sending stops and the call ends within ~30 s with the reason."""
    with nat_world(tmp_path, ("persistent", "persistent")) as world:
        alice = nat_unit(world, 0, "alice", tmp_path, relay=False)
        bob = nat_unit(world, 1, "bob", tmp_path, relay=False, auto_answer=True)
        with alice, bob:
            world.registered(alice, bob)
            alice.ctl("call", "bob")
            alice.wait_event("secure", timeout=30)
            bob.wait_event("secure", timeout=30)
            router = world.bench.routers[1]
            chain = "{ type filter hook forward priority 0 ; }"
            for rule in (["add", "table", "ip", "zcut"], ["add", "chain", "ip", "zcut", "cut", chain],
                         ["add", "rule", "ip", "zcut", "cut", "ip", "protocol", "udp", "drop"]):  # fmt: skip
                assert router.run(["nft", *rule]).returncode == 0
            cut = time.monotonic()
            # Both check consent: the first to give up ends the call, the other hears the hangup over SIP.
            ends = [side.wait_event("ended", timeout=50) for side in (alice, bob)]
            lost = [e for e in ends if e["cause"] == "media_failed" and "consent" in e["reason"]]
            assert lost, ends
            assert min(e["_t"] for e in ends) - cut >= 15, "consent goes after ~30 s of silence, not one loss"
