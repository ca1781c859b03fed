"""SIP messages (RFC 3261 §7, §20): strict parse with size limits.

parse() returns a Request or Response, or raises SipParseError whose `status` says which response to send
(400/413/414/416/420/505) or None when the message must be dropped (no usable Via, or it is a response); when
there is an answer to send, the error is a MalformedRequest carrying the salvaged request to build it from.
Headers are kept in order as (canonical name, value) pairs; compact forms are expanded, folded lines joined,
and comma-separated list headers split into one entry per element (zcall.sip.headers).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from zcall.sip.errors import ParseReason, SipParseError, ascii_number
from zcall.sip.headers import (
    LIST_HEADERS,
    MAX_CSEQ,
    MAY_BE_EMPTY,
    SINGLE_HEADERS,
    Headers,
    canonical_name,
    parse_cseq,
    parse_via,
)
from zcall.sip.model import Request, Response
from zcall.sip.uri import MAX_URI, SipUri, is_token, parse_name_addr, parse_uri, split_outside_quotes

MAX_MESSAGE = 65535
MAX_HEADER_BYTES = 16384
MAX_HEADERS = 128
MAX_BODY = 32768

# re.ASCII: \d is 0-9 only (numbers on the wire are ASCII; int() would take other scripts' digits).
_RESPONSE_LINE = re.compile(r"SIP/(\d{1,3})\.(\d{1,3}) (\d{3}) ([^\x00-\x08\x0a-\x1f\x7f]*)\Z", re.I | re.A)
_VERSION = re.compile(r"SIP/(\d{1,3})\.(\d{1,3})\Z", re.IGNORECASE | re.ASCII)
_WORD = r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+"
_CALL_ID = re.compile(rf"{_WORD}(?:@{_WORD})?\Z")
_VALUE_BAD = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _split_lines(head: str) -> tuple[str, list[tuple[str, str]]]:
    lines = head.split("\r\n")
    start = lines[0]
    raw: list[list[str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            if not raw:
                raise SipParseError("continuation line before any header", kind=ParseReason.HEADER)
            raw[-1][1] = (raw[-1][1] + " " + line.strip()).strip()
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if not colon or not is_token(name):
            raise SipParseError(f"malformed header line {line[:40]!r}", kind=ParseReason.HEADER)
        raw.append([name, value.strip()])
    out: list[tuple[str, str]] = []
    for name, value in raw:
        canon = canonical_name(name)
        if _VALUE_BAD.search(value):
            raise SipParseError(f"control character in {canon}", kind=ParseReason.ENCODING)
        if canon in MAY_BE_EMPTY and value == "":
            out.append((canon, value))  # e.g. "Supported:" with no option tags (baresip sends it)
        elif canon in LIST_HEADERS and not (canon == "Contact" and value == "*"):
            elements = [v.strip() for v in split_outside_quotes(value, ",")]
            if any(not v for v in elements):
                raise SipParseError(f"empty element in {canon}", kind=ParseReason.HEADER)
            out.extend((canon, v) for v in elements)
        else:
            out.append((canon, value))
        if len(out) > MAX_HEADERS:
            raise SipParseError("too many headers", kind=ParseReason.TOO_LARGE)
    return start, out


class MalformedRequest(SipParseError):
    """A broken request that still deserves an answer: `request` holds the salvaged headers (Via, From, To,
    Call-ID, CSeq) to build the `status` response from."""

    status: int

    def __init__(
        self,
        reason: str,
        status: int,
        request: Request,
        *,
        kind: ParseReason | None = None,
        unsupported: tuple[str, ...] = (),
    ) -> None:
        super().__init__(reason, status, kind=kind, unsupported=unsupported)
        self.request = request


def parse(
    data: bytes, *, stream: bool = False, supported: frozenset[str] = frozenset()
) -> Request | Response:
    """Parse one message. `stream`: it came framed off TCP/TLS, so Content-Length is mandatory.

    Raises SipParseError and nothing else, whatever the bytes.
    """
    try:
        return _parse(data, stream, supported)
    except SipParseError as exc:
        error = exc
    except (ValueError, LookupError, ArithmeticError, UnicodeError, RecursionError) as exc:
        # A gap in the checks above: still the parser's own error, counted apart so that fuzzing finds it.
        error = SipParseError(f"unexpected {type(exc).__name__}", kind=ParseReason.UNEXPECTED)
    if error.status is None:
        raise error
    request = _salvage(data)
    if request is None:
        error.status = None
        raise error
    raise MalformedRequest(
        error.reason, error.status, request, kind=error.kind, unsupported=error.unsupported
    ) from error


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
        raise SipParseError("empty message (keep-alive)", None, kind=ParseReason.EMPTY)
    end = data.find(b"\r\n\r\n", 0, MAX_HEADER_BYTES + 4)
    if end < 0:
        if len(data) > MAX_HEADER_BYTES:
            raise SipParseError("header section too large", None, kind=ParseReason.TOO_LARGE)
        raise SipParseError("no blank line after headers", kind=ParseReason.HEADER)
    if len(data) > MAX_MESSAGE:
        raise SipParseError("message too large", 413, kind=ParseReason.TOO_LARGE)
    try:
        head = data[:end].decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError("header section is not UTF-8", kind=ParseReason.ENCODING) from None
    if "\n" in head.replace("\r\n", "") or "\r" in head.replace("\r\n", ""):
        raise SipParseError("bare CR or LF in headers", kind=ParseReason.ENCODING)
    body = data[end + 4 :]
    start, items = _split_lines(head)
    headers = Headers(items)

    message: Request | Response
    if start[:4].upper() == "SIP/":
        m = _RESPONSE_LINE.match(start)
        if not m or (m.group(1), m.group(2)) != ("2", "0"):
            raise SipParseError("bad status line", None, kind=ParseReason.START_LINE)
        status = int(m.group(3))
        if not 100 <= status <= 699:
            raise SipParseError("status code out of range", None, kind=ParseReason.START_LINE)
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
            raise SipParseError(
                f"unsupported extension {missing[0]}", 420, kind=ParseReason.UNSUPPORTED, unsupported=missing
            )
    return message


def _parse_request_line(start: str, headers: Headers) -> Request:
    parts = start.split(" ")
    if len(parts) != 3:
        raise SipParseError("request line must be 'METHOD URI SIP/2.0'", kind=ParseReason.START_LINE)
    method, uri_text, version = parts
    if not is_token(method):
        raise SipParseError("bad method", kind=ParseReason.START_LINE)
    vm = _VERSION.match(version)
    if not vm:
        raise SipParseError("bad SIP version", kind=ParseReason.VERSION)
    if (vm.group(1), vm.group(2)) != ("2", "0"):
        raise SipParseError(f"unsupported version {version[:16]}", 505, kind=ParseReason.VERSION)
    if len(uri_text) > MAX_URI:
        raise SipParseError("Request-URI too long", 414, kind=ParseReason.URI)
    scheme = uri_text.split(":", 1)[0].lower()
    if ":" in uri_text and scheme not in ("sip", "sips") and re.match(r"[a-z][a-z0-9+\-.]*\Z", scheme):
        raise SipParseError(f"unsupported URI scheme {scheme[:16]}", 416, kind=ParseReason.URI)
    uri = parse_uri(uri_text)
    if uri.headers:
        raise SipParseError("Request-URI must not carry headers", kind=ParseReason.URI)
    return Request(method, uri, headers)


def _check_headers(message: Request | Response, headers: Headers) -> None:
    vias = headers.get_all("Via")
    if not vias:
        raise SipParseError("no Via", None, kind=ParseReason.MISSING)
    try:
        message.top_via  # noqa: B018 - validates where a reply would go
    except SipParseError as exc:
        raise SipParseError(exc.reason, None, kind=exc.kind) from None
    message.vias  # noqa: B018
    for name in ("From", "To", "Call-ID", "CSeq"):
        if headers.get(name) is None:
            raise SipParseError(f"missing {name}", kind=ParseReason.MISSING)
    for name in SINGLE_HEADERS:
        if len(headers.get_all(name)) > 1:
            raise SipParseError(f"more than one {name}", kind=ParseReason.DUPLICATE)
    if not _CALL_ID.match(message.call_id):
        raise SipParseError("bad Call-ID", kind=ParseReason.CALL_ID)
    cseq = message.cseq
    if isinstance(message, Request) and cseq.method != message.method:
        raise SipParseError("CSeq method does not match the request method", kind=ParseReason.CSEQ)
    message.from_  # noqa: B018
    message.to  # noqa: B018
    contacts = headers.get_all("Contact")
    if "*" in (c.strip() for c in contacts) and len(contacts) > 1:
        raise SipParseError("'*' Contact mixed with addresses", kind=ParseReason.ADDRESS)
    message.contacts  # noqa: B018
    message.record_route  # noqa: B018
    message.routes  # noqa: B018
    for name, limit in (("Max-Forwards", 255), ("Expires", MAX_CSEQ)):
        value = headers.get(name)
        if value is not None and ((number := ascii_number(value, 10)) is None or number > limit):
            raise SipParseError(f"bad {name}", kind=ParseReason.NUMBER)
    content_type = headers.get("Content-Type")
    if content_type is not None and not re.match(r"[\w\-.+!%*`'~]+/[\w\-.+!%*`'~]+\s*(;.*)?\Z", content_type):
        raise SipParseError("bad Content-Type", kind=ParseReason.HEADER)


def _body(headers: Headers, body: bytes, stream: bool) -> bytes:
    value = headers.get("Content-Length")
    if value is None:
        if stream:
            raise SipParseError("Content-Length is mandatory on streams", kind=ParseReason.MISSING)
        length = len(body)
    else:
        number = ascii_number(value, 10)
        if number is None:
            raise SipParseError("bad Content-Length", kind=ParseReason.NUMBER)
        length = number
    if length > MAX_BODY:
        raise SipParseError("body too large", 413, kind=ParseReason.TOO_LARGE)
    if len(body) < length:
        raise SipParseError("body shorter than Content-Length", kind=ParseReason.BODY)
    if stream and len(body) > length:
        raise SipParseError("data after the body on a stream", kind=ParseReason.BODY)
    # On datagrams, octets after Content-Length are discarded (RFC 3261 §18.3).
    return body[:length]
