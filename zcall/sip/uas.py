"""The UAS side of the SIP user agent (RFC 3261 §13.3, §15): incoming requests, answering, ACK and CANCEL."""

from __future__ import annotations

import secrets

from zcall.net import Addr
from zcall.sip.dialog import ALLOW, Dialog, new_tag
from zcall.sip.events import CallConfirmed, IncomingCall, ReInviteReceived
from zcall.sip.model import Request
from zcall.sip.transaction import ServerTransaction, TxState, server_key
from zcall.sip.ua_core import Drop, SipCallState, _Call, _sdp_of, _UaCore
from zcall.sip.uri import NameAddr


class _UasSide(_UaCore):
    """Incoming requests: new calls, ACK, CANCEL, in-dialog requests, and the answering commands."""

    # ------------------------------------------------ commands (UAS side)

    def ringing(self, call_id: str, now: float) -> None:
        self._now = max(self._now, now)
        call = self.calls.get(call_id)
        if call is None or call.role != "uas" or not call.pending:
            return
        call.move(SipCallState.EARLY)
        self._respond_invite(call, 180, b"", now)

    def answer(self, call_id: str, sdp: bytes, now: float) -> None:
        self._now = max(self._now, now)
        call = self.calls.get(call_id)
        if call is None or call.role != "uas" or not call.pending:
            return
        call.move(SipCallState.ANSWERED)
        self._respond_invite(call, 200, sdp, now)

    def reject(self, call_id: str, status: int, now: float, reason: str = "") -> None:
        """486 Busy Here, 488 Not Acceptable Here, 603 Decline… to an incoming INVITE."""
        self._now = max(self._now, now)
        call = self.calls.get(call_id)
        if call is None or call.role != "uas" or not call.pending:
            return
        self._respond_invite(call, status, b"", now, reason)
        self._end(call, None)

    def answer_reinvite(self, call_id: str, sdp: bytes, now: float, *, status: int = 200) -> None:
        """Accept (200 with our answer) or refuse (e.g. 488) the pending incoming re-INVITE."""
        self._now = max(self._now, now)
        call = self.calls.get(call_id)
        if call is None or call.reinvite_tx is None:
            return
        tx, call.reinvite_tx = call.reinvite_tx, None
        response = self._response(tx.request, status, call, sdp)
        tx.respond(response, now)
        if status < 300:
            self._start_ok_retransmit(call, response, tx.request.cseq.seq, now)

    # ------------------------------------------------ internals

    def _respond_invite(self, call: _Call, status: int, sdp: bytes, now: float, reason: str = "") -> None:
        tx = call.invite_tx
        if not isinstance(tx, ServerTransaction):
            return
        response = self._response(tx.request, status, call, sdp, reason)
        tx.respond(response, now)
        if 200 <= status < 300:
            self._start_ok_retransmit(call, response, tx.request.cseq.seq, now)

    def _ok_timers(self, call: _Call, now: float) -> None:
        if call.ok_deadline is not None and now >= call.ok_deadline:
            call.ok_next = call.ok_deadline = None
            call.ok_wire = None
            self._send_bye(call, now)
            self._end(call, None if call.bye_pending else "no-ack")
            return
        if call.ok_next is not None and now >= call.ok_next and call.ok_wire is not None:
            self._out.append((call.ok_wire, call.dest))
            call.ok_interval = min(call.ok_interval * 2, self.config.timers.t2)
            call.ok_next = now + call.ok_interval

    def _on_request(self, request: Request, addr: Addr, now: float) -> None:
        key = server_key(request)
        existing = self._server.get(key)
        if existing is not None and (request.method != "ACK" or existing.state is TxState.COMPLETED):
            existing.receive(request, now)  # retransmission, or the ACK of a non-2xx final response
            return
        method = request.method
        if method == "ACK":
            self._on_ack(request)
            return
        if not self._admit(addr, now):
            return
        if not self._room_for_server_tx():
            self._overloaded(request, addr)
            return
        if method == "CANCEL":
            self._on_cancel(request, addr, now)
            return
        to_tag = request.to.tag
        if to_tag is not None:
            self._in_dialog(request, addr, now)
            return
        if method == "INVITE":
            self._new_call(request, addr, now)
        elif method == "OPTIONS":
            self._reply(request, addr, now, 200)
        elif method in ALLOW:
            self._reply(request, addr, now, 481)
        else:
            self._reply(request, addr, now, 405)

    def _new_call(self, request: Request, addr: Addr, now: float) -> None:
        if sum(1 for c in self.calls.values() if c.state is not SipCallState.ENDED) >= self.config.max_calls:
            self._overloaded(request, addr)
            return
        pending = sum(1 for c in self.calls.values() if c.role == "uas" and c.pending)
        if pending >= self.config.max_pending_invites:
            self._count(Drop.PENDING_INVITES)
            self._overloaded(request, addr)
            return
        if request.call_id in self.calls:
            self._reply(request, addr, now, 482, reason="Loop Detected")
            return
        if request.body and request.content_type != "application/sdp":
            self._reply(request, addr, now, 415)
            return
        contacts = request.contacts
        if len(contacts) != 1:
            self._reply(request, addr, now, 400, reason="INVITE needs exactly one Contact")
            return
        local = NameAddr(request.to.uri, request.to.display, {})
        remote = request.from_
        dialog = Dialog(
            request.call_id,
            new_tag(),
            remote.tag,
            local,
            NameAddr(remote.uri, remote.display, {}),
            secrets.randbelow(2**20) + 1,
            request.cseq.seq,
            contacts[0].uri,
            list(request.record_route),
        )
        call = _Call(request.call_id, "uas", dialog, addr, invite=request)
        call.invite_tx = self._server_tx(request, addr, now)
        self.calls[call.call_id] = call
        self._events.append(IncomingCall(call.call_id, remote, _sdp_of(request), addr))

    def _on_ack(self, request: Request) -> None:
        call = self.calls.get(request.call_id)
        if call is None or call.dialog.local_tag != request.to.tag or call.ok_seq != request.cseq.seq:
            self._count(Drop.STRAY_ACK)
            return
        first = call.state is SipCallState.ANSWERED
        call.ok_wire = None
        call.ok_seq = None
        call.ok_next = call.ok_deadline = None
        if call.bye_pending:
            self._send_bye(call, self._now)
            self._end(call, None)
        elif first:
            call.move(SipCallState.CONFIRMED)
            call.dialog.confirmed = True
            self._events.append(CallConfirmed(call.call_id, _sdp_of(request)))

    def _on_cancel(self, request: Request, addr: Addr, now: float) -> None:
        branch, sent_by, _ = server_key(request)
        invite_tx = self._server.get((branch, sent_by, "INVITE"))
        if invite_tx is None:
            self._reply(request, addr, now, 481)
            return
        call = self.calls.get(invite_tx.request.call_id)  # the INVITE's call, found by its transaction
        if call is not None and call.invite_tx is not invite_tx:
            call = None
        self._reply(request, addr, now, 200, call)
        if call is not None and call.role == "uas" and call.pending:
            invite_tx.respond(self._response(invite_tx.request, 487, call), now)
            self._end(call, "cancelled")

    def _in_dialog(self, request: Request, addr: Addr, now: float) -> None:
        call = self.calls.get(request.call_id)
        dialog = call.dialog if call else None
        if (
            call is None
            or dialog is None
            or call.state is SipCallState.ENDED
            or dialog.local_tag != request.to.tag
            or dialog.remote_tag != request.from_.tag
        ):
            self._reply(request, addr, now, 481)
            return
        seq = request.cseq.seq
        if dialog.remote_seq is not None and seq <= dialog.remote_seq:
            self._reply(request, addr, now, 500, call, reason="CSeq out of order")
            return
        dialog.remote_seq = seq
        method = request.method
        if method == "BYE":
            self._reply(request, addr, now, 200, call)
            self._end(call, "bye")
        elif method == "INVITE":
            if call.reinvite_out is not None or call.reinvite_tx is not None or call.ok_wire is not None:
                self._reply(request, addr, now, 491, call)
                return
            if request.contacts:
                dialog.remote_target = request.contacts[0].uri
            tx = self._server_tx(request, addr, now)
            call.reinvite_tx = tx
            self._events.append(ReInviteReceived(call.call_id, _sdp_of(request)))
        elif method == "OPTIONS":
            self._reply(request, addr, now, 200, call)
        else:
            self._reply(request, addr, now, 405, call)
