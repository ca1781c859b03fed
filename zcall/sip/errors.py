"""Parse errors shared by the SIP, SDP and digest parsers."""

from __future__ import annotations


class SipParseError(ValueError):
    """Malformed input. `status` is the hint for the response to send (None: drop silently, nobody to answer).

    `unsupported` lists the option tags for a 420's Unsupported header. The request to answer, when one could
    be salvaged, travels in zcall.sip.parser.MalformedRequest; this module stays a leaf with no message types.
    """

    def __init__(self, reason: str, status: int | None = 400, *, unsupported: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.unsupported = unsupported
