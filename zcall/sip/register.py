"""One registration binding (RFC 3261 §10): REGISTER, digest retry on 401/407, refresh before expiry.

Sans-I/O helper owned by the UserAgent: it builds requests and reads responses; the UA runs the transactions.
"""

from __future__ import annotations

import secrets

from zcall.net import Addr
from zcall.sip.digest import Challenge, DigestClient
from zcall.sip.errors import ascii_number
from zcall.sip.events import Registered, RegistrationFailed
from zcall.sip.headers import CSeq, Headers
from zcall.sip.model import Request, Response
from zcall.sip.transaction import new_branch
from zcall.sip.uri import NameAddr, SipUri, parse_name_addr

MIN_REFRESH = 5.0


class Registration:
    def __init__(
        self,
        *,
        registrar: SipUri,
        aor: SipUri,
        contact: str,
        via_sent_by: str,
        transport: str,
        dest: Addr,
        expires: int,
        credentials: DigestClient | None,
    ) -> None:
        self.registrar = registrar
        self.aor = aor
        self.contact = contact
        self.via_sent_by = via_sent_by
        self.transport = transport
        self.dest = dest
        self.expires = expires
        self.credentials = credentials
        self.call_id = secrets.token_hex(12)
        self.tag = secrets.token_hex(6)
        self.token = self.call_id
        self.seq = 0
        self.refresh_at: float | None = None
        self._challenge: Challenge | None = None

    def request(self, expires: int | None = None) -> Request:
        """The next REGISTER (same Call-ID, rising CSeq, the latest credentials)."""
        if expires is not None:
            self.expires = expires
        self.seq += 1
        headers = Headers()
        headers.add("Via", f"SIP/2.0/{self.transport} {self.via_sent_by};branch={new_branch()};rport")
        headers.add("Max-Forwards", "70")
        headers.add("From", str(NameAddr(self.aor, None, {"tag": self.tag})))
        headers.add("To", str(NameAddr(self.aor)))
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", str(CSeq(self.seq, "REGISTER")))
        headers.add("Contact", self.contact)
        headers.add("Expires", str(self.expires))
        if self._challenge is not None and self.credentials is not None:
            # Computed afresh for every REGISTER: the nonce count goes up, the cnonce is new (RFC 7616 §3.4).
            value = self.credentials.header_value(self._challenge, method="REGISTER", uri=str(self.registrar))
            headers.add(self._challenge.header_name, value)
        return Request("REGISTER", self.registrar, headers)

    def on_response(self, response: Response, now: float) -> Request | Registered | RegistrationFailed | None:
        """A final response: the REGISTER to send next (digest retry), or the outcome."""
        status = response.status
        if status < 200:
            return None
        if status in (401, 407) and self.credentials is not None and self.transport == "TLS":
            challenge = self.credentials.choose(response, learn_realm=True)  # credentials only over TLS
            if challenge is not None:
                self._challenge = challenge
                return self.request()
        if 200 <= status < 300:
            if self.credentials is not None:
                self.credentials.succeeded(response)
            granted = self._granted(response)
            self.refresh_at = None if self.expires == 0 else now + max(MIN_REFRESH, granted * 0.8)
            return Registered(self.token, granted if self.expires else 0)
        self.refresh_at = None
        return RegistrationFailed(self.token, status, response.reason)

    def _granted(self, response: Response) -> int:
        """The expiry the registrar gave our binding: its Contact's expires, else Expires, else ours."""
        ours = parse_name_addr(self.contact).uri
        for contact in response.contacts:
            granted = ascii_number(contact.params.get("expires") or "", 10)
            if granted is not None and contact.uri.same_as(ours):
                return min(granted, self.expires or granted)  # never longer than asked (RFC 3261 §10.2.1)
        granted = ascii_number(response.headers.get("Expires") or "", 10)
        if granted is not None:
            return min(granted, self.expires or granted)
        return self.expires

