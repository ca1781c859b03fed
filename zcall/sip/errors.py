"""Parse errors of the SIP, SDP and digest parsers, and the closed set of reasons they are counted by."""

from __future__ import annotations

import enum
import re

from zcall.errors import ZcallError


class ParseReason(enum.Enum):
    """Why input was refused. A closed set: counters are keyed by it, never by text from the wire."""

    EMPTY = "empty"
    TOO_LARGE = "too-large"
    ENCODING = "encoding"
    START_LINE = "start-line"
    VERSION = "version"
    URI = "uri"
    HEADER = "header"
    MISSING = "missing-header"
    DUPLICATE = "duplicate-header"
    VIA = "via"
    CSEQ = "cseq"
    CALL_ID = "call-id"
    ADDRESS = "address"
    NUMBER = "number"
    BODY = "body"
    UNSUPPORTED = "unsupported"
    SDP = "sdp"
    DIGEST = "digest"
    UNEXPECTED = "unexpected"  # a parser bug caught at the boundary; the fuzzers treat it as a crash



class SipParseError(ZcallError, ValueError):
    """Malformed input. `status` is the hint for the response to send (None: drop silently, nobody to answer).

    `kind` is the counted reason; `reason` is a human-readable detail for logs, which may quote the input.
    `unsupported` lists the option tags for a 420's Unsupported header. The request to answer, when one could
    be salvaged, travels in zcall.sip.parser.MalformedRequest; this module stays a leaf with no message types.
    """

    default_kind = ParseReason.HEADER

    def __init__(
        self,
        reason: str,
        status: int | None = 400,
        *,
        kind: ParseReason | None = None,
        unsupported: tuple[str, ...] = (),
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.kind = kind if kind is not None else self.default_kind
        self.unsupported = unsupported


_DIGITS = re.compile(r"[0-9]+\Z")


def ascii_number(text: str, max_digits: int) -> int | None:
    """The value of 1..max_digits ASCII digits, or None.

    str.isdigit() and int() also take '²' or Arabic-Indic digits; a number on the wire is ASCII only.
    """
    if len(text) > max_digits or not _DIGITS.match(text):
        return None
    return int(text)
