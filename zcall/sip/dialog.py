"""SIP dialogs (RFC 3261 §12): dialog state and the user agent's configuration.

The UserAgent that drives dialogs lives in zcall.sip.ua and reports what happens in zcall.sip.events;
everything here is plain data.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from zcall.net import Addr, is_ip_literal
from zcall.sip.headers import CSeq, Headers
from zcall.sip.model import Request
from zcall.sip.transaction import DEFAULT_TIMERS, Timers, new_branch
from zcall.sip.uri import NameAddr, SipUri

ALLOW = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS")


@dataclass(frozen=True)
class UaConfig:
    host: str
    port: int
    transport: str = "UDP"  # UDP, TCP or TLS
    user: str = "zcall"
    display: str | None = None
    timers: Timers = DEFAULT_TIMERS
    user_agent: str = "zcall/0.1"
    supported: frozenset[str] = frozenset()
    aor: SipUri | None = None  # our address of record at a server (From of our requests); None: the contact
    # Bounds on state a flood of requests can make us keep; past them new requests get 503.
    max_calls: int = 16
    max_server_transactions: int = 256
    max_pending_invites: int = 4  # incoming INVITEs not yet answered or refused
    max_stray_forks: int = 4  # extra 2xx dialogs per INVITE that we ACK and BYE
    # New requests (and malformed ones we would answer) admitted per second, per source host and in all;
    # past them they are dropped unanswered, so a flood buys neither work nor reflected answers.
    new_requests_per_source: float = 20.0
    new_requests_source_burst: float = 100.0
    new_requests_total: float = 200.0
    new_requests_total_burst: float = 400.0

    @property
    def reliable(self) -> bool:
        return self.transport != "UDP"

    @property
    def identity(self) -> SipUri:
        """Who we say we are in From: the account's address of record, else where we can be reached."""
        return self.aor if self.aor is not None else self.uri.without_headers()

    @property
    def uri(self) -> SipUri:
        params: dict[str, str | None] = {}
        if self.transport != "UDP":
            params["transport"] = self.transport.lower()
        scheme = "sips" if self.transport == "TLS" else "sip"
        return SipUri(scheme, self.host, self.user, None, self.port, params)


def new_tag() -> str:
    return secrets.token_hex(6)


# ---------------------------------------------------------------- dialog state


@dataclass
class Dialog:
    """RFC 3261 §12 dialog state: the identifiers and what every in-dialog request needs."""

    call_id: str
    local_tag: str
    remote_tag: str | None
    local: NameAddr  # our From/To value without tag
    remote: NameAddr
    local_seq: int
    remote_seq: int | None
    remote_target: SipUri
    route_set: list[NameAddr] = field(default_factory=list)
    confirmed: bool = False

    def request(self, method: str, config: UaConfig, body: bytes = b"", seq: int | None = None) -> Request:
        if seq is None:
            self.local_seq += 1
            seq = self.local_seq
        headers = Headers()
        headers.add("Via", via_value(config))
        headers.add("Max-Forwards", "70")
        headers.add("From", str(self.local.with_tag(self.local_tag)))
        remote = self.remote.with_tag(self.remote_tag) if self.remote_tag else self.remote
        headers.add("To", str(remote))
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", str(CSeq(seq, method)))
        for route in self.route_set:
            headers.add("Route", str(route))
        if method == "INVITE":
            headers.add("Contact", f"<{config.uri}>")
            headers.add("Allow", ", ".join(ALLOW))  # RFC 3261 §13.2.1: say what may be sent to us
        if body:
            headers.add("Content-Type", "application/sdp")
        # A Contact's ?headers are not ours to send: a peer must not choose headers of our requests.
        return Request(method, self.remote_target.without_headers(), headers, body)

    def destination(self, fallback: Addr, *, literal_only: bool = False) -> Addr:
        """Loose routing: the first Route if there is one, else the remote target (RFC 3261 §12.2.1.1).

        `literal_only` (requests inside a dialog): a host name from the peer's Contact or Record-Route is not
        looked up (a blocking lookup the peer chose); the request goes where the dialog's messages came from.
        """
        uri = self.route_set[0].uri if self.route_set else self.remote_target
        if not uri.is_sip:
            return fallback
        addr = self.target_addr(uri)
        if literal_only and not is_ip_literal(addr[0]):
            return fallback
        return addr

    @staticmethod
    def target_addr(uri: SipUri) -> Addr:
        """Where to send a request for `uri`: maddr or host, then the port or its default (no DNS here)."""
        default = 5061 if uri.scheme == "sips" or uri.transport == "TLS" else 5060
        host = uri.params.get("maddr") or uri.host
        return (host.strip("[]"), uri.port or default)


def via_value(config: UaConfig) -> str:
    return f"SIP/2.0/{config.transport} {config.host}:{config.port};branch={new_branch()};rport"
