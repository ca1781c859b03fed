"""SIP messages (RFC 3261 §7, §20): strict parse with size limits, and serialize.

parse() returns a Request or Response, or raises SipParseError whose `status` says which response to send
(400/413/414/416/420/505) or None when the message must be dropped (no usable Via, or it is a response).
Headers are kept in order as (canonical name, value) pairs; compact forms are expanded, folded lines joined,
and comma-separated list headers split into one entry per element.

This module is the public face; the code lives in zcall.sip.headers (header fields), zcall.sip.model
(Request, Response) and zcall.sip.parser (parse).
"""

from zcall.sip.errors import SipParseError
from zcall.sip.headers import (
    COMPACT,
    LIST_HEADERS,
    MAX_CSEQ,
    MAY_BE_EMPTY,
    SINGLE_HEADERS,
    CSeq,
    Headers,
    Via,
    canonical_name,
    parse_cseq,
    parse_via,
)
from zcall.sip.model import REASONS, Request, Response, SipMessage, build_response
from zcall.sip.parser import MAX_BODY, MAX_HEADER_BYTES, MAX_HEADERS, MAX_MESSAGE, parse

__all__ = [
    "COMPACT",
    "LIST_HEADERS",
    "MAX_BODY",
    "MAX_CSEQ",
    "MAX_HEADERS",
    "MAX_HEADER_BYTES",
    "MAX_MESSAGE",
    "MAY_BE_EMPTY",
    "REASONS",
    "SINGLE_HEADERS",
    "CSeq",
    "Headers",
    "Request",
    "Response",
    "SipMessage",
    "SipParseError",
    "Via",
    "build_response",
    "canonical_name",
    "parse",
    "parse_cseq",
    "parse_via",
]
