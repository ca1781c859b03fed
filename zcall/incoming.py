"""Whether and how an incoming call is taken: a pure function of the offer, the phone's state and its trust.

It decides only; the phone carries the decision out (a SIP refusal, or a call core for the new call).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from zcall.config import AutoAnswer
from zcall.sip import offeranswer, sdp
from zcall.sip.errors import SipParseError


@dataclass(frozen=True)
class Refuse:
    status: int
    reason: str = ""


@dataclass(frozen=True)
class Take:
    offer: sdp.SessionDescription
    dtls: bool  # the offer's profile: RTP/AVP is ZRTP, UDP/TLS/RTP/SAVP(F) DTLS-SRTP
    expected_zid: bytes | None  # the unit at the caller's address, if discovery knows exactly one
    auto_answer: bool
    needs_verified: bool  # answered unattended for a verified device: the microphone waits for proof


def take_or_refuse(
    offer_sdp: bytes,
    busy: bool,
    caller_zid: bytes | None,
    auto_answer: AutoAnswer,
    verified_zids: Iterable[bytes],
) -> Take | Refuse:
    """auto_answer "all" answers anyone; "verified" a caller at the address of a discovered unit whose ZID
    the trust list has verified (ZRTP then has to meet that ZID, or identity_mismatch mutes)."""
    try:
        offer = sdp.parse(offer_sdp)
        params = offeranswer.audio_params(offer)
    except SipParseError as exc:
        return Refuse(exc.status or 488, exc.reason)
    if busy:
        return Refuse(486)  # one call at a time
    unattended = auto_answer is AutoAnswer.ALL or (
        auto_answer is AutoAnswer.VERIFIED and caller_zid is not None and caller_zid in set(verified_zids)
    )
    needs_verified = auto_answer is AutoAnswer.VERIFIED
    return Take(offer, "TLS" in params.proto, caller_zid, unattended, needs_verified)
