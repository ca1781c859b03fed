"""A SIP leg: one sans-I/O UserAgent and the transport it speaks over, driven the same way for the LAN (UDP)
and for a server account (TLS, see server.py): bytes in, `flush()` sends what the core wants sent, hands its
events to the phone and re-arms its timer."""

from __future__ import annotations

import abc
import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any

from zcall import sip
from zcall.net import Addr

MAX_SIP_DATAGRAM = 65535


class SipLeg(abc.ABC):
    """The common driving loop; subclasses say how bytes leave."""

    name = "sip"

    def __init__(self, on_event: Callable[[SipLeg, sip.UaEvent], None]) -> None:
        self.ua: sip.UserAgent | None = None
        self._on_event = on_event
        self._timer: asyncio.TimerHandle | None = None
        self.closed = False

    @staticmethod
    def now() -> float:
        return time.monotonic()

    @abc.abstractmethod
    def _send(self, data: bytes, addr: Addr) -> None:
        """Put one message on this leg's transport."""

    def received(self, data: bytes, addr: Addr, stream: bool = False) -> None:
        if self.ua is None or self.closed:
            return
        self.ua.receive(data, addr, self.now(), stream=stream)
        self.flush()

    def _on_timer(self) -> None:
        self._timer = None
        if self.ua is not None and not self.closed:
            self.ua.handle_timer(self.now())
            self.flush()

    def flush(self) -> None:
        """Send what the user agent wants sent, act on its events, re-arm its timer."""
        core = self.ua
        if core is None:
            return
        for data, addr in core.datagrams_to_send(self.now()):
            self._send(data, addr)
        while (event := core.next_event()) is not None:
            self._on_event(self, event)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        due = core.get_timer()
        if due is not None and not self.closed:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(max(0.0, due - self.now()), self._on_timer)

    def stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, leg: LanLeg) -> None:
        self._leg = leg

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if len(data) <= MAX_SIP_DATAGRAM:
            self._leg.received(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP unreachable for a peer that left: its transaction times out by itself


class LanLeg(SipLeg):
    """SIP over UDP, straight to peers on the LAN (or any SIP URI given by address)."""

    name = "lan"

    def __init__(self, on_event: Callable[[SipLeg, sip.UaEvent], None]) -> None:
        super().__init__(on_event)
        self._socket: asyncio.DatagramTransport | None = None

    async def listen(self, bind: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        self._socket, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self), local_addr=(bind, port), family=socket.AF_INET
        )
        return int(self._socket.get_extra_info("sockname")[1])

    def _send(self, data: bytes, addr: Addr) -> None:
        if self._socket is not None:
            self._socket.sendto(data, addr)

    def close(self) -> None:
        self.closed = True
        self.stop_timer()
        if self._socket is not None:
            self._socket.close()
