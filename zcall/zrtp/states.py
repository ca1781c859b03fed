"""The states of one ZRTP endpoint (RFC 6189 §4) and which state may follow which."""

from __future__ import annotations

import enum


class State(enum.Enum):
    DISCOVERY = "discovery"  # Hello / HelloACK
    COMMIT_SENT = "commit_sent"  # initiator: waiting for DHPart1
    WAIT_DHPART2 = "wait_dhpart2"  # responder: DHPart1 sent
    WAIT_CONFIRM1 = "wait_confirm1"  # initiator: DHPart2 sent
    WAIT_CONFIRM2 = "wait_confirm2"  # responder: Confirm1 sent
    WAIT_CONF2ACK = "wait_conf2ack"  # initiator: Confirm2 sent
    SECURE = "secure"
    ERROR_SENT = "error_sent"  # waiting for ErrorACK
    FAILED = "failed"
    CLOSED = "closed"


TERMINAL = (State.FAILED, State.CLOSED, State.ERROR_SENT)
_ENDS = frozenset(TERMINAL)  # any live state may fail, abort with an Error, or be closed
# Which state may follow which (h11 _state.py style); staying put is not a move. Anything else is a bug.
TRANSITIONS: dict[State, frozenset[State]] = {
    State.DISCOVERY: frozenset({State.COMMIT_SENT, State.WAIT_DHPART2}) | _ENDS,
    State.COMMIT_SENT: frozenset({State.WAIT_CONFIRM1, State.WAIT_DHPART2}) | _ENDS,  # or lose contention
    State.WAIT_DHPART2: frozenset({State.WAIT_CONFIRM2}) | _ENDS,
    State.WAIT_CONFIRM1: frozenset({State.WAIT_CONF2ACK}) | _ENDS,
    State.WAIT_CONFIRM2: frozenset({State.SECURE}) | _ENDS,
    State.WAIT_CONF2ACK: frozenset({State.SECURE}) | _ENDS,
    State.SECURE: _ENDS,
    State.ERROR_SENT: frozenset({State.FAILED, State.CLOSED}),
    State.FAILED: frozenset({State.CLOSED}),
    State.CLOSED: frozenset(),
}
