"""ICE attributes in SDP (RFC 8839): candidates we can use are read, the rest skipped with a counted reason;
our own description round-trips through an offer and is answered only to a peer that offers ICE."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zcall.sip import offeranswer, sdp
from zcall.sip.icesdp import (
    MAX_CANDIDATES,
    Candidate,
    CandidateError,
    IceDescription,
    Skip,
    parse_candidate,
    read_ice,
)

UFRAG, PWD = "abcd", "0123456789abcdefghij+/"
HOST = Candidate("1", 1, "udp", 2130706431, "10.0.0.5", 40000, "host")
RELAY = Candidate("3", 1, "udp", 16777215, "203.0.113.7", 50000, "relay", "198.51.100.2", 40002)


def test_candidates_parse_and_print() -> None:
    assert parse_candidate(HOST.to_sdp()) == HOST
    assert parse_candidate(RELAY.to_sdp()) == RELAY
    # What browsers and Linphone add (generation, network-id) is accepted and ignored.
    line = "842163049 1 UDP 1677729535 198.51.100.9 61665 typ srflx raddr 10.0.0.9 rport 61665 generation 0"
    expected = Candidate("842163049", 1, "udp", 1677729535, "198.51.100.9", 61665, "srflx", "10.0.0.9", 61665)
    assert parse_candidate(line) == expected


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("1 1 tcp 2130706431 10.0.0.5 9 typ host tcptype active", Skip.TRANSPORT),
        ("1 2 udp 2130706431 10.0.0.5 40001 typ host", Skip.COMPONENT),
        ("1 1 udp 2130706431 abcd-1234.local 40000 typ host", Skip.ADDRESS),
        ("1 1 udp 2130706431 10.0.0.5 40000 typ magic", Skip.TYPE),
        ("1 1 udp 2130706431 10.0.0.5 40000 type host", Skip.MALFORMED),
        ("1 1 udp 2130706431 10.0.0.5 70000 typ host", Skip.MALFORMED),
        ("1 1 udp 99999999999 10.0.0.5 4000 typ host", Skip.MALFORMED),
        ("1 1 udp 1 10.0.0.5 0 typ host", Skip.MALFORMED),
        ("f!o 1 udp 1 10.0.0.5 1 typ host", Skip.MALFORMED),
        ("1 1 udp 1 10.0.0.5 1 typ host raddr", Skip.MALFORMED),
        ("", Skip.MALFORMED),
    ],
)
def test_unusable_candidates_say_why(line: str, reason: Skip) -> None:
    with pytest.raises(CandidateError) as info:
        parse_candidate(line)
    assert info.value.reason is reason


def _offer(*extra: str) -> bytes:
    lines = ["v=0", "o=- 1 1 IN IP4 10.0.0.5", "s=-", "c=IN IP4 10.0.0.5", "t=0 0",
             "m=audio 40000 UDP/TLS/RTP/SAVPF 111", "a=rtpmap:111 opus/48000/2", "a=rtcp-mux",
             "a=setup:actpass",
             "a=fingerprint:sha-256 " + ":".join(["AB"] * 32), *extra]  # fmt: skip
    return ("\r\n".join(lines) + "\r\n").encode()


def test_ice_is_read_from_an_offer_with_counted_skips() -> None:
    body = _offer(f"a=ice-ufrag:{UFRAG}", f"a=ice-pwd:{PWD}", f"a=candidate:{HOST.to_sdp()}",
                  "a=candidate:2 1 tcp 1 10.0.0.5 9 typ host", "a=candidate:garbage",
                  f"a=candidate:{RELAY.to_sdp()}")
    ice = offeranswer.audio_params(sdp.parse(body)).ice
    assert ice is not None and ice.ufrag == UFRAG and ice.pwd == PWD and not ice.lite
    assert ice.candidates == (HOST, RELAY)
    assert dict(ice.skipped) == {Skip.TRANSPORT: 1, Skip.MALFORMED: 1}


def test_too_many_candidates_are_cut() -> None:
    lines = [f"a=candidate:{i} 1 udp {i + 1} 10.0.0.5 {1000 + i} typ host" for i in range(MAX_CANDIDATES + 5)]
    ice = offeranswer.audio_params(sdp.parse(_offer(f"a=ice-ufrag:{UFRAG}", f"a=ice-pwd:{PWD}", *lines))).ice
    assert ice is not None and len(ice.candidates) == MAX_CANDIDATES and ice.skipped[Skip.TOO_MANY] == 5


@pytest.mark.parametrize("creds", [
    (), ("a=ice-ufrag:abc", f"a=ice-pwd:{PWD}"), (f"a=ice-ufrag:{UFRAG}",),
    (f"a=ice-ufrag:{UFRAG}", "a=ice-pwd:short"), ("a=ice-ufrag:ab cd", f"a=ice-pwd:{PWD}"),
])  # fmt: skip
def test_a_peer_without_usable_credentials_has_no_ice(creds: tuple[str, ...]) -> None:
    assert offeranswer.audio_params(sdp.parse(_offer(*creds, f"a=candidate:{HOST.to_sdp()}"))).ice is None


def test_our_ice_goes_in_the_offer_and_only_answers_ice() -> None:
    ours = IceDescription("wxyz", "zyxwvutsrqponmlkjihgfe", (HOST, RELAY))
    fingerprint = "sha-256 " + ":".join(["CD"] * 32)
    local = offeranswer.LocalAudio(
        host="203.0.113.7", port=50000, mode="dtls", fingerprint=fingerprint, ice=ours
    )
    offer = offeranswer.make_offer(local, "1", 1)
    params = offeranswer.audio_params(sdp.parse(offer.serialize()))
    assert params.ice == ours and (params.host, params.port) == ("203.0.113.7", 50000) and params.rtcp_mux
    assert b"a=end-of-candidates" in offer.serialize()
    ice_offer = sdp.parse(_offer(f"a=ice-ufrag:{UFRAG}", f"a=ice-pwd:{PWD}"))
    with_ice = offeranswer.answer(ice_offer, local, "1", 1)
    assert offeranswer.audio_params(with_ice.serialize() and sdp.parse(with_ice.serialize())).ice == ours
    without = offeranswer.answer(sdp.parse(_offer()), local, "1", 1)
    assert b"ice-ufrag" not in without.serialize() and b"candidate" not in without.serialize()


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_candidate_lines_parse_or_fail_with_a_reason(text: str) -> None:
    try:
        candidate = parse_candidate(text)
    except CandidateError as exc:
        assert exc.reason in set(Skip)
    else:
        assert parse_candidate(candidate.to_sdp()) == candidate


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80), max_size=30))
def test_fuzz_ice_attributes_never_break_the_sdp(values: list[str]) -> None:
    attributes: list[tuple[str, str | None]] = [("ice-ufrag", UFRAG), ("ice-pwd", PWD)]
    attributes += [("candidate", value) for value in values]
    ice = read_ice(attributes, [])
    assert ice is not None and len(ice.candidates) <= MAX_CANDIDATES
    assert len(ice.candidates) + sum(ice.skipped.values()) == len(values)
