"""The states of one ZRTP endpoint (RFC 6189 §4): which state may follow which, and which message may arrive
in which state. Everything else is a bug (a move) or dropped (a message)."""

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

_S = State
ANY_STATE = frozenset(State)  # Error, ErrorACK and Ping are answered even after the end
LIVE_STATES = ANY_STATE - frozenset(TERMINAL)
# Which message (by wire type) may arrive in which state; anything else is dropped as "unexpected" (or
# "after_end"). ClearACK, RelayACK and PingACK are absent: we never solicit them.
ACCEPTED_IN: dict[bytes, frozenset[State]] = {
    b"Error   ": ANY_STATE,
    b"ErrorACK": ANY_STATE,
    b"Ping    ": ANY_STATE,
    b"Hello   ": LIVE_STATES,
    b"HelloACK": frozenset({_S.DISCOVERY}),
    b"Commit  ": frozenset({_S.DISCOVERY, _S.COMMIT_SENT, _S.WAIT_DHPART2}),
    b"DHPart1 ": frozenset({_S.COMMIT_SENT}),
    b"DHPart2 ": frozenset({_S.WAIT_DHPART2, _S.WAIT_CONFIRM2}),
    b"Confirm1": frozenset({_S.WAIT_CONFIRM1, _S.WAIT_CONF2ACK}),
    b"Confirm2": frozenset({_S.WAIT_CONFIRM2, _S.SECURE}),
    b"Conf2ACK": frozenset({_S.WAIT_CONF2ACK}),
    b"GoClear ": frozenset({_S.SECURE}),
    b"SASrelay": frozenset({_S.SECURE}),
}
