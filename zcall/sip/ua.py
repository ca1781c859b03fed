"""The SIP user agent core (RFC 3261 §8, §13–§15), sans-I/O: transactions, dialogs and registrations together.

UserAgent is driven like every zcall core: receive(data, addr, now) / datagrams_to_send(now) / get_timer() /
handle_timer(now) / next_event(). Calls are named by their Call-ID. The core speaks INVITE/180/200/ACK,
re-INVITE, BYE, CANCEL→487, OPTIONS and REGISTER, retries with digest credentials on 401/407, and answers
what it cannot do (481, 405, 415, 491, 500, 4xx for malformed requests) by itself. SDP is carried as bytes:
the call layer parses it and rejects with 488 when it cannot accept it.
"""

from __future__ import annotations

import secrets

from zcall.net import Addr
from zcall.sip.dialog import Dialog, new_tag, via_value
from zcall.sip.errors import SipParseError
from zcall.sip.events import (
    CallAnswered,
    CallFailed,
    CallProgress,
    OptionsResult,
    Registered,
    RegistrationFailed,
    ReInviteResult,
    UaEvent,
)
from zcall.sip.headers import CSeq, Headers, Via
from zcall.sip.model import Request, Response, build_response
from zcall.sip.parser import MalformedRequest, parse
from zcall.sip.register import Registration
from zcall.sip.transaction import ClientTransaction, TxResponse, TxTimeout, client_key
from zcall.sip.ua_core import Drop, SipCallState, _Call, _sdp_of
from zcall.sip.uas import _UasSide
from zcall.sip.uri import NameAddr, SipUri, parse_uri

__all__ = ["UserAgent"]


class UserAgent(_UasSide):
    """The whole UA: the sans-I/O surface and the UAC side here; the UAS side comes from zcall.sip.uas."""

    # ------------------------------------------------ sans-I/O surface

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Addr]]:
        self._now = max(self._now, now)
        self._collect(self._now)
        out, self._out = self._out, []
        return out

    def next_event(self) -> UaEvent | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        txs = (*self._client.values(), *self._server.values())
        times = [t for tx in txs if (t := tx.get_timer()) is not None]
        for call in self.calls.values():
            times += [t for t in (call.ok_next, call.ok_deadline) if t is not None]
            if call.ended_at is not None:
                times.append(call.ended_at + self._linger)  # when it is forgotten
        times += [r.refresh_at for r in self.registrations.values() if r.refresh_at is not None]
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        self._now = max(self._now, now)
        for ctx in list(self._client.values()):
            ctx.handle_timer(now)
        for stx in list(self._server.values()):
            stx.handle_timer(now)
        for reg in self.registrations.values():
            if reg.refresh_at is not None and now >= reg.refresh_at:
                reg.refresh_at = None
                self._send_register(reg, reg.request(), now)
        for call in list(self.calls.values()):
            self._ok_timers(call, now)
            ended_at = call.ended_at if call.state is SipCallState.ENDED else None
            if ended_at is not None and now >= ended_at + self._linger:
                del self.calls[call.call_id]
        self._collect(now)

    def receive(self, data: bytes, addr: Addr, now: float, *, stream: bool = False) -> None:
        self._now = max(self._now, now)
        try:
            message = parse(data, stream=stream, supported=self.config.supported)
        except MalformedRequest as exc:
            self._count(exc.kind)
            if exc.request.method != "ACK" and self._admit(addr, now):
                reply = build_response(exc.request, exc.status, _reason_text(exc), to_tag=new_tag())
                if exc.unsupported:
                    reply.headers.add("Unsupported", ", ".join(exc.unsupported))
                self._out.append((reply.serialize(), addr))
            return
        except SipParseError as exc:
            self._count(exc.kind)
            return
        if isinstance(message, Response):
            self._on_response(message, now)
        else:
            _stamp_via(message, addr)
            self._on_request(message, addr, now)
        self._collect(now)

    # ------------------------------------------------ commands (UAC side)

    def invite(self, target: SipUri | str, sdp: bytes, now: float, *, dest: Addr | None = None) -> str:
        self._now = max(self._now, now)
        uri = parse_uri(target) if isinstance(target, str) else target
        call_id = f"{secrets.token_hex(10)}@{self.config.host}"
        local = NameAddr(self.config.identity, self.config.display)
        seq = secrets.randbelow(2**20) + 1
        dialog = Dialog(call_id, new_tag(), None, local, NameAddr(uri), seq, None, uri)
        call = _Call(call_id, "uac", dialog, dest or dialog.destination(("0.0.0.0", 5060)))
        request = dialog.request("INVITE", self.config, sdp, seq=dialog.local_seq)
        call.invite = request
        call.invite_tx = self._start_client(request, call.dest, now)
        self.calls[call_id] = call
        return call_id

    def cancel(self, call_id: str, now: float) -> None:
        """Cancel our pending INVITE; sent once a provisional response has arrived (RFC 3261 §9.1)."""
        self._now = max(self._now, now)
        call = self.calls.get(call_id)
        if call is None or call.role != "uac" or not call.pending or call.cancelled:
            return
        if call.state is SipCallState.INIT:
            call.cancel_pending = True
            return
        self._send_cancel(call, now)

    def bye(self, call_id: str, now: float) -> None:
        self._now = max(self._now, now)
        call = self.calls.get(call_id)
        if call is None or call.state not in (SipCallState.ANSWERED, SipCallState.CONFIRMED):
            return
        if call.role == "uas" and call.state is SipCallState.ANSWERED:
            # RFC 3261 §15: the callee waits for the ACK of its 2xx (or gives up on it) before its BYE.
            call.bye_pending = True
            return
        self._send_bye(call, now)
        self._end(call, None)

    def hangup(self, call_id: str, now: float) -> None:
        """Whatever ends the call from where it stands: CANCEL, 486/603 or BYE."""
        self._now = max(self._now, now)
        call = self.calls.get(call_id)
        if call is None:
            return
        if call.role == "uac" and call.pending:
            self.cancel(call_id, now)
        elif call.role == "uas" and call.pending:
            self.reject(call_id, 603, now)
        else:
            self.bye(call_id, now)

    def reinvite(self, call_id: str, sdp: bytes, now: float) -> bool:
        """Send a re-INVITE with a new offer (hold/resume). False if the dialog is not ready for one."""
        self._now = max(self._now, now)
        call = self.calls.get(call_id)
        if call is None or call.state is not SipCallState.CONFIRMED or call.reinvite_out or call.reinvite_tx:
            return False
        request = call.dialog.request("INVITE", self.config, sdp)
        dest = call.dialog.destination(call.dest, literal_only=True)
        call.reinvite_out = self._start_client(request, dest, now)
        return True

    def options(self, target: SipUri | str, now: float, *, dest: Addr | None = None) -> str:
        self._now = max(self._now, now)
        uri = parse_uri(target) if isinstance(target, str) else target
        local = NameAddr(self.config.identity, self.config.display)
        call_id = f"{secrets.token_hex(10)}@{self.config.host}"
        dialog = Dialog(call_id, new_tag(), None, local, NameAddr(uri), 1, None, uri)
        request = dialog.request("OPTIONS", self.config, seq=1)
        request.headers.add("Accept", "application/sdp")
        tx = self._start_client(request, dest or dialog.destination(("0.0.0.0", 5060)), now)
        self._options[tx.key] = dialog.call_id
        return dialog.call_id

    def register(
        self, registrar: SipUri | str, now: float, *, expires: int = 600, dest: Addr | None = None
    ) -> str:
        """Register our Contact for user@registrar-host; refreshed before it expires. Returns a token."""
        self._now = max(self._now, now)
        uri = parse_uri(registrar) if isinstance(registrar, str) else registrar
        cfg = self.config
        reg = Registration(
            registrar=uri,
            aor=SipUri(uri.scheme, uri.host, cfg.user),
            contact=f"<{cfg.uri}>",
            via_sent_by=f"{cfg.host}:{cfg.port}",
            transport=cfg.transport,
            dest=dest or Dialog.target_addr(uri),
            expires=expires,
            credentials=self.credentials,
        )
        self.registrations[reg.token] = reg
        self._send_register(reg, reg.request(), now)
        return reg.token

    def unregister(self, token: str, now: float) -> None:
        self._now = max(self._now, now)
        reg = self.registrations.get(token)
        if reg is not None:
            reg.refresh_at = None
            self._send_register(reg, reg.request(expires=0), now)

    def _send_register(self, reg: Registration, request: Request, now: float) -> None:
        tx = self._start_client(request, reg.dest, now)
        self._reg_tx[tx.key] = reg.token

    # ------------------------------------------------ internals: the UAC side

    def _send_cancel(self, call: _Call, now: float) -> None:
        invite = call.invite
        if invite is None:
            return
        headers = Headers()
        headers.add("Via", invite.headers.get_all("Via")[0])
        headers.add("Max-Forwards", "70")
        for name in ("From", "To", "Call-ID"):
            headers.add(name, invite.headers.get(name) or "")
        headers.add("CSeq", str(CSeq(invite.cseq.seq, "CANCEL")))
        for route in invite.headers.get_all("Route"):
            headers.add("Route", route)
        call.cancelled = True
        call.cancel_pending = False
        self._start_client(Request("CANCEL", invite.uri, headers), call.dest, now)

    def _send_ack(self, call: _Call, response: Response) -> None:
        """ACK for a 2xx: a transaction-less request in the dialog, the INVITE's CSeq (RFC 3261 §13.2.2.4)."""
        if call.ack_wire is None:
            seq = response.cseq.seq
            ack = call.dialog.request("ACK", self.config, seq=seq)
            call.ack_wire = ack.serialize()
        self._out.append((call.ack_wire, call.dialog.destination(call.dest, literal_only=True)))

    def _on_response(self, response: Response, now: float) -> None:
        key = client_key(response)
        tx = self._client.get(key)
        if tx is not None:
            tx.receive(response, now)
            return
        # A 2xx retransmission after our INVITE transaction ended: re-send the ACK (RFC 6026 / §13.2.2.4).
        call = self.calls.get(response.call_id)
        if call and response.cseq.method == "INVITE" and 200 <= response.status < 300 and call.ack_wire:
            self._out.append((call.ack_wire, call.dialog.destination(call.dest, literal_only=True)))
            return
        self._count(Drop.STRAY_RESPONSE)

    def _collect(self, now: float) -> None:
        """Move transaction output to ours and turn transaction events into UA events."""
        for key, ctx in list(self._client.items()):
            self._out += ctx.datagrams_to_send(now)
            while (ev := ctx.next_event()) is not None:
                self._client_event(ctx, ev, now)
                self._out += ctx.datagrams_to_send(now)
            if ctx.terminated:
                del self._client[key]
                self._options.pop(key, None)
                self._reg_tx.pop(key, None)
        for skey, stx in list(self._server.items()):
            self._out += stx.datagrams_to_send(now)
            while stx.next_event() is not None:
                self._count(Drop.NO_ACK)
            if stx.terminated:
                del self._server[skey]

    def _client_event(self, tx: ClientTransaction, ev: TxResponse | TxTimeout, now: float) -> None:
        method = tx.request.method
        if tx.key in self._options:
            token = self._options[tx.key]
            if isinstance(ev, TxTimeout):
                self._events.append(OptionsResult(token, 408, None))
            elif ev.response.status >= 200:
                self._events.append(OptionsResult(token, ev.response.status, ev.response))
            return
        if tx.key in self._reg_tx:
            self._registration_event(self._reg_tx[tx.key], ev, now)
            return
        call = self.calls.get(tx.request.call_id)
        if call is None or method in ("BYE", "CANCEL", "ACK"):
            return
        if tx is call.reinvite_out:
            self._reinvite_response(call, tx, ev)
        elif method == "INVITE":
            self._invite_response(call, ev, now)

    def _registration_event(self, token: str, ev: TxResponse | TxTimeout, now: float) -> None:
        reg = self.registrations.get(token)
        if reg is None:
            return
        if isinstance(ev, TxTimeout):
            reg.refresh_at = now + 60.0  # try again later; the binding may still be alive
            self._events.append(RegistrationFailed(token, 408, "Request Timeout"))
            return
        outcome = reg.on_response(ev.response, now)
        if isinstance(outcome, Request):
            self._send_register(reg, outcome, now)
        elif outcome is not None:
            self._events.append(outcome)
            if isinstance(outcome, Registered) and outcome.expires == 0:
                del self.registrations[token]

    def _reinvite_response(self, call: _Call, tx: ClientTransaction, ev: TxResponse | TxTimeout) -> None:
        if isinstance(ev, TxTimeout):
            call.reinvite_out = None
            self._events.append(ReInviteResult(call.call_id, 408, b""))
            return
        response = ev.response
        if response.status < 200:
            return
        if response.status < 300:
            ack = call.dialog.request("ACK", self.config, seq=response.cseq.seq)
            self._out.append((ack.serialize(), call.dialog.destination(call.dest, literal_only=True)))
            if response.contacts:
                call.dialog.remote_target = response.contacts[0].uri
        if call.reinvite_out is tx:
            call.reinvite_out = None
            self._events.append(ReInviteResult(call.call_id, response.status, _sdp_of(response)))

    def _invite_response(self, call: _Call, ev: TxResponse | TxTimeout, now: float) -> None:
        if isinstance(ev, TxTimeout):
            if call.pending:
                self._end(call, None)
                self._events.append(CallFailed(call.call_id, 408, "Request Timeout"))
            return
        response = ev.response
        status = response.status
        dialog = call.dialog
        if status < 200:
            if call.state is SipCallState.INIT:
                # Any provisional, 100 included, lets a CANCEL go (RFC 3261 §9.1).
                call.move(SipCallState.EARLY)
            if call.cancel_pending:
                self._send_cancel(call, now)
            if status == 100:
                return
            if response.to.tag and dialog.remote_tag is None:
                self._learn_dialog(call, response)
            self._events.append(CallProgress(call.call_id, status, response.reason, _sdp_of(response)))
        elif status < 300:
            if self.credentials is not None:
                self.credentials.succeeded(response)
            if call.pending:
                self._learn_dialog(call, response)
                dialog.confirmed = True
                call.move(SipCallState.CONFIRMED)
                self._send_ack(call, response)
                self._events.append(CallAnswered(call.call_id, _sdp_of(response)))
                if call.cancelled or call.cancel_pending:  # we hung up first: the call exists, so end it
                    call.cancel_pending = False
                    self._send_bye(call, now)
                    self._end(call, None)
            elif response.to.tag == dialog.remote_tag:
                self._send_ack(call, response)
            else:
                self._end_stray_fork(call, response, now)
        elif call.pending:
            if status in (401, 407) and not call.cancelled and self._retry_with_auth(call, response, now):
                return
            self._end(call, None)
            self._events.append(CallFailed(call.call_id, status, response.reason))

    def _retry_with_auth(self, call: _Call, response: Response, now: float) -> bool:
        """Re-send the INVITE with credentials: new branch, next CSeq, same Call-ID and tags (§22.2)."""
        invite = call.invite
        if self.credentials is None or invite is None or self.config.transport != "TLS":
            return False  # credentials only ever go over TLS
        answer = self.credentials.authorize(response, method="INVITE", uri=str(invite.uri), body=invite.body)
        if answer is None:
            return False
        call.dialog.local_seq += 1
        headers = invite.headers.copy()
        headers.set("Via", via_value(self.config))
        headers.set("CSeq", str(CSeq(call.dialog.local_seq, "INVITE")))
        headers.remove("User-Agent")
        headers.set(answer[0], answer[1])
        request = Request("INVITE", invite.uri, headers, invite.body)
        call.invite = request
        call.invite_tx = self._start_client(request, call.dest, now)
        return True

    def _end_stray_fork(self, call: _Call, response: Response, now: float) -> None:
        """A 2xx from a second fork of our INVITE: ACK it, then BYE that dialog (RFC 3261 §13.2.2.4)."""
        tag = response.to.tag
        if tag is None or tag in call.stray_tags:
            return
        if len(call.stray_tags) >= self.config.max_stray_forks:
            self._count(Drop.STRAY_FORKS)
            return
        call.stray_tags.add(tag)
        d = call.dialog
        target = response.contacts[0].uri if response.contacts else d.remote_target
        stray = Dialog(d.call_id, d.local_tag, tag, d.local, d.remote, d.local_seq, None, target,
                       list(reversed(response.record_route)))
        dest = stray.destination(call.dest, literal_only=True)
        self._out.append((stray.request("ACK", self.config, seq=response.cseq.seq).serialize(), dest))
        self._start_client(stray.request("BYE", self.config), dest, now)

    def _learn_dialog(self, call: _Call, response: Response) -> None:
        dialog = call.dialog
        dialog.remote_tag = response.to.tag
        if response.contacts:
            dialog.remote_target = response.contacts[0].uri
        dialog.route_set = list(reversed(response.record_route))


def _reason_text(error: SipParseError) -> str:
    """A fixed reason phrase naming what was wrong; nothing from the request is echoed back."""
    return f"Bad Request ({error.kind.value})" if error.status == 400 else ""


def _stamp_via(request: Request, source: Addr) -> None:
    """Record where the request really came from in its top Via (RFC 3261 §18.2.1, RFC 3581 rport)."""
    via = request.top_via
    params = dict(via.params)
    if via.host != source[0]:
        params["received"] = source[0]
    if "rport" in params:
        params["received"] = source[0]
        params["rport"] = str(source[1])
    if params != via.params:
        request.headers.replace_first("Via", str(Via(via.transport, via.host, via.port, params)))
