"""ICE in SDP (RFC 8839): a=ice-ufrag, a=ice-pwd, a=ice-lite and a=candidate lines, read and written.

Reading is forgiving where it can be: a candidate line we cannot use (malformed, TCP, another component, an
mDNS name, past the limit) is skipped and counted by a fixed reason; credentials that are missing or
malformed make the stream a peer without ICE (it is then reached on its c= address). Nothing here raises
on what a peer sends.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections import Counter
from dataclasses import dataclass, field

from zcall.errors import ZcallError

MAX_CANDIDATES = 16  # per stream: more is a peer flooding our connectivity checks
_ICE_CHARS = re.compile(r"[A-Za-z0-9+/]+\Z")
_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]{1,32}\Z")
CANDIDATE_TYPES = ("host", "srflx", "prflx", "relay")


class Skip(enum.StrEnum):
    """Why a candidate line was not used (the fixed set of reasons counted)."""

    MALFORMED = "malformed"
    TRANSPORT = "not-udp"
    COMPONENT = "not-rtp-component"
    ADDRESS = "not-an-ip-address"  # mDNS names and other host names: not resolved
    TYPE = "unknown-type"
    TOO_MANY = "too-many"


@dataclass(frozen=True)
class Candidate:
    foundation: str
    component: int
    transport: str  # "udp" (lower case)
    priority: int
    host: str
    port: int
    type: str
    related_address: str | None = None
    related_port: int | None = None

    def to_sdp(self) -> str:
        """The a=candidate value (without "candidate:")."""
        text = (f"{self.foundation} {self.component} {self.transport} {self.priority} {self.host} "
                f"{self.port} typ {self.type}")  # fmt: skip
        if self.related_address is not None and self.related_port is not None:
            text += f" raddr {self.related_address} rport {self.related_port}"
        return text


class CandidateError(ZcallError, ValueError):
    def __init__(self, reason: Skip) -> None:
        super().__init__(str(reason))
        self.reason = reason


def _number(text: str, digits: int, low: int, high: int) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > digits:
        raise CandidateError(Skip.MALFORMED)
    value = int(text)
    if not low <= value <= high:
        raise CandidateError(Skip.MALFORMED)
    return value


def _ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise CandidateError(Skip.ADDRESS) from None


def parse_candidate(value: str) -> Candidate:
    """One a=candidate value; raises CandidateError with the reason it cannot be used."""
    parts = value.split(" ")
    if len(parts) < 8 or len(parts) > 40 or parts[6] != "typ" or len(parts) % 2:
        raise CandidateError(Skip.MALFORMED)
    foundation, component_text, transport, priority_text, host, port_text, _, kind = parts[:8]
    if len(foundation) > 32 or not _ICE_CHARS.match(foundation) or not _TOKEN.match(transport):
        raise CandidateError(Skip.MALFORMED)
    component = _number(component_text, 3, 1, 256)
    priority = _number(priority_text, 10, 1, 2**32 - 1)
    port = _number(port_text, 5, 0, 65535)
    if not _TOKEN.match(kind):
        raise CandidateError(Skip.MALFORMED)
    extensions = dict(zip(parts[8::2], parts[9::2], strict=True))
    if any(not _TOKEN.match(k) or len(v) > 64 or not v.isprintable() for k, v in extensions.items()):
        raise CandidateError(Skip.MALFORMED)
    if transport.lower() != "udp":
        raise CandidateError(Skip.TRANSPORT)
    if component != 1:
        raise CandidateError(Skip.COMPONENT)
    if kind not in CANDIDATE_TYPES:
        raise CandidateError(Skip.TYPE)
    address = _ip(host)
    if port == 0:
        raise CandidateError(Skip.MALFORMED)
    related, related_port = extensions.get("raddr"), extensions.get("rport")
    raddr = _ip(related) if related is not None else None
    rport = _number(related_port, 5, 0, 65535) if related_port is not None else None
    return Candidate(foundation, component, "udp", priority, address, port, kind, raddr, rport)


@dataclass(frozen=True)
class IceDescription:
    """One side's ICE for the audio stream: credentials and the candidates it gave."""

    ufrag: str
    pwd: str
    candidates: tuple[Candidate, ...]
    lite: bool = False
    skipped: Counter[str] = field(default_factory=Counter, compare=False)

    def attributes(self) -> list[tuple[str, str | None]]:
        """Media-level attributes for our SDP (all candidates at once: no trickling)."""
        lines: list[tuple[str, str | None]] = [("ice-ufrag", self.ufrag), ("ice-pwd", self.pwd)]
        lines += [("candidate", c.to_sdp()) for c in self.candidates]
        lines.append(("end-of-candidates", None))
        return lines


def valid_credentials(ufrag: str, pwd: str) -> bool:
    """RFC 8839 §5.4: ice-ufrag is 4-256 ice-chars, ice-pwd 22-256."""
    return (4 <= len(ufrag) <= 256 and 22 <= len(pwd) <= 256 and bool(_ICE_CHARS.match(ufrag))
            and bool(_ICE_CHARS.match(pwd)))  # fmt: skip


def read_ice(
    media_attributes: list[tuple[str, str | None]], session_attributes: list[tuple[str, str | None]]
) -> IceDescription | None:
    """The stream's ICE (media level first, then session level), or None for a peer without ICE (no
    credentials, or credentials that break RFC 8839's rules)."""

    def first(name: str) -> str | None:
        for attributes in (media_attributes, session_attributes):
            for key, value in attributes:
                if key == name:
                    return value or ""
        return None

    ufrag, pwd = first("ice-ufrag"), first("ice-pwd")
    if ufrag is None or pwd is None or not valid_credentials(ufrag, pwd):
        return None
    skipped: Counter[str] = Counter()
    candidates: list[Candidate] = []
    for key, value in media_attributes:
        if key != "candidate":
            continue
        if len(candidates) >= MAX_CANDIDATES:
            skipped[Skip.TOO_MANY] += 1
            continue
        try:
            candidates.append(parse_candidate(value or ""))
        except CandidateError as exc:
            skipped[exc.reason] += 1
    lite = any(key == "ice-lite" for key, _ in session_attributes)
    return IceDescription(ufrag, pwd, tuple(candidates), lite, skipped)
