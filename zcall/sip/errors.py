"""Parse errors shared by the SIP, SDP and digest parsers."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zcall.sip.message import Request


class SipParseError(ValueError):
    """Malformed input. `status` is the response to send (None: drop silently, nobody to answer).

    `reply_to` holds the salvaged request headers (Via, From, To, Call-ID, CSeq) to build that response;
    `unsupported` lists the option tags for a 420's Unsupported header.
    """

    def __init__(
        self,
        reason: str,
        status: int | None = 400,
        *,
        reply_to: Request | None = None,
        unsupported: tuple[str, ...] = (),
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.reply_to = reply_to
        self.unsupported = unsupported
