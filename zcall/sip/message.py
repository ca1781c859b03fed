"""SIP messages (RFC 3261 §7, §20): strict parse with size limits, and serialize.

parse() returns a Request or Response, or raises SipParseError whose `status` says which response to send
(400/413/414/416/420/505) or None when the message must be dropped (no usable Via, or it is a response).
Headers are kept in order as (canonical name, value) pairs; compact forms are expanded, folded lines joined,
and comma-separated list headers split into one entry per element.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from zcall.sip.errors import SipParseError
from zcall.sip.uri import (
    MAX_URI,
    NameAddr,
    SipUri,
    is_token,
    parse_header_params,
    parse_name_addr,
    parse_uri,
    split_host_port,
    split_outside_quotes,
)

__all__ = [
    "MAX_BODY",
    "MAX_HEADERS",
    "MAX_HEADER_BYTES",
    "MAX_MESSAGE",
    "CSeq",
    "Headers",
    "Request",
    "Response",
    "SipParseError",
    "Via",
    "build_response",
    "parse",
]

MAX_MESSAGE = 65535
MAX_HEADER_BYTES = 16384
MAX_HEADERS = 128
MAX_BODY = 32768
MAX_CSEQ = 2**31 - 1

COMPACT = {
    "i": "Call-ID", "m": "Contact", "e": "Content-Encoding", "l": "Content-Length", "c": "Content-Type",
    "f": "From", "s": "Subject", "k": "Supported", "t": "To", "v": "Via", "r": "Refer-To", "o": "Event",
    "u": "Allow-Events", "x": "Session-Expires", "b": "Referred-By", "a": "Accept-Contact",
    "j": "Reject-Contact", "d": "Request-Disposition", "y": "Identity",
}  # fmt: skip
_CANONICAL = {
    name.lower(): name
    for name in (
        *COMPACT.values(), "CSeq", "Max-Forwards", "Record-Route", "Route", "Allow", "Require",
        "Proxy-Require", "Unsupported", "Accept", "Accept-Encoding", "Accept-Language", "User-Agent",
        "Server", "Expires", "WWW-Authenticate", "Authorization", "Proxy-Authenticate",
        "Proxy-Authorization", "Authentication-Info", "Date", "Timestamp", "Warning", "Reason",
        "Min-Expires", "Retry-After", "Organization", "Priority", "MIME-Version", "Content-Disposition",
        "Content-Language", "Alert-Info", "Call-Info", "Error-Info", "In-Reply-To", "Reply-To",
    )
}  # fmt: skip
# Headers whose value is a comma-separated list (RFC 3261 §7.3.1); auth headers are NOT in this set.
LIST_HEADERS = frozenset(
    {
        "Via", "Contact", "Route", "Record-Route", "Allow", "Supported", "Require", "Proxy-Require",
        "Unsupported", "Accept", "Accept-Encoding", "Accept-Language", "Content-Encoding", "Allow-Events",
        "Content-Language", "In-Reply-To", "Alert-Info", "Call-Info", "Error-Info",
    }
)  # fmt: skip
# List headers whose grammar allows an empty value (RFC 3261 §25.1).
MAY_BE_EMPTY = frozenset({"Supported", "Allow", "Accept", "Accept-Encoding", "Accept-Language"})
SINGLE_HEADERS = frozenset(
    {"From", "To", "Call-ID", "CSeq", "Content-Length", "Max-Forwards", "Content-Type", "Expires"}
)
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

_RESPONSE_LINE = re.compile(r"SIP/(\d{1,3})\.(\d{1,3}) (\d{3}) ([^\x00-\x08\x0a-\x1f\x7f]*)\Z", re.IGNORECASE)
_VERSION = re.compile(r"SIP/(\d{1,3})\.(\d{1,3})\Z", re.IGNORECASE)
_WORD = r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+"
_CALL_ID = re.compile(rf"{_WORD}(?:@{_WORD})?\Z")
_VALUE_BAD = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_VIA = re.compile(r"(SIP[ \t]*/[ \t]*2\.0[ \t]*/[ \t]*[A-Za-z0-9\-.!%*_+`'~]+)[ \t]+(.*)\Z", re.I | re.S)
_VIA_PROTO = re.compile(r"SIP[ \t]*/[ \t]*2\.0[ \t]*/[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)\Z", re.IGNORECASE)


def canonical_name(name: str) -> str:
    lower = name.lower()
    if lower in COMPACT:
        return COMPACT[lower]
    return _CANONICAL.get(lower, name)


def _key(name: str) -> str:
    return canonical_name(name).lower()


class Headers:
    """Ordered header list; names compared case-insensitively via their canonical form."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        # (lower-cased canonical name, canonical name, value): the key spares a lower() per lookup.
        self._items: list[tuple[str, str, str]] = []
        for name, value in items:
            self.add(name, value)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return ((n, v) for _, n, v in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def get(self, name: str) -> str | None:
        key = _key(name)
        for k, _, v in self._items:
            if k == key:
                return v
        return None

    def get_all(self, name: str) -> list[str]:
        key = _key(name)
        return [v for k, _, v in self._items if k == key]

    def add(self, name: str, value: str) -> None:
        canon = canonical_name(name)
        self._items.append((canon.lower(), canon, value))

    def set(self, name: str, value: str) -> None:
        """Replace all values of `name` with one, keeping the first one's position."""
        canon = canonical_name(name)
        key = canon.lower()
        out: list[tuple[str, str, str]] = []
        placed = False
        for item in self._items:
            if item[0] == key:
                if not placed:
                    out.append((key, canon, value))
                    placed = True
            else:
                out.append(item)
        if not placed:
            out.append((key, canon, value))
        self._items = out

    def replace_first(self, name: str, value: str) -> None:
        """Replace the first value of `name` (e.g. the top Via), keeping the others."""
        key = _key(name)
        for i, (k, n, _) in enumerate(self._items):
            if k == key:
                self._items[i] = (k, n, value)
                return
        self.add(name, value)

    def remove(self, name: str) -> None:
        key = _key(name)
        self._items = [item for item in self._items if item[0] != key]

    def copy(self) -> Headers:
        return Headers(self)


@dataclass(frozen=True)
class Via:
    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        tail = "".join(f";{k}" if v is None else f";{k}={v}" for k, v in self.params.items())
        return f"SIP/2.0/{self.transport} {self.host}{port}{tail}"


def parse_via(text: str) -> Via:
    # "SIP / 2.0 / UDP host" with LWS around slashes is legal; rebuild protocol part up to the host.
    m = _VIA.match(text.strip())
    if not m:
        raise SipParseError(f"bad Via {text[:60]!r}")
    pm = _VIA_PROTO.match(m.group(1))
    if not pm:
        raise SipParseError("bad Via protocol")
    sent_by, _, params = m.group(2).partition(";")
    host, port = split_host_port(sent_by.strip())
    return Via(pm.group(1).upper(), host.lower(), port, parse_header_params(params))


@dataclass(frozen=True)
class CSeq:
    seq: int
    method: str

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


def parse_cseq(text: str) -> CSeq:
    parts = text.split()
    if len(parts) != 2 or not parts[0].isdigit() or len(parts[0]) > 10 or not is_token(parts[1]):
        raise SipParseError(f"bad CSeq {text[:40]!r}")
    seq = int(parts[0])
    if seq > MAX_CSEQ:
        raise SipParseError("CSeq number too large")
    return CSeq(seq, parts[1])


class SipMessage:
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
            raise SipParseError("no Via", None)
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
            raise SipParseError(f"missing {name}")
        return value

    def start_line(self) -> str:
        raise NotImplementedError

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


# ---------------------------------------------------------------- parsing


def _split_lines(head: str) -> tuple[str, list[tuple[str, str]]]:
    lines = head.split("\r\n")
    start = lines[0]
    raw: list[list[str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            if not raw:
                raise SipParseError("continuation line before any header")
            raw[-1][1] = (raw[-1][1] + " " + line.strip()).strip()
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if not colon or not is_token(name):
            raise SipParseError(f"malformed header line {line[:40]!r}")
        raw.append([name, value.strip()])
    out: list[tuple[str, str]] = []
    for name, value in raw:
        canon = canonical_name(name)
        if _VALUE_BAD.search(value):
            raise SipParseError(f"control character in {canon}")
        if canon in MAY_BE_EMPTY and value == "":
            out.append((canon, value))  # e.g. "Supported:" with no option tags (baresip sends it)
        elif canon in LIST_HEADERS and not (canon == "Contact" and value == "*"):
            elements = [v.strip() for v in split_outside_quotes(value, ",")]
            if any(not v for v in elements):
                raise SipParseError(f"empty element in {canon}")
            out.extend((canon, v) for v in elements)
        else:
            out.append((canon, value))
        if len(out) > MAX_HEADERS:
            raise SipParseError("too many headers")
    return start, out


def parse(
    data: bytes, *, stream: bool = False, supported: frozenset[str] = frozenset()
) -> Request | Response:
    """Parse one message. `stream`: it came framed off TCP/TLS, so Content-Length is mandatory."""
    try:
        return _parse(data, stream, supported)
    except SipParseError as exc:
        if exc.status is not None and exc.reply_to is None:
            exc.reply_to = _salvage(data)
            if exc.reply_to is None:
                exc.status = None
        raise


def _salvage(data: bytes) -> Request | None:
    """Pull out what a 4xx needs; None means drop.

    The Vias (up to the first broken one) say where the answer goes; the client matches it by the top Via's
    branch and the CSeq method. A From, To or Call-ID too broken to copy is replaced by a placeholder so that
    the answer itself stays well-formed.
    """
    try:
        head = data[:MAX_HEADER_BYTES].split(b"\r\n\r\n", 1)[0].lstrip(b"\r\n").decode("utf-8", "replace")
        lines = head.split("\r\n")
        method = lines[0].split(" ")[0]
        if not method or method.upper().startswith("SIP/"):
            return None
        raw: dict[str, str] = {}
        vias: list[str] = []
        for line in lines[1 : MAX_HEADERS + 1]:
            name, colon, value = line.partition(":")
            canon = canonical_name(name.rstrip())
            if not colon or _VALUE_BAD.search(value):
                continue
            if canon == "Via":
                vias += [v.strip() for v in split_outside_quotes(value, ",")]
            elif canon in ("From", "To", "Call-ID", "CSeq"):
                raw.setdefault(canon, value.strip())
        headers = Headers()
        for via in vias:
            try:
                parse_via(via)
            except SipParseError:
                break  # keep the Vias we can route back through, up to the first broken one
            headers.add("Via", via)
        if not headers.get_all("Via"):
            return None
        if parse_via(headers.get_all("Via")[0]).transport not in ("UDP", "TCP", "TLS", "SCTP", "WS", "WSS"):
            return None
        for name in ("From", "To"):
            ok = _parses(parse_name_addr, raw.get(name))
            headers.add(name, raw[name] if ok else "<sip:invalid.invalid>")
        call_id = raw.get("Call-ID", "")
        headers.add("Call-ID", call_id if _CALL_ID.match(call_id) else "invalid")
        if _parses(parse_cseq, raw.get("CSeq")):
            headers.add("CSeq", raw["CSeq"])
        elif is_token(method):
            headers.add("CSeq", f"0 {method}")
        else:
            return None
        return Request(method if is_token(method) else "INVALID", SipUri("sip", "invalid"), headers)
    except (SipParseError, ValueError, IndexError):
        return None


def _parses(parser: Callable[[str], object], value: str | None) -> bool:
    if value is None:
        return False
    try:
        parser(value)
    except SipParseError:
        return False
    return True


def _parse(data: bytes, stream: bool, supported: frozenset[str]) -> Request | Response:
    data = data.lstrip(b"\r\n")
    if not data:
        raise SipParseError("empty message (keep-alive)", None)
    end = data.find(b"\r\n\r\n", 0, MAX_HEADER_BYTES + 4)
    if end < 0:
        if len(data) > MAX_HEADER_BYTES:
            raise SipParseError("header section too large", None)
        raise SipParseError("no blank line after headers")
    if len(data) > MAX_MESSAGE:
        raise SipParseError("message too large", 413)
    try:
        head = data[:end].decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError("header section is not UTF-8") from None
    if "\n" in head.replace("\r\n", "") or "\r" in head.replace("\r\n", ""):
        raise SipParseError("bare CR or LF in headers")
    body = data[end + 4 :]
    start, items = _split_lines(head)
    headers = Headers(items)

    message: Request | Response
    if start[:4].upper() == "SIP/":
        m = _RESPONSE_LINE.match(start)
        if not m or (m.group(1), m.group(2)) != ("2", "0"):
            raise SipParseError("bad status line", None)
        status = int(m.group(3))
        if not 100 <= status <= 699:
            raise SipParseError("status code out of range", None)
        message = Response(status, m.group(4), headers)
    else:
        message = _parse_request_line(start, headers)

    try:
        _check_headers(message, headers)
        message.body = _body(headers, body, stream)
    except SipParseError as exc:
        if isinstance(message, Response):
            exc.status = None
        raise
    if isinstance(message, Request) and message.method not in ("ACK", "CANCEL"):
        required = {t.lower() for t in headers.get_all("Require")}
        missing = tuple(sorted(required - supported))
        if missing:
            raise SipParseError(f"unsupported extension {missing[0]}", 420, unsupported=missing)
    return message


def _parse_request_line(start: str, headers: Headers) -> Request:
    parts = start.split(" ")
    if len(parts) != 3:
        raise SipParseError("request line must be 'METHOD URI SIP/2.0'")
    method, uri_text, version = parts
    if not is_token(method):
        raise SipParseError("bad method")
    vm = _VERSION.match(version)
    if not vm:
        raise SipParseError("bad SIP version")
    if (vm.group(1), vm.group(2)) != ("2", "0"):
        raise SipParseError(f"unsupported version {version[:16]}", 505)
    if len(uri_text) > MAX_URI:
        raise SipParseError("Request-URI too long", 414)
    scheme = uri_text.split(":", 1)[0].lower()
    if ":" in uri_text and scheme not in ("sip", "sips") and re.match(r"[a-z][a-z0-9+\-.]*\Z", scheme):
        raise SipParseError(f"unsupported URI scheme {scheme[:16]}", 416)
    uri = parse_uri(uri_text)
    if uri.headers:
        raise SipParseError("Request-URI must not carry headers")
    return Request(method, uri, headers)


def _check_headers(message: Request | Response, headers: Headers) -> None:
    vias = headers.get_all("Via")
    if not vias:
        raise SipParseError("no Via", None)
    try:
        message.top_via  # noqa: B018 - validates where a reply would go
    except SipParseError as exc:
        raise SipParseError(exc.reason, None) from None
    message.vias  # noqa: B018
    for name in ("From", "To", "Call-ID", "CSeq"):
        if headers.get(name) is None:
            raise SipParseError(f"missing {name}")
    for name in SINGLE_HEADERS:
        if len(headers.get_all(name)) > 1:
            raise SipParseError(f"more than one {name}")
    if not _CALL_ID.match(message.call_id):
        raise SipParseError("bad Call-ID")
    cseq = message.cseq
    if isinstance(message, Request) and cseq.method != message.method:
        raise SipParseError("CSeq method does not match the request method")
    message.from_  # noqa: B018
    message.to  # noqa: B018
    contacts = headers.get_all("Contact")
    if "*" in (c.strip() for c in contacts) and len(contacts) > 1:
        raise SipParseError("'*' Contact mixed with addresses")
    message.contacts  # noqa: B018
    message.record_route  # noqa: B018
    message.routes  # noqa: B018
    for name, limit in (("Max-Forwards", 255), ("Expires", MAX_CSEQ)):
        value = headers.get(name)
        if value is not None and (not value.isdigit() or len(value) > 10 or int(value) > limit):
            raise SipParseError(f"bad {name}")
    content_type = headers.get("Content-Type")
    if content_type is not None and not re.match(r"[\w\-.+!%*`'~]+/[\w\-.+!%*`'~]+\s*(;.*)?\Z", content_type):
        raise SipParseError("bad Content-Type")


def _body(headers: Headers, body: bytes, stream: bool) -> bytes:
    value = headers.get("Content-Length")
    if value is None:
        if stream:
            raise SipParseError("Content-Length is mandatory on streams")
        length = len(body)
    else:
        if not value.isdigit() or len(value) > 10:
            raise SipParseError("bad Content-Length")
        length = int(value)
    if length > MAX_BODY:
        raise SipParseError("body too large", 413)
    if len(body) < length:
        raise SipParseError("body shorter than Content-Length")
    if stream and len(body) > length:
        raise SipParseError("data after the body on a stream")
    # On datagrams, octets after Content-Length are discarded (RFC 3261 §18.3).
    return body[:length]
