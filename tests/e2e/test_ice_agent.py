"""The ICE adapter (zcall/ice.py) with real sockets on loopback and a real coturn: two agents gather, check,
select a pair and carry datagrams both ways; the path is named by the pair; consent expiry is reported;
a stranger's datagrams never reach the call.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aioice.ice
import pytest

from tests.support.coturn import Coturn
from tests.support.pki import CertificateAuthority
from zcall.ice import GATHER_TIMEOUT_S, IceAgent, IceError, path_of
from zcall.natconfig import NatSettings, parse_stun_uri, parse_turn_uri
from zcall.net import Addr

pytestmark = pytest.mark.timeout(60)

LOOPBACK = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def turn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coturn]:
    tmp = tmp_path_factory.mktemp("coturn")
    ca = CertificateAuthority(tmp / "ca")
    cert = ca.server_cert(LOOPBACK, "turn.zcall.test")
    low = 40000 + _free_port() % 20000
    with Coturn(LOOPBACK, port=_free_port(), tls_port=_free_port(), cert=cert.cert_path, key=cert.key_path,
                relay_ports=(low, low + 200), workdir=tmp / "run") as server:  # fmt: skip
        server.ca_path = ca.cert_path  # type: ignore[attr-defined]
        yield server


class Side:
    def __init__(self, nat: NatSettings, controlling: bool, ca: str = "") -> None:
        self.got: list[tuple[bytes, Addr]] = []
        self.lost: list[str] = []
        self.agent = IceAgent(
            nat, LOOPBACK, controlling=controlling, tls_ca=ca,
            on_datagram=lambda d, a: self.got.append((d, a)), on_lost=self.lost.append,
        )  # fmt: skip


async def _pair(a: Side, b: Side) -> tuple[Addr, Addr]:
    da, db = await asyncio.gather(a.agent.gather(), b.agent.gather())
    return await asyncio.gather(a.agent.connect(db, b.agent.default), b.agent.connect(da, a.agent.default))


async def _exchange(a: Side, b: Side) -> None:
    """DTLS-looking and RTP-looking datagrams both ways (first bytes 22 and 0x80: not STUN)."""
    for i in range(5):
        a.agent.sendto(bytes([22, i]) + b"from-a")
        b.agent.sendto(bytes([0x80, i]) + b"from-b")
    for _ in range(100):
        if len(a.got) >= 5 and len(b.got) >= 5:
            break
        await asyncio.sleep(0.02)
    assert [d for d, _ in b.got] == [bytes([22, i]) + b"from-a" for i in range(5)]
    assert [d for d, _ in a.got] == [bytes([0x80, i]) + b"from-b" for i in range(5)]


def test_path_names_the_most_indirect_end() -> None:
    assert path_of("host", "host") == "host"
    assert path_of("host", "srflx") == "srflx"
    assert path_of("host", "prflx") == "prflx"
    assert path_of("relay", "host") == "relay"
    assert path_of("host", "relay") == "relay"


async def test_host_candidates_carry_media_both_ways() -> None:
    a, b = Side(NatSettings(), True), Side(NatSettings(), False)
    try:
        await _pair(a, b)
        assert a.agent.gathered == ("host",)
        assert a.agent.path == b.agent.path == "host"
        await _exchange(a, b)
    finally:
        await asyncio.gather(a.agent.aclose(), b.agent.aclose())


async def test_stun_gives_a_server_reflexive_candidate(turn: Coturn) -> None:
    side = Side(NatSettings(stun=parse_stun_uri(turn.stun_uri)), True)
    try:
        description = await side.agent.gather()
        kinds = [c.type for c in description.candidates]
        assert kinds[0] == "host" and "srflx" in kinds  # on loopback the mapped address is the host's
        assert side.agent.default[1] == description.candidates[-1].port
    finally:
        await side.agent.aclose()


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
async def test_relay_only_path_over_turn(turn: Coturn, transport: str) -> None:
    """One side relays only (no host socket at all): media flows through coturn, over TURN on UDP, TCP or
    TLS (the server's certificate checked against our CA), and both sides call the path relay."""
    nat = NatSettings(turn=parse_turn_uri(turn.turn_uri(transport)), turn_user=turn.user,
                      turn_password=turn.password, relay_only=True)  # fmt: skip
    a = Side(nat, True, ca=str(turn.ca_path))  # type: ignore[attr-defined]
    b = Side(NatSettings(), False)
    try:
        description = await a.agent.gather()
        assert "relay" in [c.type for c in description.candidates], turn.log()[-3000:]
        relay = next(c for c in description.candidates if c.type == "relay")
        assert [c.type for c in description.candidates] == ["relay"]
        assert a.agent.default == (relay.host, relay.port)
        db = await b.agent.gather()
        await asyncio.gather(a.agent.connect(db, b.agent.default),
                             b.agent.connect(description, a.agent.default))
        assert a.agent.path == b.agent.path == "relay"
        await _exchange(a, b)
    finally:
        await asyncio.gather(a.agent.aclose(), b.agent.aclose())


async def test_wrong_turn_password_gives_no_relay(turn: Coturn) -> None:
    nat = NatSettings(turn=parse_turn_uri(turn.turn_uri("udp")), turn_user=turn.user, turn_password="wrong")
    side = Side(nat, True)
    try:
        assert [c.type for c in (await side.agent.gather()).candidates] == ["host"]
    finally:
        await side.agent.aclose()


async def test_a_peer_without_ice_is_reached_on_its_address() -> None:
    """baresip's default: no ICE. Media goes from our default candidate to its c= address, and only that
    address is heard."""
    side = Side(NatSettings(), False)
    loop = asyncio.get_running_loop()
    received: asyncio.Queue[tuple[bytes, Addr]] = asyncio.Queue()

    class Plain(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Addr) -> None:
            received.put_nowait((data, addr))

    plain, _ = await loop.create_datagram_endpoint(Plain, local_addr=(LOOPBACK, 0))
    stranger, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=(LOOPBACK, 0))
    try:
        await side.agent.gather()
        peer = plain.get_extra_info("sockname")
        assert await side.agent.connect(None, peer) == peer
        assert side.agent.path == "host"
        # First a STUN Binding indication (type 0x0011) that opens our NAT / TURN permission for the peer.
        punch, source = await asyncio.wait_for(received.get(), 5)
        assert punch[:2] == b"\x00\x11" and source == side.agent.default
        side.agent.sendto(b"\x80hello")
        data, source = await asyncio.wait_for(received.get(), 5)
        assert data == b"\x80hello" and source == side.agent.default
        stranger.sendto(b"\x16forged", side.agent.default)
        plain.sendto(b"\x16genuine", side.agent.default)
        for _ in range(100):
            if side.got:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        assert side.got == [(b"\x16genuine", peer)]
        assert side.agent.drops["foreign-source"] == 1
    finally:
        plain.close()
        stranger.close()
        await side.agent.aclose()


async def test_consent_expiry_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """RFC 7675 by aioice: once the peer stops answering consent checks, the agent says the path is lost
    (the interval is shortened here; the logic is aioice's own)."""
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.1)
    monkeypatch.setattr(aioice.ice, "CONSENT_FAILURES", 3)
    a, b = Side(NatSettings(), True), Side(NatSettings(), False)
    try:
        await _pair(a, b)
        await asyncio.sleep(0.5)
        assert a.lost == []  # consent keeps being given while the peer is there
        await b.agent.aclose()
        for _ in range(100):
            if a.lost:
                break
            await asyncio.sleep(0.05)
        assert a.lost and "consent" in a.lost[0]
        a.agent.sendto(b"\x80after")
        assert a.agent.drops["not-connected"] == 1  # nothing goes out once consent is gone
    finally:
        await asyncio.gather(a.agent.aclose(), b.agent.aclose())


async def test_no_working_path_is_an_error() -> None:
    a, b = Side(NatSettings(), True), Side(NatSettings(), False)
    try:
        await a.agent.gather()
        db = await b.agent.gather()
        dead = type(db)(db.ufrag, db.pwd, tuple(type(c)(c.foundation, 1, "udp", c.priority, c.host,
                                                         _free_port(), c.type) for c in db.candidates))
        with pytest.raises(IceError, match="no working path"):
            await a.agent.connect(dead, b.agent.default, timeout=3)
    finally:
        await asyncio.gather(a.agent.aclose(), b.agent.aclose())


async def test_turns_checks_the_server_certificate(turn: Coturn) -> None:
    """TURN over TLS to a server whose certificate our trust store does not vouch for: no relay."""
    nat = NatSettings(turn=parse_turn_uri(turn.turn_uri("tls")), turn_user=turn.user,
                      turn_password=turn.password, relay_only=True)  # fmt: skip
    side = Side(nat, True)  # the system store: the bench CA is not in it
    try:
        assert (await side.agent.gather()).candidates == ()
        with pytest.raises(IceError, match="no ICE candidate"):
            _ = side.agent.default
    finally:
        await side.agent.aclose()


@pytest.mark.parametrize("password", ["right", "wrong"])
def test_doctor_gathers_as_a_call_would(turn: Coturn, tmp_path: Path, password: str) -> None:
    """`zcall doctor` with [nat] set shows the candidates (the mapped address says what the NAT gives) and
    warns when a server does not answer or refuses the account."""
    secret = turn.password if password == "right" else "not-it"
    (tmp_path / "config.toml").write_text(
        f'[nat]\nstun = "{turn.stun_uri}"\nturn = "{turn.turn_uri("udp")}"\nturn_user = "{turn.user}"\n'
        f'turn_password = "{secret}"\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "zcall", "--home", str(tmp_path), "--bind", LOOPBACK, "--audio-in", "silence",
         "--audio-out", "null", "--sip-port", "0", "doctor"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    line = next(line for line in result.stdout.splitlines() if "NAT traversal" in line)
    assert f"host {LOOPBACK}:" in line and f"srflx {LOOPBACK}:" in line, result.stdout
    if password == "right":
        assert line.startswith("ok") and "relay" in line, line
    else:
        assert line.startswith("warn") and "no answer from the TURN server" in line, line


async def test_a_silent_stun_server_gives_no_candidate_and_does_not_hold_up_gathering() -> None:
    """A STUN server that never answers: gathering gives up after GATHER_TIMEOUT_S with the host candidate
    (the call goes on without a mapped address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind((LOOPBACK, 0))
        side = Side(NatSettings(stun=parse_stun_uri(f"stun:{LOOPBACK}:{silent.getsockname()[1]}")), True)
        try:
            description = await asyncio.wait_for(side.agent.gather(), GATHER_TIMEOUT_S + 5)
            assert [c.type for c in description.candidates] == ["host"]
        finally:
            await side.agent.aclose()
