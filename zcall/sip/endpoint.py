"""One UserAgent on its transport and an asyncio loop: the SIP object that does the I/O and the timing.

The engine calls the user agent's commands with `endpoint.now()` and then `endpoint.flush()`; incoming bytes,
timers and outgoing bytes are handled here, and the agent's events arrive on `endpoint.events`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import replace

from zcall.sip.dialog import UaConfig, UaEvent
from zcall.sip.digest import DigestClient
from zcall.sip.transport import Addr, StreamTransport, UdpTransport
from zcall.sip.ua import UserAgent


class SipEndpoint:
    def __init__(
        self,
        config: UaConfig,
        *,
        credentials: DigestClient | None = None,
        server_ssl: ssl.SSLContext | None = None,
        client_ssl: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> None:
        """`server_ssl` lets a TLS endpoint accept connections; `client_ssl` (verifying) opens them, checking
        the certificate against `server_hostname` (sent as SNI) or else the address dialled."""
        self.config = config
        self.ua = UserAgent(config, credentials)
        self.events: asyncio.Queue[UaEvent] = asyncio.Queue()
        self.send_errors: list[str] = []
        self._server_ssl = server_ssl
        self._client_ssl = client_ssl
        self._server_hostname = server_hostname
        self._udp: UdpTransport | None = None
        self._stream: StreamTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def start(self) -> Addr:
        """Open the listener (none for a TLS endpoint without a server context); returns the bound address.

        With port 0 the user agent is rebuilt for the port the kernel chose, so take `ua` after this."""
        self._loop = asyncio.get_running_loop()
        host, port = self.config.host, self.config.port
        bound = (host, port)
        if self.config.transport == "UDP":
            self._udp = await UdpTransport.listen(host, port, self._on_message)
            bound = self._udp.local_addr
        else:
            self._stream = StreamTransport(
                self._on_message, server_ssl=self._server_ssl, client_ssl=self._client_ssl
            )
            if self.config.transport == "TCP" or self._server_ssl is not None:
                bound = await self._stream.listen(host, port)
        if bound[1] != port:
            # Port 0 asked the kernel for one: Via and Contact must carry the real port.
            self.config = replace(self.config, port=bound[1])
            self.ua = UserAgent(self.config, self.ua.credentials)
        return bound

    def flush(self) -> None:
        """Send what the agent queued, publish its events, re-arm its timer. Call after every command."""
        ua = self.ua
        for data, addr in ua.messages_to_send():
            self._send(data, addr)
        while (event := ua.next_event()) is not None:
            self.events.put_nowait(event)
        self._arm()

    async def next_event(self, timeout: float | None = None) -> UaEvent:
        return await asyncio.wait_for(self.events.get(), timeout)

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._udp is not None:
            self._udp.close()
        if self._stream is not None:
            await self._stream.close()

    # ------------------------------------------------ internals

    def _on_message(self, data: bytes, addr: Addr, stream: bool) -> None:
        self.ua.receive(data, addr, self.now(), stream=stream)
        self.flush()

    def _on_timer(self) -> None:
        self._timer = None
        self.ua.handle_timer(self.now())
        self.flush()

    def _arm(self) -> None:
        when = self.ua.get_timer()
        if self._timer is not None:
            if when is not None and self._timer.when() == when:
                return
            self._timer.cancel()
            self._timer = None
        if when is not None and self._loop is not None:
            self._timer = self._loop.call_at(when, self._on_timer)

    def _send(self, data: bytes, addr: Addr) -> None:
        if self._udp is not None:
            self._udp.send(data, addr)
            return
        stream = self._stream
        if stream is None:
            raise RuntimeError("SipEndpoint.start() was not awaited")
        if stream.connected(addr):
            stream.send_nowait(data, addr)
            return
        # Connecting takes time: send from a task; a failure leaves the transaction to time out (408).
        task = asyncio.get_running_loop().create_task(self._connect_and_send(stream, data, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect_and_send(self, stream: StreamTransport, data: bytes, addr: Addr) -> None:
        try:
            await stream.send(data, addr, server_hostname=self._server_hostname)
        except (TimeoutError, OSError, ssl.SSLError, ConnectionError) as exc:
            self.send_errors.append(f"{addr[0]}:{addr[1]}: {type(exc).__name__}")
