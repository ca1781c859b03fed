"""SIP header fields (RFC 3261 §7.3, §20): canonical names, the ordered Headers list, Via and CSeq values."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from zcall.sip.errors import ParseReason, SipParseError, ascii_number
from zcall.sip.uri import is_token, parse_header_params, split_host_port

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
        raise SipParseError(f"bad Via {text[:60]!r}", kind=ParseReason.VIA)
    pm = _VIA_PROTO.match(m.group(1))
    if not pm:
        raise SipParseError("bad Via protocol", kind=ParseReason.VIA)
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
    parts = re.split(r"[ \t]+", text.strip(" \t"))  # SIP's LWS, not every Unicode space
    seq = ascii_number(parts[0], 10) if len(parts) == 2 and is_token(parts[1]) else None
    if seq is None:
        raise SipParseError(f"bad CSeq {text[:40]!r}", kind=ParseReason.CSEQ)
    if seq > MAX_CSEQ:
        raise SipParseError("CSeq number too large", kind=ParseReason.CSEQ)
    return CSeq(seq, parts[1])
