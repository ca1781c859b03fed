"""Dispatch by message type (aioquic's frame-handler table): the handler that takes each ZRTP message (the
states it may arrive in are states.ACCEPTED_IN)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from zcall.zrtp import messages as m
from zcall.zrtp.errors import Drop
from zcall.zrtp.packet import Packet

Z = TypeVar("Z")  # the session the handler belongs to
M = TypeVar("M", bound=m.Message)


@dataclass(frozen=True)
class Route(Generic[Z, M]):
    """One message type and its handler."""

    kind: type[M]
    handler: Callable[[Z, M, Packet, float], None]

    def run(self, session: Z, msg: m.Message, packet: Packet, now: float) -> None:
        if not isinstance(msg, self.kind):  # the wire type picked this route, so the parser made this class
            raise Drop("unexpected")
        self.handler(session, msg, packet, now)
