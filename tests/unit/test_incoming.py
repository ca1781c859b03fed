"""Whether an incoming call is taken, and answered by itself: the policy without a phone."""

from __future__ import annotations

import pytest

from zcall.config import AutoAnswer
from zcall.incoming import Refuse, Take, take_or_refuse
from zcall.sip import offeranswer

BOB = bytes.fromhex("b0" * 12)
ZRTP_AUDIO = offeranswer.LocalAudio(host="10.0.0.2", port=4000, zrtp_hash="1.10 " + "ab" * 32)
OFFER = offeranswer.make_offer(ZRTP_AUDIO, "1", 1)
FINGERPRINT = "sha-256 " + ":".join(["AB"] * 32)
DTLS_AUDIO = offeranswer.LocalAudio(host="10.0.0.2", port=4000, mode="dtls", fingerprint=FINGERPRINT)
DTLS_OFFER = offeranswer.make_offer(DTLS_AUDIO, "1", 1)


def test_a_zrtp_offer_is_taken_and_rings() -> None:
    decision = take_or_refuse(OFFER.serialize(), False, BOB, AutoAnswer.OFF, [BOB])
    assert isinstance(decision, Take) and not decision.dtls and not decision.auto_answer
    assert decision.expected_zid == BOB


def test_a_dtls_offer_is_keyed_with_dtls() -> None:
    decision = take_or_refuse(DTLS_OFFER.serialize(), False, None, AutoAnswer.OFF, [])
    assert isinstance(decision, Take) and decision.dtls


def test_busy_and_bad_offers_are_refused() -> None:
    assert take_or_refuse(OFFER.serialize(), True, None, AutoAnswer.ALL, []) == Refuse(486)
    refused = take_or_refuse(b"v=0\r\nnonsense", False, None, AutoAnswer.ALL, [])
    assert isinstance(refused, Refuse) and refused.status in (400, 488)


@pytest.mark.parametrize(
    ("mode", "caller", "verified", "answered"),
    [
        (AutoAnswer.OFF, BOB, [BOB], False),
        (AutoAnswer.ALL, None, [], True),
        (AutoAnswer.VERIFIED, BOB, [BOB], True),
        (AutoAnswer.VERIFIED, BOB, [], False),  # known address, but nobody compared its words
        (AutoAnswer.VERIFIED, None, [BOB], False),  # an address discovery does not know
    ],
)
def test_auto_answer(mode: AutoAnswer, caller: bytes | None, verified: list[bytes], answered: bool) -> None:
    decision = take_or_refuse(OFFER.serialize(), False, caller, mode, verified)
    assert isinstance(decision, Take) and decision.auto_answer is answered
    assert decision.needs_verified is (mode is AutoAnswer.VERIFIED)
