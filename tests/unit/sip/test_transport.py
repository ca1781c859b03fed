"""Transports on loopback: TCP framing (split and coalesced), TLS verification, a real call over TCP and over
the phone's own UDP leg."""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path

import pytest

from tests.support.pki import CertificateAuthority, server_tls_context, wrong_ca_server_cert
from tests.unit.sip.samples import SDP, invite
from zcall.net import Addr
from zcall.sip.dialog import UaConfig
from zcall.sip.events import CallAnswered, CallEnded, IncomingCall, UaEvent
from zcall.sip.parser import parse
from zcall.sip.transport import (
    FramingError,
    Handler,
    StreamFramer,
    StreamTransport,
    client_tls_context,
)
from zcall.sip.ua import UserAgent
from zcall.sipleg import LanLeg, SipLeg

LOOP = "127.0.0.1"


Inbox = asyncio.Queue[tuple[bytes, Addr, bool]]


def _queue() -> tuple[Inbox, Handler]:
    q: Inbox = asyncio.Queue()

    def handler(data: bytes, addr: Addr, stream: bool) -> None:
        q.put_nowait((data, addr, stream))

    return q, handler


def test_framer_split_coalesced_and_keepalive() -> None:
    one, two = invite(), invite(body=b"")
    blob = b"\r\n\r\n" + one + two
    framer = StreamFramer()
    got: list[bytes] = []
    for i in range(len(blob)):
        got += framer.feed(blob[i : i + 1])
    assert got == [one, two] and framer.pings == 1
    framer = StreamFramer()
    assert framer.feed(blob + one[:10]) == [one, two]
    assert framer.feed(one[10:]) == [one]


@pytest.mark.parametrize(
    "bad",
    [
        invite().replace(b"Content-Length", b"X-Length"),
        invite().replace(b"Content-Length: ", b"Content-Length: 9\r\nl: "),
        invite(length=99999, body=b""),
        b"INVITE sip:a@b SIP/2.0\r\n" + b"X: " + b"y" * 20000,
    ],
)
def test_framer_rejects_unframeable_streams(bad: bytes) -> None:
    with pytest.raises(FramingError):
        StreamFramer().feed(bad)


async def test_tcp_split_and_coalesced_messages_and_nodelay() -> None:
    q, handler = _queue()
    server = StreamTransport(handler)
    addr = await server.listen(LOOP, 0)
    reader, writer = await asyncio.open_connection(*addr)
    try:
        one, two = invite(), invite(body=b"")
        for piece in (one[:7], one[7:300], one[300:]):  # one message in three writes
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.write(two + one)  # two messages in one write
        await writer.drain()
        got = [await asyncio.wait_for(q.get(), 5) for _ in range(3)]
        assert [g[0] for g in got] == [one, two, one]
        assert all(g[2] for g in got)
        peer = got[0][1]
        sock = server.socket_for(peer)
        assert sock is not None and sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        server.send_nowait(b"SIP/2.0 200 OK\r\n", peer)  # answers go back on the same connection
        assert await asyncio.wait_for(reader.readexactly(16), 5) == b"SIP/2.0 200 OK\r\n"
        writer.write(b"garbage without framing" * 1000)  # unframeable: the connection is dropped
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert server.framing_errors == 1
    finally:
        writer.close()
        await server.close()


async def test_tcp_keepalive_ping_gets_pong() -> None:
    _, handler = _queue()
    server = StreamTransport(handler)
    addr = await server.listen(LOOP, 0)
    reader, writer = await asyncio.open_connection(*addr)
    try:
        writer.write(b"\r\n\r\n")
        assert await asyncio.wait_for(reader.readexactly(2), 5) == b"\r\n"
    finally:
        writer.close()
        await server.close()


async def test_our_ping_is_answered_and_a_silent_peer_is_not_mistaken_for_alive() -> None:
    """Client side of RFC 5626: our ping's lone CRLF is a pong (not half a ping); a server that only reads
    gives none, and drop() abandons that flow."""
    _, handler = _queue()
    server = StreamTransport(handler)
    addr = await server.listen(LOOP, 0)
    pongs: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
    client = StreamTransport(handler, on_pong=pongs.put_nowait)
    silent_seen: list[bytes] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        silent_seen.append(await reader.read(4))  # reads the ping, never answers

    mute = await asyncio.start_server(silent, LOOP, 0)
    mute_addr = mute.sockets[0].getsockname()[:2]
    try:
        await client.connect(addr)
        for _ in range(2):
            client.ping(addr)
            assert await asyncio.wait_for(pongs.get(), 5) == addr
        await client.connect(mute_addr)
        client.ping(mute_addr)
        await asyncio.sleep(0.3)
        assert pongs.empty() and silent_seen == [b"\r\n\r\n"]
        client.drop(mute_addr)
        assert not client.connected(mute_addr)
    finally:
        mute.close()
        await client.close()
        await server.close()


def test_framer_takes_a_lone_crlf_as_the_pong_only_after_our_ping() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\r\n") == [] and framer.pongs == 0  # maybe half a ping: wait
    framer = StreamFramer()
    framer.awaiting_pong = True
    message = invite()
    assert framer.feed(b"\r\n" + message) == [message]
    assert (framer.pongs, framer.pings, framer.awaiting_pong) == (1, 0, False)


@pytest.fixture
def ca(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority(tmp_path / "pki")


async def _tls_pair(
    ca: CertificateAuthority, cafile: Path
) -> tuple[StreamTransport, StreamTransport, Addr, Inbox]:
    leaf = ca.server_cert(LOOP, "sip.test")
    q, handler = _queue()
    server_ctx = server_tls_context(str(leaf.cert_path), str(leaf.key_path))
    server = StreamTransport(handler, server_ssl=server_ctx)
    addr = await server.listen(LOOP, 0)
    _, h2 = _queue()
    client = StreamTransport(h2, client_ssl=client_tls_context(str(cafile)))
    return server, client, addr, q


async def test_tls_verifies_ca_and_hostname_with_sni(ca: CertificateAuthority, tmp_path: Path) -> None:
    server, client, addr, q = await _tls_pair(ca, ca.cert_path)
    try:
        assert client.name == "TLS"
        await client.send(invite(), addr, server_hostname="sip.test")
        data, _, stream = await asyncio.wait_for(q.get(), 5)
        assert data == invite() and stream
        sock = client.socket_for(addr)
        assert sock is not None and sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        # The same CA but a name the certificate does not carry.
        other = StreamTransport(lambda d, a, s: None, client_ssl=client_tls_context(str(ca.cert_path)))
        with pytest.raises(ssl.SSLCertVerificationError):
            await other.connect(addr, server_hostname="not-sip.test")
        await other.close()
        # An unrelated CA.
        rogue, _ = wrong_ca_server_cert(tmp_path / "rogue", LOOP, "sip.test")
        wrong = StreamTransport(lambda d, a, s: None, client_ssl=client_tls_context(str(rogue.cert_path)))
        with pytest.raises(ssl.SSLCertVerificationError):
            await wrong.connect(addr, server_hostname="sip.test")
        await wrong.close()
        # The system store does not know our CA either: verification is on by default.
        default = StreamTransport(lambda d, a, s: None, client_ssl=client_tls_context())
        with pytest.raises(ssl.SSLCertVerificationError):
            await default.connect(addr, server_hostname="sip.test")
        await default.close()
    finally:
        await client.close()
        await server.close()


class _Phone:
    """A user agent on a real transport, pumped by hand: the shape engine.py will take."""

    def __init__(self, ua: UserAgent, send: object) -> None:
        self.ua = ua
        self.send = send
        self.events: asyncio.Queue[UaEvent] = asyncio.Queue()

    def on_message(self, data: bytes, addr: Addr, stream: bool) -> None:
        self.ua.receive(data, addr, asyncio.get_running_loop().time(), stream=stream)
        asyncio.get_running_loop().create_task(self.flush())

    async def flush(self) -> None:
        for data, addr in self.ua.datagrams_to_send(asyncio.get_running_loop().time()):
            result = self.send(data, addr)  # type: ignore[operator]
            if asyncio.iscoroutine(result):
                await result
        while (ev := self.ua.next_event()) is not None:
            self.events.put_nowait(ev)

    async def expect(self, kind: type) -> UaEvent:
        while True:
            ev = await asyncio.wait_for(self.events.get(), 5)
            if isinstance(ev, kind):
                return ev


async def _call_and_hang_up(alice: _Phone, bob: _Phone, target: str) -> None:
    call_id = alice.ua.invite(target, SDP, asyncio.get_running_loop().time())
    await alice.flush()
    incoming = await bob.expect(IncomingCall)
    assert isinstance(incoming, IncomingCall) and incoming.call_id == call_id
    bob.ua.answer(call_id, SDP, asyncio.get_running_loop().time())
    await bob.flush()
    answered = await alice.expect(CallAnswered)
    assert isinstance(answered, CallAnswered) and parse(invite()).body == answered.sdp
    alice.ua.bye(call_id, asyncio.get_running_loop().time())
    await alice.flush()
    assert await bob.expect(CallEnded) == CallEnded(call_id, "bye")


async def test_call_between_two_agents_over_tcp() -> None:
    phones: list[_Phone] = []
    transports: list[StreamTransport] = []
    for user in ("alice", "bob"):
        holder: list[_Phone] = []

        def handler(data: bytes, addr: Addr, stream: bool, holder: list[_Phone] = holder) -> None:
            holder[0].on_message(data, addr, stream)

        tcp = StreamTransport(handler)
        host, port = await tcp.listen(LOOP, 0)
        transports.append(tcp)
        phone = _Phone(UserAgent(UaConfig(host, port, "TCP", user=user)), tcp.send)
        holder.append(phone)
        phones.append(phone)
    alice, bob = phones
    try:
        target = f"sip:bob@{bob.ua.config.host}:{bob.ua.config.port};transport=tcp"
        await _call_and_hang_up(alice, bob, target)
    finally:
        for tcp in transports:
            await tcp.close()


class _LegPhone(_Phone):
    """The phone's own SIP-over-UDP leg (zcall.sipleg.LanLeg) with its events collected."""

    def __init__(self, leg: LanLeg, ua: UserAgent) -> None:
        super().__init__(ua, None)
        self.leg = leg

    async def flush(self) -> None:
        self.leg.flush()


async def test_call_between_two_lan_legs_over_udp() -> None:
    phones: list[_LegPhone] = []
    for user in ("alice", "bob"):
        events: asyncio.Queue[UaEvent] = asyncio.Queue()

        def on_event(_leg: SipLeg, event: UaEvent, events: asyncio.Queue[UaEvent] = events) -> None:
            events.put_nowait(event)

        leg = LanLeg(on_event)
        port = await leg.listen(LOOP, 0)
        agent = UserAgent(UaConfig(LOOP, port, "UDP", user=user))
        leg.attach(agent)
        phone = _LegPhone(leg, agent)
        phone.events = events
        phones.append(phone)
    alice, bob = phones
    try:
        await _call_and_hang_up(alice, bob, f"sip:bob@{LOOP}:{bob.ua.config.port}")
    finally:
        for phone in phones:
            phone.leg.close()


async def test_connection_limit() -> None:
    _, handler = _queue()
    server = StreamTransport(handler, max_connections=2)
    addr = await server.listen(LOOP, 0)
    conns = [await asyncio.open_connection(*addr) for _ in range(3)]
    try:
        reader, _ = conns[2]
        try:  # the third is closed at once (a reset or an EOF, as the kernel has it)
            assert await asyncio.wait_for(reader.read(), 5) == b""
        except ConnectionResetError:
            pass
        assert server.refused == 1
    finally:
        for _, writer in conns:
            writer.close()
        await server.close()


async def test_inbound_connections_cannot_crowd_out_our_own_and_idle_ones_are_closed() -> None:
    _, handler = _queue()
    server = StreamTransport(handler, max_connections=4, max_inbound=2, idle_timeout=0.5)
    addr = await server.listen(LOOP, 0)
    other = StreamTransport(handler)
    other_addr = await other.listen(LOOP, 0)
    conns = [await asyncio.open_connection(*addr) for _ in range(3)]
    try:
        await asyncio.sleep(0.1)
        assert server.refused == 1  # the third inbound one
        await server.connect(other_addr)  # an outbound slot is still there for us
        assert server.connected(other_addr)
        _, dripping = conns[0]
        for _ in range(4):  # a byte at a time, never a whole message: closed when idle_timeout runs out
            dripping.write(b"I")
            await asyncio.sleep(0.2)
        assert server.idle_closed >= 1
        assert server.connected(other_addr)  # our own connection is never timed out
    finally:
        for _, writer in conns:
            writer.close()
        await server.close()
        await other.close()
