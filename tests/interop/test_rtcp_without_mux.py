"""RTCP without mux (RFC 5761 declined, RFC 5764 §4.1): peers that keep RTCP on its own port get SRTCP there,
keyed by DTLS-SRTP's second handshake (or by ZRTP's keys), and reports flow both ways: zcall's RTT comes from
the peer's receiver reports on our sender reports, which it can only write after decrypting them.

baresip (DTLS-SRTP, rtcp_mux off by default) direct and through Kamailio, both directions; linphonec (ZRTP,
its defaults) direct, and linphonec (DTLS-SRTP) registered over TLS through Kamailio, both directions.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.support import netns
from tests.support.audio_check import tone_heard, write_tone_wav
from tests.support.baresip import Baresip
from tests.support.capture import capture, media_report
from tests.support.dnsmasq import hosts_file
from tests.support.kamailio import sip_server
from tests.support.linphone import Linphonec, Mark
from tests.support.prereq import require_binary
from tests.support.zcall_peer import ZcallPeer

pytestmark = [pytest.mark.netns, pytest.mark.interop, pytest.mark.timeout(150)]


def rtt_reported(zcall: ZcallPeer, reports: int = 6) -> dict[str, Any]:
    """The first stats event (one each 5 s) with an RTT: the peer read our SRTCP and answered with its own."""
    seen = []
    for _ in range(reports):
        stats = zcall.wait_event("stats", timeout=10)
        if stats.get("rtt_ms") is not None:
            return stats
        seen.append(stats)
    raise AssertionError(f"no RTT in {reports} stats reports: {seen[-1]}")


def _lines_after(peer: Linphonec, since: Mark, text: str, *, at_least: int, timeout: float) -> list[str]:
    """Wait until linphonec's log holds `text` on `at_least` lines after `since`."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in peer.log.snapshot(since.log) if text in line]
        if len(lines) >= at_least:
            return lines
        assert time.monotonic() < deadline, f"{len(lines)} of {at_least} {text!r} lines in {peer.log_path}"
        time.sleep(0.2)


def test_baresip_without_mux_direct(lan2: netns.Lan, tmp_path: Path) -> None:
    a, b = lan2.hosts
    zcall = ZcallPeer(a, tmp_path / "zcall", name="desk", audio_in="tone:440", auto_answer=True)
    bare = Baresip(b, "carol", "unused", registrar=f"sip:{b.ip}", media_enc="dtls_srtp", transport="udp",
                   register=False, workdir=tmp_path / "baresip")  # fmt: skip
    with capture(a, tmp_path / "call.pcap") as pcap, zcall:
        bare.start()
        try:
            bare.dial(zcall.wait_event("ready")["sip_uri"])
            assert zcall.wait_event("secure", timeout=20)["method"] == "dtls-srtp"
            bare.wait_event("CALL_MENC", timeout=20)
            stats = rtt_reported(zcall)
            assert 0 <= stats["rtt_ms"] < 1000
            zcall.ctl("hangup")
            zcall.wait_event("ended", timeout=5)
        finally:
            bare.quit()
    report = media_report(pcap)
    assert report.plain_streams() == [], "plain RTP/RTCP on the wire"


@pytest.mark.parametrize("direction", ["zcall-calls", "baresip-calls"])
def test_baresip_without_mux_through_the_server(lan3: netns.Lan, tmp_path: Path, direction: str) -> None:
    require_binary("kamailio", "baresip")
    users = {"alice": "alice-secret", "carol": "carol-secret"}
    with sip_server(lan3[0], users, tmp_path) as srv:
        kam = srv.kamailio
        home = tmp_path / "alice"
        home.mkdir()
        (home / "config.toml").write_text(
            f'[server]\nuri = "sips:{srv.dns_name}:{kam.tls_port}"\nuser = "alice"\n'
            'password = "alice-secret"\n'
            f'ca_file = "{srv.ca.cert_path}"\noutbound_proxy = "{kam.host.ip}:{kam.tls_port}"\n'
        )
        alice = ZcallPeer(lan3[1], home, name="alice", audio_in="tone:440", auto_answer=True,
                          extra=["--no-mdns"])  # fmt: skip
        carol = Baresip(lan3[2], "carol", users["carol"], registrar=kam.tls_uri, outbound=kam.tls_uri,
                        workdir=tmp_path / "carol", transport="tls")  # fmt: skip
        with capture(lan3[1], tmp_path / "alice.pcap") as pcap, alice, carol:
            alice.wait_event("registered", timeout=15)
            carol.wait_registered()
            if direction == "zcall-calls":
                alice.ctl("call", "carol")
                carol.wait_event("CALL_INCOMING", timeout=15)
                carol.answer()
            else:
                carol.dial(f"sip:alice@{kam.host.ip}")
            assert alice.wait_event("secure", timeout=20)["method"] == "dtls-srtp"
            carol.wait_secure()
            stats = rtt_reported(alice)
            assert 0 <= stats["rtt_ms"] < 1000
            alice.ctl("hangup")
            alice.wait_event("ended", timeout=5)
    report = media_report(pcap, sip_ports=(5060, 5061))
    assert report.plain_streams() == [], "plain RTP/RTCP on the wire"


@pytest.mark.parametrize("direction", ["zcall-calls", "linphonec-calls"])
def test_linphonec_zrtp_without_mux(lan2: netns.Lan, tmp_path: Path, direction: str) -> None:
    """linphonec's default offer and answer carry no a=rtcp-mux: SRTCP on RTP + 1 with ZRTP's keys."""
    zcall = ZcallPeer(lan2[0], tmp_path / "zcall", name="desk", audio_in="tone:440", auto_answer=True)
    linphone = Linphonec(lan2[1], tmp_path / "linphone", user="bob", auto_answer=True, rtp_port=7078)
    with capture(lan2[0], tmp_path / "call.pcap") as pcap, zcall, linphone:
        ready = zcall.wait_event("ready")
        since = linphone.mark()
        if direction == "zcall-calls":
            zcall.ctl("call", linphone.uri)
        else:
            linphone.call(ready["sip_uri"])
        assert zcall.wait_event("secure", timeout=30)["method"] == "zrtp"
        linphone.wait_for_sas(timeout=30, since=since)
        stats = rtt_reported(zcall)
        assert 0 <= stats["rtt_ms"] < 1000
        zcall.ctl("hangup")
        zcall.wait_event("ended", timeout=5)
        linphone.wait_for_end(timeout=10, since=since)
    report = media_report(pcap)
    assert report.plain_streams() == [], "plain RTP/RTCP on the wire"


@pytest.mark.parametrize("direction", ["zcall-calls", "linphonec-calls"])
def test_linphonec_dtls_through_the_server(lan3: netns.Lan, tmp_path: Path, direction: str) -> None:
    """linphonec (media_encryption=dtls, otherwise its defaults: no rtcp-mux) registered over TLS through
    Kamailio: it reports the call fully encrypted, finishes a DTLS handshake on its RTCP port with zcall and
    decrypts zcall's sender reports; each reports the RTT from the other's reports; each hears the other's
    tone."""
    require_binary("kamailio", "linphonec")
    users = {"alice": "alice-secret", "bob": "bob-secret"}
    tone = write_tone_wav(tmp_path / "lp660.wav", 660, 60, rate=16000)
    heard_z, heard_l = tmp_path / "heard_by_zcall.wav", tmp_path / "heard_by_linphonec.wav"
    with sip_server(lan3[0], users, tmp_path) as srv, hosts_file(lan3[2], {srv.dns_name: lan3[0].ip}):
        kam = srv.kamailio
        home = tmp_path / "alice"
        home.mkdir()
        (home / "config.toml").write_text(
            f'[server]\nuri = "sips:{srv.dns_name}:{kam.tls_port}"\nuser = "alice"\n'
            'password = "alice-secret"\n'
            f'ca_file = "{srv.ca.cert_path}"\noutbound_proxy = "{kam.host.ip}:{kam.tls_port}"\n'
        )
        alice = ZcallPeer(lan3[1], home, name="alice", audio_in="tone:440", audio_out=f"file:{heard_z}",
                          auto_answer=True, extra=["--no-mdns"])  # fmt: skip
        bob = Linphonec(
            lan3[2], tmp_path / "bob", user="bob", media_encryption="dtls", play_wav=tone, record_wav=heard_l,
            auto_answer=True,
            proxy=f"sip:{srv.dns_name}:{kam.tls_port};transport=tls", domain=srv.dns_name,
            password=users["bob"], realm=kam.realm, root_ca=srv.ca.cert_path,
        )  # fmt: skip
        with alice, bob:
            alice.wait_event("registered", timeout=15)
            bob.wait_registered(timeout=20)
            since = bob.mark()
            if direction == "zcall-calls":
                alice.ctl("call", "bob")
            else:
                bob.call(f"sip:alice@{srv.dns_name}")
            assert alice.wait_event("secure", timeout=30)["method"] == "dtls-srtp"
            bob.wait_for(r"Call \d+ is fully encrypted", 30, since=since)
            bob.wait_for(r"DTLS RTCP Handshake successful", 20, source="log", since=since)
            stats = rtt_reported(alice)
            assert 0 <= stats["rtt_ms"] < 1000 and stats["received"] > 0
            bob.wait_for(r"receiving RTCP SR", 20, source="log", since=since)  # zcall's SRTCP, decrypted
            # linphonec's RTT comes from the LSR/DLSR in zcall's reports, once zcall has had its SR: a few of
            # ours later it has one (it logs it when the call ends).
            srs = _lines_after(bob, since, "receiving RTCP SR", at_least=3, timeout=30)
            alice.ctl("hangup")
            alice.wait_event("ended", timeout=5)
            bob.wait_for_end(timeout=10, since=since)
            rtt = bob.wait_for(r"RT propagation\s*:\s*([\d.]+)\s*ms", 10, source="log", since=since)
            assert 0 < float(rtt.group(1)) < 1000, (rtt.group(0), srs)
    assert abs(tone_heard(heard_l) - 440) < 10, "linphonec hears zcall"
    assert abs(tone_heard(heard_z) - 660) < 10, "zcall hears linphonec"
