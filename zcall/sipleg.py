"""A SIP leg: one sans-I/O UserAgent and the transport it speaks over, driven the same way for the LAN (UDP)
and for a server account (TLS, see server.py): bytes in, `flush()` pumps the core through the one CoreDriver
(zcall/driver.py): what it wants sent leaves, its events go to the phone, its timer is re-armed."""

from __future__ import annotations

import abc
import asyncio
import errno
import os
import socket
import struct
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


IP_RECVERR = 11  # linux/in.h: ICMP errors for an unconnected socket, with the address they concern
_EXTENDED_ERR = struct.Struct("=IBBBBII")  # struct sock_extended_err
_ICMP_REASONS = {errno.ECONNREFUSED: "port unreachable", errno.EHOSTUNREACH: "host unreachable",
                 errno.ENETUNREACH: "network unreachable"}  # fmt: skip


def icmp_errors(sock: socket.socket) -> list[tuple[Addr, str]]:
    """Drain the socket's error queue: (the destination a datagram could not reach, why)."""
    found = []
    for _ in range(64):
        try:
            _, ancillary, _, dest = sock.recvmsg(1, 512, socket.MSG_ERRQUEUE)
        except OSError:  # BlockingIOError when empty
            break
        for level, kind, data in ancillary:
            if level == socket.IPPROTO_IP and kind == IP_RECVERR and len(data) >= _EXTENDED_ERR.size:
                code = _EXTENDED_ERR.unpack_from(data)[0]
                found.append(((str(dest[0]), int(dest[1])), _ICMP_REASONS.get(code, os.strerror(code))))
    return found


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, leg: LanLeg) -> None:
        self._leg = leg

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if len(data) <= MAX_SIP_DATAGRAM:
            self._leg.received(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        self._leg.check_icmp()


class LanLeg(SipLeg):
    """SIP over UDP, straight to peers on the LAN (or any SIP URI given by address)."""

    name = "lan"

    def __init__(
        self,
        on_event: Callable[[SipLeg, sip.UaEvent], None],
        on_unreachable: Callable[[Addr, str], None] | None = None,
    ) -> None:
        super().__init__(on_event)
        self._socket: asyncio.DatagramTransport | None = None
        self._errors: socket.socket | None = None
        self._on_unreachable = on_unreachable

    async def listen(self, bind: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        self._socket, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self), local_addr=(bind, port), family=socket.AF_INET
        )
        # A closed port answers with ICMP: hear it. asyncio's socket wrapper has no recvmsg, so the error
        # queue is read through a second handle on the same socket.
        fileno = self._socket.get_extra_info("socket").fileno()
        self._errors = socket.fromfd(fileno, socket.AF_INET, socket.SOCK_DGRAM)
        self._errors.setblocking(False)
        self._errors.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
        return int(self._socket.get_extra_info("sockname")[1])

    def check_icmp(self) -> None:
        """The socket reported an error: tell the phone which destinations cannot be reached."""
        if self._errors is None or self._on_unreachable is None:
            return
        for dest, why in icmp_errors(self._errors):
            self._on_unreachable(dest, why)

    def _send(self, data: bytes, addr: Addr) -> None:
        if self._socket is not None:
            self._socket.sendto(data, addr)

    def close(self) -> None:
        self.closed = True
        self.stop_timer()
        if self._socket is not None:
            self._socket.close()
        if self._errors is not None:
            self._errors.close()
