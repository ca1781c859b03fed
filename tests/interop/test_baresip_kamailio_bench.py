"""The SIP-TLS bench proves itself: two baresips register to Kamailio over TLS and call each other through
it with DTLS-SRTP and Opus, audio both ways (checked by tone frequency); the server really checks passwords
and presents the per-run certificate.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import netns
from tests.support.audio_check import dominant_frequency, read_wav, write_tone_wav
from tests.support.baresip import Baresip, BaresipError
from tests.support.kamailio import SipServer, sip_server
from tests.support.pki import wrong_ca_server_cert
from tests.support.prereq import require_binary

pytestmark = [pytest.mark.interop, pytest.mark.netns, pytest.mark.timeout(90)]

USERS = {"alice": "alice-secret", "bob": "bob-secret"}


def _heard(path: Path) -> tuple[float, float]:
    """(dominant frequency, seconds) of what a baresip recorded."""
    samples, rate = read_wav(path)
    return dominant_frequency(samples, rate), len(samples) / rate


@pytest.fixture
def server(lan3: netns.Lan, tmp_path: Path) -> Iterator[SipServer]:
    require_binary("kamailio", "baresip", "openssl", "ss")
    with sip_server(lan3[0], USERS, tmp_path) as srv:
        yield srv


def _ua(
    lan: netns.Lan,
    srv: SipServer,
    index: int,
    user: str,
    tmp: Path,
    *,
    password: str | None = None,
    audio_wav: Path | None = None,
    record_wav: Path | None = None,
    transport: str = "tls",
    outbound: bool = True,
    rtcp_mux: bool = False,
) -> Baresip:
    """A baresip on host `index` registering to Kamailio (by default: TLS, Kamailio as outbound proxy)."""
    uri = srv.kamailio.tls_uri if transport == "tls" else srv.kamailio.udp_uri
    return Baresip(
        lan[index], user, password or USERS[user], registrar=uri, outbound=uri if outbound else None,
        workdir=tmp / user, audio_wav=audio_wav, record_wav=record_wav, transport=transport, sip_trace=True,
        rtcp_mux=rtcp_mux,
    )


def test_two_baresips_call_through_kamailio_with_dtls_srtp_and_opus(
    lan3: netns.Lan, server: SipServer, tmp_path: Path
) -> None:
    # aufile ends the call at end of file, so the tones outlast the call.
    # baresip's aufile wants 48 kHz mono 16-bit, like its configured source.
    a_in, b_in = write_tone_wav(tmp_path / "a.wav", 440, 12), write_tone_wav(tmp_path / "b.wav", 660, 12)
    a_rec, b_rec = tmp_path / "a-heard.wav", tmp_path / "b-heard.wav"
    alice = _ua(lan3, server, 1, "alice", tmp_path, audio_wav=a_in, record_wav=a_rec)
    bob = _ua(lan3, server, 2, "bob", tmp_path, audio_wav=b_in, record_wav=b_rec)
    with alice, bob:
        alice.wait_registered()
        bob.wait_registered()
        alice.dial(f"sip:bob@{server.kamailio.host.ip}")
        bob.wait_event("CALL_INCOMING")
        bob.answer()
        for ua in (alice, bob):
            ua.wait_event("CALL_ESTABLISHED")
            ua.wait_secure()
        time.sleep(3)
        alice.hangup()
        for ua in (alice, bob):
            ua.wait_event("CALL_CLOSED")
    assert (alice.exit_code, bob.exit_code) == (0, 0)  # `quit` over ctrl_tcp, no SIGKILL needed
    a_log, b_log = alice.log(), bob.log()
    kam = server.kamailio
    # Registration and the whole dialog went over TLS, through the proxy, which record-routed itself.
    assert re.search(r"alice@\S+: \{0/TLS/v4\} 200 OK", a_log), a_log[-2000:]
    assert re.search(r"bob@\S+: \{0/TLS/v4\} 200 OK", b_log), b_log[-2000:]
    record_route = f"Record-Route: <sip:{kam.host.ip}:{kam.tls_port};transport=tls;lr"
    assert record_route in b_log
    assert "BYE sip:" in b_log  # the in-dialog BYE reached bob through Kamailio's record-route
    for log in (a_log, b_log):
        assert "verified SHA-256 fingerprint OK" in log
        assert "DTLS-SRTP complete" in log
        assert "Set audio decoder: opus 48000Hz" in log
    # Audio both ways, by content: each side heard the other's tone.
    heard_by_alice, a_seconds = _heard(a_rec)
    heard_by_bob, b_seconds = _heard(b_rec)
    assert a_seconds > 2.0 and b_seconds > 2.0, (a_seconds, b_seconds)
    assert abs(heard_by_alice - 660) < 10, heard_by_alice
    assert abs(heard_by_bob - 440) < 10, heard_by_bob


def test_wrong_password_is_refused(lan3: netns.Lan, server: SipServer, tmp_path: Path) -> None:
    # Kamailio challenges again on a wrong digest; baresip gives up after the second 401.
    alice = _ua(lan3, server, 1, "alice", tmp_path, password="not-the-password")
    with alice, pytest.raises(BaresipError, match="registration failed: 401"):
        alice.wait_registered()
    with _ua(lan3, server, 2, "bob", tmp_path) as bob:
        bob.wait_registered()


def test_call_to_unregistered_user_gets_404(lan3: netns.Lan, server: SipServer, tmp_path: Path) -> None:
    with _ua(lan3, server, 1, "alice", tmp_path) as alice:
        alice.wait_registered()
        alice.dial(f"sip:bob@{server.kamailio.host.ip}")
        closed = alice.wait_event("CALL_CLOSED")
    assert "404" in closed.param, closed.data


def test_udp_call_without_outbound_proxy_with_rtcp_mux(
    lan3: netns.Lan, server: SipServer, tmp_path: Path
) -> None:
    alice = _ua(lan3, server, 1, "alice", tmp_path, transport="udp", outbound=False, rtcp_mux=True)
    bob = _ua(lan3, server, 2, "bob", tmp_path, transport="udp", outbound=False, rtcp_mux=True)
    with alice, bob:
        alice.wait_registered()
        bob.wait_registered()
        alice.dial(f"sip:bob@{server.kamailio.host.ip}")
        bob.wait_event("CALL_INCOMING")
        bob.answer()
        for ua in (alice, bob):
            ua.wait_secure()
        bob.hangup()  # the callee's BYE must find alice through the record-route too
        for ua in (alice, bob):
            ua.wait_event("CALL_CLOSED")
    assert re.search(r"alice@\S+: \{0/UDP/v4\} 200 OK", alice.log())
    assert "BYE sip:alice" in alice.log()
    assert "a=rtcp-mux" in alice.log() and "a=rtcp-mux" in bob.log()
    assert "component start: RTCP" not in alice.log()  # one muxed component: no separate RTCP DTLS


def _pids_in(host: netns.Host) -> list[str]:
    # Asked from outside the namespace, so the asking process is not counted.
    return subprocess.run(["ip", "netns", "pids", host.netns], capture_output=True, text=True).stdout.split()


def test_kamailio_stops_cleanly(lan3: netns.Lan, tmp_path: Path) -> None:
    require_binary("kamailio", "ss")
    with sip_server(lan3[0], USERS, tmp_path) as srv:
        assert str(srv.kamailio.pid) in _pids_in(lan3[0])
    assert srv.kamailio.exit_code == 0
    assert _pids_in(lan3[0]) == []  # no worker outlives the main process
    assert "Thank you for flying kamailio" in srv.kamailio.log()  # its own shutdown path ran


def _s_client(host: netns.Host, target: str, ca: Path, *extra: str) -> str:
    argv = ["openssl", "s_client", "-connect", target, "-CAfile", str(ca), "-verify_return_error", *extra]
    result = host.run(argv, input="", timeout=15)
    return result.stdout + result.stderr


def test_server_presents_the_per_run_certificate(lan3: netns.Lan, server: SipServer, tmp_path: Path) -> None:
    kam = server.kamailio
    target = f"{kam.host.ip}:{kam.tls_port}"
    ok = _s_client(lan3[1], target, server.ca.cert_path, "-verify_ip", kam.host.ip)
    assert "Verify return code: 0 (ok)" in ok, ok[-1500:]
    by_name = _s_client(lan3[1], target, server.ca.cert_path, "-verify_hostname", server.dns_name)
    assert "Verify return code: 0 (ok)" in by_name, by_name[-1500:]
    wrong_name = _s_client(lan3[1], target, server.ca.cert_path, "-verify_hostname", "other.zcall.test")
    assert "Verify return code: 62" in wrong_name, wrong_name[-1500:]  # hostname mismatch
    rogue, _ = wrong_ca_server_cert(tmp_path / "rogue", kam.host.ip, server.dns_name)
    untrusted = _s_client(lan3[1], target, rogue.cert_path)
    assert "Verify return code: 0 (ok)" not in untrusted
