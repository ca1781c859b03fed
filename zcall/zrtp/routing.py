"""Dispatch by message type (aioquic's frame-handler table): the handler that takes each ZRTP message and the
states it may arrive in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from zcall.zrtp import messages as m
from zcall.zrtp.errors import Drop
from zcall.zrtp.packet import Packet
from zcall.zrtp.states import TERMINAL, State

Z = TypeVar("Z")  # the session the handler belongs to
M = TypeVar("M", bound=m.Message)

ANY_STATE = frozenset(State)  # Error, ErrorACK and Ping are answered even after the end
LIVE_STATES = ANY_STATE - frozenset(TERMINAL)


@dataclass(frozen=True)
class Route(Generic[Z, M]):
    """One message type: its handler and the states it may arrive in."""

    kind: type[M]
    handler: Callable[[Z, M, Packet, float], None]
    states: frozenset[State]

    def run(self, session: Z, msg: m.Message, packet: Packet, now: float) -> None:
        if not isinstance(msg, self.kind):  # the wire type picked this route, so the parser made this class
            raise Drop("unexpected")
        self.handler(session, msg, packet, now)
