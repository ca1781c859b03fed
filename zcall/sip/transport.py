"""SIP stream transports on asyncio: they only move bytes (RFC 3261 §18). SIP over UDP (one datagram is one
message) is the phone's LAN leg in zcall.sipleg.

TCP/TLS: a byte stream cut into messages by Content-Length (StreamFramer),
with TCP_NODELAY on every connection (Nagle would add tens of ms per request). A connection opened by either
side is reused for both directions and is found by the peer's address. TLS client contexts verify the server
certificate and its hostname by default and send SNI.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
from collections.abc import Callable

from zcall.errors import ZcallError
from zcall.net import Addr
from zcall.sip.parser import MAX_BODY, MAX_HEADER_BYTES

# (message bytes, source address, came over a stream)
Handler = Callable[[bytes, Addr, bool], None]

_CONTENT_LENGTH = re.compile(rb"\r\n(?:content-length|l)[ \t]*:[ \t]*(\d{1,10})[ \t]*(?=\r\n)", re.IGNORECASE)
KEEPALIVE_PING = b"\r\n\r\n"
KEEPALIVE_PONG = b"\r\n"


class FramingError(ZcallError, ValueError):
    """The stream cannot be cut into SIP messages any more; the connection must be closed."""


class StreamFramer:
    """Sans-I/O: feed() bytes as they arrive, get whole messages back. Counts CRLF keep-alive pings, and the
    pongs to our own pings while `awaiting_pong` (a lone CRLF is then a pong, not half a ping)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.pings = 0
        self.pongs = 0
        self.awaiting_pong = False

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while True:
            # RFC 5626 §3.5.1: a double CRLF between messages is a ping; a lone CRLF a pong.
            while self._buf.startswith(b"\r\n"):
                if self._buf.startswith(KEEPALIVE_PING):
                    self.pings += 1
                    del self._buf[:4]
                elif self.awaiting_pong:
                    self.pongs += 1
                    self.awaiting_pong = False
                    del self._buf[:2]
                elif KEEPALIVE_PING.startswith(self._buf):
                    return out  # maybe the first half of a ping: wait for more
                else:
                    del self._buf[:2]
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > MAX_HEADER_BYTES:
                    raise FramingError("header section too large")
                return out
            if end > MAX_HEADER_BYTES:
                raise FramingError("header section too large")
            head = bytes(self._buf[: end + 2])
            lengths = _CONTENT_LENGTH.findall(head)
            if len(lengths) != 1:
                raise FramingError("stream message needs exactly one Content-Length")
            length = int(lengths[0])
            if length > MAX_BODY:
                raise FramingError("body too large")
            total = end + 4 + length
            if len(self._buf) < total:
                return out
            out.append(bytes(self._buf[:total]))
            del self._buf[:total]


def client_tls_context(cafile: str | None = None, *, cadata: str | None = None) -> ssl.SSLContext:
    """Verifies the server's chain and hostname (system store unless a CA is given)."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile, cadata=cadata)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


# ---------------------------------------------------------------- TCP / TLS


class _StreamProtocol(asyncio.Protocol):
    def __init__(self, owner: StreamTransport, *, inbound: bool) -> None:
        self.owner = owner
        self.inbound = inbound
        self.framer = StreamFramer()
        self.transport: asyncio.Transport | None = None
        self.peer: Addr = ("", 0)
        self._idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        host, port = transport.get_extra_info("peername")[:2]
        self.peer = (str(host), int(port))
        inbound = sum(1 for c in self.owner._connections.values() if c.inbound)
        if len(self.owner._connections) >= self.owner.max_connections or (
            self.inbound and inbound >= self.owner.max_inbound
        ):
            self.owner.refused += 1
            transport.abort()  # a connection flood must not grow our state, nor crowd out our own connections
            return
        self.owner._connections[self.peer] = self
        self._arm_idle()

    def _arm_idle(self) -> None:
        """An accepted connection that sends no whole message (or keep-alive) for idle_timeout is closed:
        a slow drip of bytes must not hold a connection slot for ever."""
        if not self.inbound:
            return
        if self._idle is not None:
            self._idle.cancel()
        self._idle = asyncio.get_running_loop().call_later(self.owner.idle_timeout, self._on_idle)

    def _on_idle(self) -> None:
        self.owner.idle_closed += 1
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        pings, pongs = self.framer.pings, self.framer.pongs
        try:
            messages = self.framer.feed(data)
        except FramingError:
            self.owner.framing_errors += 1
            if self.transport is not None:
                self.transport.abort()
            return
        if self.framer.pings != pings and self.transport is not None:
            self.transport.write(KEEPALIVE_PONG)
        if messages or self.framer.pings != pings:
            self._arm_idle()
        if self.framer.pongs != pongs and self.owner.on_pong is not None:
            self.owner.on_pong(self.peer)
        for message in messages:
            self.owner.handler(message, self.peer, True)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle is not None:
            self._idle.cancel()
        if self.owner._connections.get(self.peer) is self:
            del self.owner._connections[self.peer]


class StreamTransport:
    """TCP, or TLS when given contexts: a listener plus the connections to and from peers."""

    def __init__(
        self,
        handler: Handler,
        *,
        server_ssl: ssl.SSLContext | None = None,
        client_ssl: ssl.SSLContext | None = None,
        max_connections: int = 128,
        max_inbound: int = 64,
        idle_timeout: float = 120.0,
        on_pong: Callable[[Addr], None] | None = None,
    ) -> None:
        self.handler = handler
        self.on_pong = on_pong  # a CRLF pong answered our ping() on that connection
        self.max_connections = max_connections
        self.max_inbound = min(max_inbound, max_connections)
        self.idle_timeout = idle_timeout
        self.idle_closed = 0
        self.refused = 0
        self.server_ssl = server_ssl
        self.client_ssl = client_ssl
        self.framing_errors = 0
        self._connections: dict[Addr, _StreamProtocol] = {}
        self._connecting: dict[Addr, asyncio.Future[None]] = {}
        self._server: asyncio.Server | None = None

    @property
    def name(self) -> str:
        return "TLS" if self.server_ssl or self.client_ssl else "TCP"

    async def listen(self, host: str, port: int) -> Addr:
        loop = asyncio.get_running_loop()
        factory = lambda: _StreamProtocol(self, inbound=True)  # noqa: E731
        self._server = await loop.create_server(factory, host, port, ssl=self.server_ssl)
        sockname = self._server.sockets[0].getsockname()
        return (str(sockname[0]), int(sockname[1]))

    async def connect(self, addr: Addr, *, server_hostname: str | None = None, timeout: float = 10.0) -> None:
        """Open (or reuse) a connection to addr. TLS verifies the certificate for server_hostname (SNI)."""
        if addr in self._connections:
            return
        pending = self._connecting.get(addr)
        if pending is None:
            # One attempt per peer: messages queued meanwhile go out on it, in order.
            pending = asyncio.ensure_future(self._open(addr, server_hostname, timeout))
            self._connecting[addr] = pending
            pending.add_done_callback(lambda _: self._connecting.pop(addr, None))
        await asyncio.shield(pending)

    async def _open(self, addr: Addr, server_hostname: str | None, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        hostname = (server_hostname or addr[0]) if self.client_ssl is not None else None
        connecting = loop.create_connection(
            lambda: _StreamProtocol(self, inbound=False), addr[0], addr[1], ssl=self.client_ssl,
            server_hostname=hostname,
        )
        transport, _ = await asyncio.wait_for(connecting, timeout)
        host, port = transport.get_extra_info("peername")[:2]
        if (str(host), int(port)) != addr:
            # Dialled by name or an IPv4-mapped form: file the connection under the address we were given.
            conn = self._connections.pop((str(host), int(port)), None)
            if conn is not None:
                conn.peer = addr
                self._connections[addr] = conn

    async def send(self, data: bytes, addr: Addr, *, server_hostname: str | None = None) -> None:
        if addr not in self._connections:
            await self.connect(addr, server_hostname=server_hostname)
        self.send_nowait(data, addr)

    def send_nowait(self, data: bytes, addr: Addr) -> None:
        """Write on an existing connection; raises ConnectionError when there is none."""
        conn = self._connections.get(addr)
        if conn is None or conn.transport is None or conn.transport.is_closing():
            raise ConnectionError(f"no connection to {addr[0]}:{addr[1]}")
        conn.transport.write(data)

    def connected(self, addr: Addr) -> bool:
        return addr in self._connections

    def ping(self, addr: Addr) -> None:
        """RFC 5626 CRLF ping on the connection to addr; on_pong is called when its pong arrives."""
        conn = self._connections.get(addr)
        self.send_nowait(KEEPALIVE_PING, addr)
        if conn is not None:
            conn.framer.awaiting_pong = True

    def drop(self, addr: Addr) -> None:
        """Abandon the connection to addr at once (a dead flow: nothing more can be sent on it)."""
        conn = self._connections.pop(addr, None)
        if conn is not None and conn.transport is not None:
            conn.transport.abort()

    def socket_for(self, addr: Addr) -> socket.socket | None:
        conn = self._connections.get(addr)
        if conn is None or conn.transport is None:
            return None
        sock: socket.socket | None = conn.transport.get_extra_info("socket")
        return sock

    async def close(self) -> None:
        for conn in list(self._connections.values()):
            if conn.transport is not None:
                conn.transport.close()
        self._connections.clear()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
