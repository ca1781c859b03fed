"""An in-memory network with a fake clock joining sans-I/O user agents, with optional loss."""

from __future__ import annotations

from collections.abc import Callable

from zcall.net import Addr
from zcall.sip.events import UaEvent
from zcall.sip.model import Request, Response
from zcall.sip.parser import parse
from zcall.sip.ua import UserAgent


class Net:
    def __init__(self, *uas: UserAgent) -> None:
        self.uas = {(ua.config.host, ua.config.port): ua for ua in uas}
        self.now = 0.0
        self.log: list[tuple[Addr, Addr, Request | Response]] = []
        self.drop: Callable[[Request | Response], bool] = lambda msg: False
        self.events: dict[Addr, list[UaEvent]] = {addr: [] for addr in self.uas}
        self.outside: list[tuple[bytes, Addr]] = []  # sent to addresses no UA listens on

    def pump(self) -> None:
        moved = True
        while moved:
            moved = False
            for src, ua in self.uas.items():
                for data, dst in ua.datagrams_to_send(self.now):
                    moved = True
                    msg = parse(data)
                    self.log.append((src, dst, msg))
                    if self.drop(msg):
                        continue
                    if dst in self.uas:
                        self.uas[dst].receive(data, src, self.now)
                    else:
                        self.outside.append((data, dst))
                while (ev := ua.next_event()) is not None:
                    self.events[src].append(ev)

    def run_until(self, t: float) -> None:
        """Advance the fake clock to t, firing every timer on the way."""
        self.pump()
        while True:
            due = [w for ua in self.uas.values() if (w := ua.get_timer()) is not None and w <= t]
            if not due:
                break
            self.now = max(self.now, min(due))
            for ua in self.uas.values():
                if (w := ua.get_timer()) is not None and w <= self.now:
                    ua.handle_timer(self.now)
            self.pump()
        self.now = t

    def inject(self, data: bytes, src: Addr, dst: Addr) -> None:
        self.uas[dst].receive(data, src, self.now)
        self.pump()

    def take(self, addr: Addr) -> list[UaEvent]:
        out, self.events[addr] = self.events[addr], []
        return out

    def methods(self) -> list[str]:
        return [m.method if isinstance(m, Request) else f"{m.status}" for _, _, m in self.log]
