"""The call record and the core state shared by both sides of the SIP user agent (see zcall.sip.ua).

_UaCore owns the transaction tables, the outgoing queue and the event queue, and the few helpers that both
the UAC side and the UAS side need: start a client transaction, build or send a response, end a call.
"""

from __future__ import annotations

import collections
import enum
from collections import Counter
from dataclasses import dataclass, field

from zcall.net import Addr
from zcall.sip.dialog import ALLOW, Dialog, UaConfig, new_tag
from zcall.sip.digest import DigestClient
from zcall.sip.errors import ParseReason
from zcall.sip.events import CallEnded, UaEvent
from zcall.sip.model import Request, Response, build_response
from zcall.sip.ratelimit import SourceLimiter
from zcall.sip.register import Registration
from zcall.sip.transaction import ClientTransaction, ServerTransaction


class Drop(enum.Enum):
    """Why the core discarded or refused a well-formed message (parse failures count as a ParseReason)."""

    OVERLOADED = "overloaded"
    STRAY_ACK = "stray-ack"
    STRAY_RESPONSE = "stray-response"
    NO_ACK = "no-ack"
    RATE_LIMITED = "rate-limited"
    PENDING_INVITES = "pending-invites"
    STRAY_FORKS = "stray-forks"


class SipCallState(enum.Enum):
    """Where an INVITE dialog stands, on either side."""

    INIT = "init"  # INVITE sent or received, nothing back yet
    EARLY = "early"  # a provisional response went by
    ANSWERED = "answered"  # UAS: our 2xx is out, its ACK not yet in
    CONFIRMED = "confirmed"  # ACKed: the call is up
    ENDED = "ended"


C = SipCallState
# Which state may follow which; staying put is not a move. Anything else is a bug in the user agent.
CALL_TRANSITIONS: dict[SipCallState, frozenset[SipCallState]] = {
    C.INIT: frozenset({C.EARLY, C.ANSWERED, C.CONFIRMED, C.ENDED}),
    C.EARLY: frozenset({C.ANSWERED, C.CONFIRMED, C.ENDED}),
    C.ANSWERED: frozenset({C.CONFIRMED, C.ENDED}),
    C.CONFIRMED: frozenset({C.ENDED}),
    C.ENDED: frozenset(),
}


@dataclass
class _Call:
    call_id: str
    role: str  # "uac" | "uas"
    dialog: Dialog
    dest: Addr
    state: SipCallState = SipCallState.INIT
    invite_tx: ClientTransaction | ServerTransaction | None = None
    invite: Request | None = None
    cancel_pending: bool = False
    cancelled: bool = False
    ack_wire: bytes | None = None  # our ACK for their 2xx, re-sent on 2xx retransmission
    ok_wire: bytes | None = None  # our 2xx, re-sent until the ACK arrives
    ok_seq: int | None = None
    ok_interval: float = 0.0
    ok_next: float | None = None
    ok_deadline: float | None = None
    reinvite_tx: ServerTransaction | None = None
    reinvite_out: ClientTransaction | None = None
    ended_at: float | None = None
    stray_tags: set[str] = field(default_factory=set)  # forks whose 2xx we acknowledged and ended
    bye_pending: bool = False  # we hung up before the ACK of our 2xx arrived

    @property
    def pending(self) -> bool:
        """No final answer yet (INIT or EARLY)."""
        return self.state in (C.INIT, C.EARLY)

    def move(self, state: SipCallState) -> None:
        """The one place the state changes, checked against CALL_TRANSITIONS."""
        if state is not self.state and state not in CALL_TRANSITIONS[self.state]:
            raise RuntimeError(f"call {self.call_id}: {self.state.value} -> {state.value} is no transition")
        self.state = state


def _sdp_of(message: Request | Response) -> bytes:
    return message.body if message.content_type == "application/sdp" else b""


class _UaCore:
    """State shared by both sides, and the helpers both use to send, answer and end calls."""

    def __init__(self, config: UaConfig, credentials: DigestClient | None = None) -> None:
        self.config = config
        self.credentials = credentials
        self.registrations: dict[str, Registration] = {}
        self._reg_tx: dict[tuple[str, str], str] = {}  # client tx key -> registration token
        self.calls: dict[str, _Call] = {}
        self._client: dict[tuple[str, str], ClientTransaction] = {}
        self._server: dict[tuple[str, str, str], ServerTransaction] = {}
        self._options: dict[tuple[str, str], str] = {}  # client tx key -> token
        self._out: list[tuple[bytes, Addr]] = []
        self._events: collections.deque[UaEvent] = collections.deque()
        self.dropped: Counter[ParseReason | Drop] = Counter()  # bounded: the keys are two closed sets
        self._now = 0.0  # the latest time we were given; new transactions start from it
        per_source = config.new_requests_total if config.reliable else config.new_requests_per_source
        # Over TCP/TLS every request comes from the one proxy: only the shared rate applies.
        self._limiter = SourceLimiter(
            per_source, config.new_requests_source_burst,
            config.new_requests_total, config.new_requests_total_burst,
        )  # fmt: skip

    def _start_client(self, request: Request, dest: Addr, now: float) -> ClientTransaction:
        request.headers.add("User-Agent", self.config.user_agent)
        tx = ClientTransaction(request, dest, now, reliable=self.config.reliable, timers=self.config.timers)
        self._client[tx.key] = tx
        return tx

    def _response(self, request: Request, status: int, call: _Call | None, body: bytes = b"",
                  reason: str = "") -> Response:
        tag = call.dialog.local_tag if call else new_tag()
        # The reason phrase may quote what a peer sent (an SDP error): printable, bounded, one line.
        reason = "".join(c for c in reason if c.isprintable() and c.isascii())[:80]
        response = build_response(request, status, reason, to_tag=tag)
        if call is not None and 100 < status < 300 and request.method == "INVITE":
            for rr in request.headers.get_all("Record-Route"):
                response.headers.add("Record-Route", rr)
            response.headers.add("Contact", f"<{self.config.uri}>")
        if status == 405 or (status == 200 and request.method in ("OPTIONS", "INVITE")):
            response.headers.add("Allow", ", ".join(ALLOW))
        if request.method == "OPTIONS" and status == 200:
            response.headers.add("Accept", "application/sdp")
        response.headers.add("Server", self.config.user_agent)
        if body:
            response.headers.add("Content-Type", "application/sdp")
            response.body = body
        return response

    def _start_ok_retransmit(self, call: _Call, response: Response, seq: int, now: float) -> None:
        """RFC 3261 §13.3.1.4: the UAS core repeats its 2xx (T1 doubling to T2) until the ACK, for 64*T1."""
        t = self.config.timers
        call.ok_wire = response.serialize()
        call.ok_seq = seq
        call.ok_interval = t.t1
        call.ok_next = None if self.config.reliable else now + t.t1
        call.ok_deadline = now + 64 * t.t1

    def _send_bye(self, call: _Call, now: float) -> None:
        request = call.dialog.request("BYE", self.config)
        self._start_client(request, call.dialog.destination(call.dest, literal_only=True), now)

    def _end(self, call: _Call, reason: str | None) -> None:
        call.move(SipCallState.ENDED)
        call.ended_at = self._now
        call.ok_next = call.ok_deadline = None
        if reason is not None:
            self._events.append(CallEnded(call.call_id, reason))

    @property
    def _linger(self) -> float:
        """How long an ended call is kept to absorb stray retransmissions."""
        return 64 * self.config.timers.t1

    def _reply(self, request: Request, addr: Addr, now: float, status: int, call: _Call | None = None,
               body: bytes = b"", reason: str = "") -> ServerTransaction:
        tx = self._server_tx(request, addr, now, send_trying=False)
        tx.respond(self._response(request, status, call, body, reason), now)
        return tx

    def _server_tx(
        self, request: Request, addr: Addr, now: float, *, send_trying: bool = True
    ) -> ServerTransaction:
        cfg = self.config
        tx = ServerTransaction(
            request, addr, now, reliable=cfg.reliable, timers=cfg.timers, send_trying=send_trying
        )
        self._server[tx.key] = tx
        return tx

    def _room_for_server_tx(self) -> bool:
        """Whether a new server transaction fits in the table. The oldest answered ones make way: they only
        absorb retransmissions (Timer J/L: 32 s), so even a slow poller would otherwise fill the table with
        them and have every INVITE refused; only transactions still owing an answer can make it full."""
        excess = len(self._server) + 1 - self.config.max_server_transactions
        if excess > 0:
            for key in [key for key, tx in self._server.items() if tx.answered][:excess]:
                self._out += self._server.pop(key).datagrams_to_send(self._now)  # an answer not yet collected
        return len(self._server) < self.config.max_server_transactions

    def _overloaded(self, request: Request, addr: Addr) -> None:
        """Answer 503 without keeping any state (RFC 3261 §21.5.4)."""
        self._count(Drop.OVERLOADED)
        reply = self._response(request, 503, None)
        reply.headers.add("Retry-After", "5")
        self._out.append((reply.serialize(), addr))

    def _admit(self, addr: Addr, now: float) -> bool:
        """Whether this source may start new work now (a new transaction, or an answer to broken input)."""
        if self._limiter.admit(addr[0], now):
            return True
        self._count(Drop.RATE_LIMITED)
        return False

    def _count(self, reason: ParseReason | Drop) -> None:
        self.dropped[reason] += 1
