"""The phone's calls: by id, found again by their SIP dialog, and fed the events of that dialog."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING

from zcall import events
from zcall import sip as ua
from zcall.errors import ZcallError
from zcall.sipleg import SipLeg

if TYPE_CHECKING:  # the phone imports the call machinery at its first call
    from zcall.call import Call


class NoSuchCall(ZcallError):
    """A command named no call (or none in the state it needs); the message is for the user."""


class Calls:
    def __init__(self) -> None:
        self._by_id: dict[str, Call] = {}
        self._alive: weakref.WeakSet[Call] = weakref.WeakSet()

    def __iter__(self) -> Iterator[Call]:
        return iter(list(self._by_id.values()))

    def __bool__(self) -> bool:
        return bool(self._by_id)

    def add(self, call: Call) -> None:
        self._by_id[call.id] = call
        self._alive.add(call)

    @property
    def alive(self) -> int:
        """Calls of this phone still in memory, ended ones included: a soak checks that an ended call is
        freed when it is forgotten (a reference cycle would keep it, codecs and all, until a full gc)."""
        return len(self._alive)

    def forget(self, call: Call) -> None:
        self._by_id.pop(call.id, None)

    @property
    def busy(self) -> bool:
        """One call at a time: a live call makes the phone busy."""
        return any(not c.core.ended for c in self._by_id.values())

    def find(self, call_id: str | None, state: events.CallState | None = None) -> Call:
        """The call with this id, or the latest one in this state."""
        if call_id is not None:
            call = self._by_id.get(call_id)
            if call is None:
                raise NoSuchCall(f"no call {call_id!r}")
            return call
        candidates = [c for c in self._by_id.values() if state is None or c.core.state == state]
        if not candidates:
            raise NoSuchCall("no call" + (f" in state {state}" if state else ""))
        return candidates[-1]

    def on_dialog_event(self, leg: SipLeg, event: ua.UaEvent) -> None:
        """Feed a dialog's event to the core of the call it belongs to."""
        call_id = getattr(event, "call_id", None)
        call = next((c for c in self if c.sip_call_id == call_id and c.sip.leg is leg), None)
        if call is None:
            return
        core = call.core
        match event:
            case ua.CallProgress(status=status):
                call.step(lambda now: core.sip_progress(status, now))
            case ua.CallAnswered(sdp=answer):
                call.step(lambda now: core.sip_answered(answer, now))
            case ua.CallFailed(status=status, reason=reason):
                call.step(lambda now: core.sip_failed(status, reason, now))
            case ua.CallEnded(reason=reason):
                call.peer_left()
                call.step(lambda now: core.sip_ended(reason, now))
            case ua.ReInviteReceived(sdp=offer):
                call.step(lambda now: core.sip_reoffer(offer, now))
