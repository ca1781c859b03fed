"""SIP transactions (RFC 3261 §17 with the RFC 6026 Accepted state), sans-I/O.

Each transaction owns its retransmission timers and nothing else: it is fed messages and the time, and hands
out (bytes, address) pairs and events. Timers A–K run on unreliable transports; over TCP/TLS the retransmit
timers are never armed and the absorb timers (D, I, J, K) are zero.
"""

from __future__ import annotations

import collections
import enum
import secrets
from abc import ABC, abstractmethod
from dataclasses import dataclass

from zcall.net import Addr
from zcall.sip.headers import CSeq, Headers
from zcall.sip.model import Request, Response, build_response

BRANCH_MAGIC = "z9hG4bK"


@dataclass(frozen=True)
class Timers:
    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0


DEFAULT_TIMERS = Timers()
TRYING_DELAY = 0.2  # RFC 3261 §17.2.1


@dataclass(frozen=True)
class TxResponse:
    """A response the client transaction passes up to its user."""

    response: Response


@dataclass(frozen=True)
class TxTimeout:
    """Timer B/F (no final response) or H (no ACK for our final response) fired."""

    timer: str


TxEvent = TxResponse | TxTimeout


class TxState(enum.Enum):
    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    ACCEPTED = "accepted"  # RFC 6026: a 2xx went by; absorb its retransmissions
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


T = TxState
# Which state may follow which, for each kind of transaction (RFC 3261 figures 5-8 with RFC 6026's Accepted).
# Staying put is not a move. Anything outside these tables is a bug here, not something a peer can cause.
INVITE_CLIENT: dict[TxState, frozenset[TxState]] = {
    T.CALLING: frozenset({T.PROCEEDING, T.ACCEPTED, T.COMPLETED, T.TERMINATED}),
    T.PROCEEDING: frozenset({T.ACCEPTED, T.COMPLETED, T.TERMINATED}),
    T.ACCEPTED: frozenset({T.TERMINATED}),
    T.COMPLETED: frozenset({T.TERMINATED}),
    T.TERMINATED: frozenset(),
}
NON_INVITE_CLIENT: dict[TxState, frozenset[TxState]] = {
    T.TRYING: frozenset({T.PROCEEDING, T.COMPLETED, T.TERMINATED}),
    T.PROCEEDING: frozenset({T.COMPLETED, T.TERMINATED}),
    T.COMPLETED: frozenset({T.TERMINATED}),
    T.TERMINATED: frozenset(),
}
INVITE_SERVER: dict[TxState, frozenset[TxState]] = {
    T.PROCEEDING: frozenset({T.ACCEPTED, T.COMPLETED}),
    T.ACCEPTED: frozenset({T.TERMINATED}),
    T.COMPLETED: frozenset({T.CONFIRMED, T.TERMINATED}),
    T.CONFIRMED: frozenset({T.TERMINATED}),
    T.TERMINATED: frozenset(),
}
NON_INVITE_SERVER: dict[TxState, frozenset[TxState]] = {
    T.TRYING: frozenset({T.PROCEEDING, T.COMPLETED}),
    T.PROCEEDING: frozenset({T.COMPLETED}),
    T.COMPLETED: frozenset({T.TERMINATED}),
    T.TERMINATED: frozenset(),
}


def new_branch() -> str:
    return BRANCH_MAGIC + secrets.token_hex(8)


def client_key(response: Response) -> tuple[str, str]:
    """RFC 3261 §17.1.3: top Via branch and CSeq method."""
    return (response.top_via.branch or "", response.cseq.method)


def server_key(request: Request) -> tuple[str, str, str]:
    """RFC 3261 §17.2.3: branch, sent-by and method (an ACK matches the INVITE it acknowledges)."""
    via = request.top_via
    branch = via.branch or ""
    if not branch.startswith(BRANCH_MAGIC):
        # RFC 2543 peer (§17.2.3): identify by Call-ID, CSeq number and From tag (and branch, if any),
        # which an INVITE, its ACK and its CANCEL share.
        branch = f"2543/{branch}/{request.call_id}/{request.cseq.seq}/{request.from_.tag or ''}"
    method = "INVITE" if request.method == "ACK" else request.method
    return (branch, f"{via.host}:{via.port or 5060}", method)


class _Transaction(ABC):
    def __init__(
        self,
        dest: Addr,
        now: float,
        reliable: bool,
        timers: Timers,
        transitions: dict[TxState, frozenset[TxState]],
        state: TxState,
    ) -> None:
        self.dest = dest
        self.reliable = reliable
        self.timers = timers
        self._transitions = transitions
        self.state = state
        self._deadlines: dict[str, float] = {}
        self._intervals: dict[str, float] = {}
        self._out: list[tuple[bytes, Addr]] = []
        self._events: collections.deque[TxEvent] = collections.deque()
        self.created = now

    @property
    def terminated(self) -> bool:
        return self.state is T.TERMINATED

    def get_timer(self) -> float | None:
        return min(self._deadlines.values()) if self._deadlines else None

    def handle_timer(self, now: float) -> None:
        while self._deadlines:
            name, when = min(self._deadlines.items(), key=lambda kv: kv[1])
            if when > now:
                return
            del self._deadlines[name]
            self._fire(name, now)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Addr]]:
        out, self._out = self._out, []
        return out

    def next_event(self) -> TxEvent | None:
        return self._events.popleft() if self._events else None

    def _arm(self, name: str, now: float, delay: float) -> None:
        self._deadlines[name] = now + delay

    def _arm_retransmit(self, name: str, now: float, interval: float) -> None:
        if not self.reliable:
            self._intervals[name] = interval
            self._arm(name, now, interval)

    def move(self, state: TxState) -> None:
        """The one place the state changes, checked against this kind's table."""
        if state is not self.state and state not in self._transitions[self.state]:
            raise RuntimeError(f"transaction {self.state.value} -> {state.value} is not a transition")
        self.state = state

    def _terminate(self) -> None:
        self.move(T.TERMINATED)
        self._deadlines.clear()

    @abstractmethod
    def _fire(self, name: str, now: float) -> None:
        """Act on the expiry of the named timer (retransmit, time out, terminate)."""


class ClientTransaction(_Transaction):
    """INVITE (Calling/Proceeding/Accepted/Completed) or non-INVITE (Trying/Proceeding/Completed) client."""

    def __init__(
        self, request: Request, dest: Addr, now: float, *, reliable: bool, timers: Timers = DEFAULT_TIMERS
    ) -> None:
        is_invite = request.method == "INVITE"
        if is_invite:
            super().__init__(dest, now, reliable, timers, INVITE_CLIENT, T.CALLING)
        else:
            super().__init__(dest, now, reliable, timers, NON_INVITE_CLIENT, T.TRYING)
        self.request = request
        self.is_invite = is_invite
        self.key = (request.top_via.branch or "", request.method)
        self._wire = request.serialize()
        self._ack: bytes | None = None
        self._out.append((self._wire, dest))
        self._arm_retransmit("A" if self.is_invite else "E", now, timers.t1)
        self._arm("B" if self.is_invite else "F", now, 64 * timers.t1)

    def receive(self, response: Response, now: float) -> None:
        status = response.status
        if self.state is T.TERMINATED:
            return
        if self.is_invite:
            self._receive_invite(response, status, now)
        else:
            self._receive_non_invite(response, status, now)

    def _receive_invite(self, response: Response, status: int, now: float) -> None:
        if self.state in (T.CALLING, T.PROCEEDING):
            self._deadlines.pop("A", None)
            if status < 200:
                # Timer B only guards the Calling state: a phone may ring for as long as the TU lets it.
                self._deadlines.pop("B", None)
                self.move(T.PROCEEDING)
                self._events.append(TxResponse(response))
            elif status < 300:
                # RFC 6026: stay to pass 2xx retransmissions up (the TU re-sends its ACK), then end at M.
                self.move(T.ACCEPTED)
                self._deadlines.pop("B", None)
                self._arm("M", now, 64 * self.timers.t1)
                self._events.append(TxResponse(response))
            else:
                self.move(T.COMPLETED)
                self._deadlines.pop("B", None)
                self._ack = self._build_ack(response).serialize()
                self._out.append((self._ack, self.dest))
                self._arm("D", now, 0.0 if self.reliable else 32.0)
                self._events.append(TxResponse(response))
        elif self.state is T.ACCEPTED and 200 <= status < 300:
            self._events.append(TxResponse(response))
        elif self.state is T.COMPLETED and status >= 300 and self._ack is not None:
            self._out.append((self._ack, self.dest))  # our ACK was lost; the final response is absorbed

    def _receive_non_invite(self, response: Response, status: int, now: float) -> None:
        if self.state is T.TRYING and status < 200:
            self.move(T.PROCEEDING)
            self._events.append(TxResponse(response))
        elif self.state in (T.TRYING, T.PROCEEDING):
            if status < 200:
                self._events.append(TxResponse(response))
                return
            self.move(T.COMPLETED)
            self._deadlines.pop("E", None)
            self._deadlines.pop("F", None)
            self._arm("K", now, 0.0 if self.reliable else self.timers.t4)
            self._events.append(TxResponse(response))

    def _build_ack(self, response: Response) -> Request:
        """ACK for a non-2xx final response: same branch, To from the response (RFC 3261 §17.1.1.3)."""
        req = self.request
        headers = Headers()
        headers.add("Via", req.headers.get_all("Via")[0])
        headers.add("Max-Forwards", "70")
        headers.add("From", req.headers.get("From") or "")
        headers.add("To", response.headers.get("To") or "")
        headers.add("Call-ID", req.call_id)
        headers.add("CSeq", str(CSeq(req.cseq.seq, "ACK")))
        for route in req.headers.get_all("Route"):
            headers.add("Route", route)
        return Request("ACK", req.uri, headers)

    def _fire(self, name: str, now: float) -> None:
        if name in ("A", "E"):
            self._out.append((self._wire, self.dest))
            interval = self._intervals[name] * 2
            if name == "E":
                interval = min(interval, self.timers.t2)
            if name == "E" and self.state is T.PROCEEDING:
                interval = self.timers.t2
            self._intervals[name] = interval
            self._arm(name, now, interval)
        elif name in ("B", "F"):
            self._terminate()
            self._events.append(TxTimeout(name))
        else:  # D, K, M
            self._terminate()


class ServerTransaction(_Transaction):
    """INVITE (Proceeding/Accepted/Completed/Confirmed) or non-INVITE (Trying/Proceeding/Completed) server."""

    def __init__(
        self,
        request: Request,
        source: Addr,
        now: float,
        *,
        reliable: bool,
        timers: Timers = DEFAULT_TIMERS,
        send_trying: bool = True,
    ) -> None:
        is_invite = request.method == "INVITE"
        if is_invite:
            super().__init__(source, now, reliable, timers, INVITE_SERVER, T.PROCEEDING)
        else:
            super().__init__(source, now, reliable, timers, NON_INVITE_SERVER, T.TRYING)
        self.request = request
        self.is_invite = is_invite
        self.key = server_key(request)
        self._last: bytes | None = None
        if self.is_invite and send_trying:
            # RFC 3261 §17.2.1: a 100 only if the TU has not answered within 200 ms, so that a request
            # answered at once (ringing, busy, refused) gets one response, not two.
            self._arm("T", now, TRYING_DELAY)

    @property
    def answered(self) -> bool:
        """A final response is out: what is left is absorbing retransmissions (and Timer G for a non-2xx)."""
        return self.state not in (T.TRYING, T.PROCEEDING)

    def respond(self, response: Response, now: float) -> None:
        """Send a response from the TU. Responses after a final one are ignored."""
        if self.state not in (T.TRYING, T.PROCEEDING):
            return
        self._deadlines.pop("T", None)
        self._last = response.serialize()
        self._out.append((self._last, self.dest))
        status = response.status
        if status < 200:
            self.move(T.PROCEEDING)
        elif self.is_invite and status < 300:
            self.move(T.ACCEPTED)
            self._arm("L", now, 64 * self.timers.t1)
        elif self.is_invite:
            self.move(T.COMPLETED)
            self._arm_retransmit("G", now, self.timers.t1)
            self._arm("H", now, 64 * self.timers.t1)
        else:
            self.move(T.COMPLETED)
            self._arm("J", now, 0.0 if self.reliable else 64 * self.timers.t1)

    def receive(self, request: Request, now: float) -> None:
        """A retransmitted request (or the ACK of our non-2xx final response)."""
        if request.method == "ACK":
            if self.is_invite and self.state is T.COMPLETED:
                self.move(T.CONFIRMED)
                self._deadlines.pop("G", None)
                self._deadlines.pop("H", None)
                self._arm("I", now, 0.0 if self.reliable else self.timers.t4)
            return
        if self.state in (T.PROCEEDING, T.COMPLETED) and self._last is not None:
            self._out.append((self._last, self.dest))
        elif "T" in self._deadlines:
            self._fire("T", now)  # retransmitted before the TU said anything: stop it with a 100 now

    def _fire(self, name: str, now: float) -> None:
        if name == "T":
            self._deadlines.pop("T", None)
            if self._last is None and self.state is T.PROCEEDING:
                self.respond(build_response(self.request, 100), now)
        elif name == "G":
            if self._last is not None:
                self._out.append((self._last, self.dest))
            interval = min(self._intervals["G"] * 2, self.timers.t2)
            self._intervals["G"] = interval
            self._arm("G", now, interval)
        elif name == "H":
            self._terminate()
            self._events.append(TxTimeout("H"))
        else:  # I, J, L
            self._terminate()
