"""A SIP leg: one sans-I/O UserAgent and the transport it speaks over, driven the same way for the LAN (UDP)
and for a server account (TLS, see server.py): bytes in, `flush()` pumps the core through the one CoreDriver
(zcall/driver.py): what it wants sent leaves, its events go to the phone, its timer is re-armed."""

from __future__ import annotations

import abc
import asyncio
import socket
from collections.abc import Callable
from typing import Any

from zcall import sip
from zcall.driver import CoreDriver
from zcall.net import Addr

MAX_SIP_DATAGRAM = 65535


class SipLeg(abc.ABC):
    """A user agent on a transport, driven by the one CoreDriver; subclasses say how bytes leave."""

    name = "sip"

    def __init__(self, on_event: Callable[[SipLeg, sip.UaEvent], None]) -> None:
        self._ua: sip.UserAgent | None = None
        self._on_event = on_event
        self._driver: CoreDriver[tuple[bytes, Addr], sip.UaEvent] | None = None
        self.closed = False

    def attach(self, ua: sip.UserAgent) -> None:
        """Speak through this user agent from now on (a new one per server connection)."""
        self.stop_timer()
        self._ua = ua
        self._driver = CoreDriver(ua, self._transmit, lambda event: self._on_event(self, event))

    @property
    def ua(self) -> sip.UserAgent | None:
        """The user agent this leg speaks through (set with attach)."""
        return self._ua

    @staticmethod
    def now() -> float:
        return asyncio.get_running_loop().time()

    @abc.abstractmethod
    def _send(self, data: bytes, addr: Addr) -> None:
        """Put one message on this leg's transport."""

    def _transmit(self, message: tuple[bytes, Addr]) -> None:
        self._send(*message)

    def received(self, data: bytes, addr: Addr, stream: bool = False) -> None:
        if self.ua is None or self.closed:
            return
        self.ua.receive(data, addr, self.now(), stream=stream)
        self.flush()

    def flush(self) -> None:
        """Send what the user agent wants sent, act on its events, re-arm its timer."""
        if self._driver is not None and not self.closed:
            self._driver.pump()

    def stop_timer(self) -> None:
        if self._driver is not None:
            self._driver.close()


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
