"""The SIP message model (RFC 3261 §7): requests and responses with typed header accessors, and serialize."""

from __future__ import annotations

from abc import ABC, abstractmethod

from zcall.sip.errors import ParseReason, SipParseError
from zcall.sip.headers import CSeq, Headers, Via, parse_cseq, parse_via
from zcall.sip.uri import NameAddr, SipUri, parse_name_addr

REASONS = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued", 183: "Session Progress",
    200: "OK", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 407: "Proxy Authentication Required", 408: "Request Timeout",
    413: "Request Entity Too Large", 414: "Request-URI Too Long", 415: "Unsupported Media Type",
    416: "Unsupported URI Scheme", 420: "Bad Extension", 480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist", 482: "Loop Detected", 483: "Too Many Hops", 486: "Busy Here",
    487: "Request Terminated", 488: "Not Acceptable Here", 491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented", 503: "Service Unavailable", 505: "Version Not Supported", 603: "Decline",
}  # fmt: skip


class SipMessage(ABC):
    """Common part of requests and responses: headers, body, typed accessors (validated by parse())."""

    def __init__(self, headers: Headers | None = None, body: bytes = b"") -> None:
        self.headers = headers if headers is not None else Headers()
        self.body = body

    @property
    def vias(self) -> list[Via]:
        return [parse_via(v) for v in self.headers.get_all("Via")]

    @property
    def top_via(self) -> Via:
        value = self.headers.get("Via")
        if value is None:
            raise SipParseError("no Via", None, kind=ParseReason.MISSING)
        return parse_via(value)

    @property
    def call_id(self) -> str:
        return self._required("Call-ID")

    @property
    def cseq(self) -> CSeq:
        return parse_cseq(self._required("CSeq"))

    @property
    def from_(self) -> NameAddr:
        return parse_name_addr(self._required("From"))

    @property
    def to(self) -> NameAddr:
        return parse_name_addr(self._required("To"))

    @property
    def contacts(self) -> list[NameAddr]:
        return [parse_name_addr(v) for v in self.headers.get_all("Contact") if v.strip() != "*"]

    @property
    def record_route(self) -> list[NameAddr]:
        return [parse_name_addr(v) for v in self.headers.get_all("Record-Route")]

    @property
    def routes(self) -> list[NameAddr]:
        return [parse_name_addr(v) for v in self.headers.get_all("Route")]

    @property
    def content_type(self) -> str | None:
        value = self.headers.get("Content-Type")
        return value.split(";")[0].strip().lower() if value else None

    def _required(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None:
            raise SipParseError(f"missing {name}", kind=ParseReason.MISSING)
        return value

    @abstractmethod
    def start_line(self) -> str:
        """The request line or the status line, without CRLF."""

    def serialize(self) -> bytes:
        lines = [self.start_line()]
        for name, value in self.headers:
            if name != "Content-Length":
                lines.append(f"{name}: {value}")
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


class Request(SipMessage):
    def __init__(self, method: str, uri: SipUri, headers: Headers | None = None, body: bytes = b"") -> None:
        super().__init__(headers, body)
        self.method = method
        self.uri = uri

    def start_line(self) -> str:
        return f"{self.method} {self.uri} SIP/2.0"

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri}>"


class Response(SipMessage):
    def __init__(
        self, status: int, reason: str = "", headers: Headers | None = None, body: bytes = b""
    ) -> None:
        super().__init__(headers, body)
        self.status = status
        self.reason = reason or REASONS.get(status, "Unknown")

    def start_line(self) -> str:
        return f"SIP/2.0 {self.status} {self.reason}"

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"


def build_response(request: Request, status: int, reason: str = "", *, to_tag: str | None = None) -> Response:
    """A response copying Via, From, To (+ tag), Call-ID and CSeq from the request (RFC 3261 §8.2.6.2)."""
    headers = Headers()
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        for value in request.headers.get_all(name):
            if name == "To" and to_tag is not None and status != 100:
                try:
                    if request.to.tag is None:
                        value = str(request.to.with_tag(to_tag))
                except SipParseError:
                    pass
            headers.add(name, value)
    if status == 100 and (ts := request.headers.get("Timestamp")):
        headers.add("Timestamp", ts)
    return Response(status, reason, headers)
