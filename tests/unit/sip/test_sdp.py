"""SDP parse/serialize and offer/answer: Opus payload type choice, zrtp-hash, hold, DTLS attributes, 488s."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.sip.samples import DTLS_OFFER, FP, HASH, LINPHONE_OFFER
from zcall.dtls.setup import role_for
from zcall.sip import offeranswer, sdp
from zcall.sip.errors import ParseReason
from zcall.sip.offeranswer import LocalAudio, answer, audio_params, make_offer
from zcall.sip.sdp import SdpError, parse


def test_linphone_offer_round_trips_and_keeps_unknown_attributes() -> None:
    offer = sdp.parse(LINPHONE_OFFER)
    assert offer.serialize() == LINPHONE_OFFER
    audio = offer.media[0]
    assert audio.opus_payload_type() == "111"
    assert audio.attr("rtcp-xr") is None and offer.attr("rtcp-xr") is not None
    assert audio.attrs("rtcp-fb") == ["* trr-int 1000"]
    params = audio_params(offer)
    assert (params.host, params.port, params.payload_type) == ("10.20.0.2", 7078, 111)
    assert params.zrtp_hash == HASH and params.rtcp_mux and params.direction == "sendrecv"
    assert params.fmtp == {"useinbandfec": "1"}


def test_of_several_zrtp_hashes_the_one_for_our_version_is_taken() -> None:
    # RFC 6189 §8.1: a peer speaking several ZRTP versions lists one a=zrtp-hash per version; the Hello we
    # get is the 1.10 one, so checking it against another version's hash would be a false tampering alarm.
    other = "1.20 " + "ef" * 32
    both = f"a=zrtp-hash:{other}\r\na=zrtp-hash:{HASH}".encode()
    offer = LINPHONE_OFFER.replace(f"a=zrtp-hash:{HASH}".encode(), both)
    assert offer != LINPHONE_OFFER
    assert audio_params(sdp.parse(offer)).zrtp_hash == HASH


def test_answer_uses_the_offered_opus_payload_type() -> None:
    offer = sdp.parse(LINPHONE_OFFER)
    local = LocalAudio("10.20.0.1", 40000, zrtp_hash="1.10 " + "cd" * 32)
    ans = answer(offer, local, "555", 1)
    wire = ans.serialize()
    again = sdp.parse(wire)
    assert len(again.media) == 2
    assert again.media[1].port == 0  # video refused, line kept (RFC 3264 §6)
    got = audio_params(again, answer_to=offer)
    assert got.payload_type == 111 and got.proto == "RTP/AVP" and got.rtcp_mux
    assert got.fmtp == {"useinbandfec": "1"}
    assert got.zrtp_hash == "1.10 " + "cd" * 32
    assert b"a=rtpmap:111 opus/48000/2\r\n" in wire


def test_offer_is_rtp_avp_with_opus_and_zrtp_hash() -> None:
    local = LocalAudio("192.0.2.1", 4000, payload_type=97, zrtp_hash=HASH)
    offer = make_offer(local, "1", 1)
    wire = offer.serialize()
    assert b"m=audio 4000 RTP/AVP 97\r\n" in wire
    assert f"a=zrtp-hash:{HASH}\r\n".encode() in wire
    assert b"a=fmtp:97 useinbandfec=1\r\n" in wire and b"a=rtcp-mux\r\n" in wire
    assert offeranswer.bump_version(offer).origin.version == 2


def test_offer_without_opus_is_488() -> None:
    no_opus = LINPHONE_OFFER.replace(b"a=rtpmap:111 opus/48000/2\r\n", b"a=rtpmap:111 speex/16000\r\n")
    with pytest.raises(SdpError) as info:
        answer(sdp.parse(no_opus), LocalAudio("10.0.0.1", 4000), "1", 1)
    assert info.value.status == 488


def test_zrtp_answerer_refuses_dtls_profile_and_vice_versa() -> None:
    with pytest.raises(SdpError) as info:
        answer(sdp.parse(DTLS_OFFER), LocalAudio("10.0.0.1", 4000), "1", 1)
    assert info.value.status == 488
    with pytest.raises(SdpError):
        dtls = LocalAudio("10.0.0.1", 4000, mode="dtls", fingerprint=FP)
        answer(sdp.parse(LINPHONE_OFFER), dtls, "1", 1)


@pytest.mark.parametrize(
    ("offered", "ours", "expected"),
    [
        ("sendonly", "sendrecv", "recvonly"),
        ("recvonly", "sendrecv", "sendonly"),
        ("inactive", "sendrecv", "inactive"),
        ("sendrecv", "sendonly", "sendonly"),
        ("sendonly", "sendonly", "inactive"),
    ],
)
def test_hold_directions(offered: str, ours: str, expected: str) -> None:
    offer = make_offer(LocalAudio("10.0.0.2", 5000, direction=offered), "1", 2)
    ans = answer(sdp.parse(offer.serialize()), LocalAudio("10.0.0.1", 4000, direction=ours), "2", 1)
    assert audio_params(sdp.parse(ans.serialize())).direction == expected


def test_dtls_session_level_fingerprint_and_setup() -> None:
    offer = sdp.parse(DTLS_OFFER)
    params = audio_params(offer)
    assert params.fingerprints == (FP,) and params.setup == "actpass" and not params.rtcp_mux
    local = LocalAudio("10.30.0.6", 4000, mode="dtls", fingerprint="sha-256 " + ":".join(["AA"] * 32))
    ans = sdp.parse(answer(offer, local, "9", 1).serialize())
    got = audio_params(ans)
    assert got.setup == "active" and got.proto == "UDP/TLS/RTP/SAVP" and got.payload_type == 98
    no_fp = DTLS_OFFER.replace(f"a=fingerprint:{FP}\r\n".encode(), b"")
    with pytest.raises(SdpError) as info:
        answer(sdp.parse(no_fp), local, "9", 1)
    assert info.value.status == 488


def test_a_missing_setup_takes_rfc_4145_defaults_active_offer_passive_answer() -> None:
    # RFC 4145 §4 (kept by RFC 5763 §5): without a=setup an offer means active and an answer passive.
    offer = sdp.parse(DTLS_OFFER.replace(b"a=setup:actpass\r\n", b""))
    assert audio_params(offer).setup == "active"
    local = LocalAudio("10.30.0.6", 4000, mode="dtls", fingerprint="sha-256 " + ":".join(["AA"] * 32))
    ours = audio_params(sdp.parse(answer(offer, local, "9", 1).serialize()))
    assert ours.setup == "passive"  # the offerer connects: we wait for its ClientHello
    assert role_for("passive", "active", is_offerer=False) == "server"
    sent = make_offer(local, "1", 1)
    answered = answer(sdp.parse(DTLS_OFFER), local, "9", 1).serialize()
    bare_answer = answered.replace(b"a=setup:active\r\n", b"")
    theirs = audio_params(sdp.parse(bare_answer), answer_to=sent)
    assert theirs.setup == "passive"  # so we, the offerer (actpass), connect
    assert role_for("actpass", theirs.setup, is_offerer=True) == "client"


def test_lf_only_lines_are_accepted() -> None:
    assert sdp.parse(LINPHONE_OFFER.replace(b"\r\n", b"\n")).serialize() == LINPHONE_OFFER


MALFORMED_SDP: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("no version", LINPHONE_OFFER.replace(b"v=0\r\n", b"")),
    ("version 1", LINPHONE_OFFER.replace(b"v=0", b"v=1")),
    ("origin too short", LINPHONE_OFFER.replace(b"o=bob 1203 3017 IN IP4 10.20.0.2", b"o=bob 1203")),
    ("origin version not numeric", LINPHONE_OFFER.replace(b"3017", b"x")),
    ("empty session name", LINPHONE_OFFER.replace(b"s=Talk", b"s=")),
    ("no timing", LINPHONE_OFFER.replace(b"t=0 0\r\n", b"")),
    ("bad timing", LINPHONE_OFFER.replace(b"t=0 0", b"t=now")),
    ("bad connection", LINPHONE_OFFER.replace(b"c=IN IP4 10.20.0.2", b"c=IN IPX 10.20.0.2")),
    ("no connection anywhere", LINPHONE_OFFER.replace(b"c=IN IP4 10.20.0.2\r\n", b"")),
    ("line without equals", LINPHONE_OFFER + b"garbage\r\n"),
    ("upper-case type", LINPHONE_OFFER + b"A=foo\r\n"),
    ("port too big", LINPHONE_OFFER.replace(b"m=audio 7078", b"m=audio 70780")),
    ("m line too short", LINPHONE_OFFER.replace(b"m=audio 7078 RTP/AVP 111 9 0 8 101", b"m=audio 7078")),
    ("payload type over 127", LINPHONE_OFFER.replace(b"RTP/AVP 111 9", b"RTP/AVP 200 9")),
    ("bad rtpmap", LINPHONE_OFFER.replace(b"a=rtpmap:111 opus/48000/2", b"a=rtpmap:111 opus")),
    ("bad zrtp-hash", LINPHONE_OFFER.replace(HASH.encode(), b"1.10 abc")),
    ("bad fingerprint", DTLS_OFFER.replace(FP.encode(), b"sha-256 XYZ")),
    ("bad setup", DTLS_OFFER.replace(b"setup:actpass", b"setup:sideways")),
    ("two directions", DTLS_OFFER + b"a=recvonly\r\n"),
    ("direction with value", DTLS_OFFER.replace(b"a=sendrecv", b"a=sendrecv:yes")),
    ("bad attribute name", LINPHONE_OFFER + b"a=b@d:1\r\n"),
    ("control character", LINPHONE_OFFER.replace(b"s=Talk", b"s=Ta\x01lk")),
    ("not UTF-8", LINPHONE_OFFER.replace(b"s=Talk", b"s=\xff")),
    ("u= inside media", LINPHONE_OFFER + b"u=http://x\r\n"),
    ("two session c= lines", LINPHONE_OFFER.replace(b"t=0 0", b"c=IN IP4 1.2.3.4\r\nt=0 0")),
    # Numbers are ASCII digits only (str.isdigit() also takes these; int() then raises or reads them).
    ("origin version with a superscript digit", LINPHONE_OFFER.replace(b"3017", "\u00b2".encode())),
    ("origin id in Arabic-Indic digits", LINPHONE_OFFER.replace(b"1203", "\u0661\u0662".encode())),
    ("port with a superscript digit", LINPHONE_OFFER.replace(b"m=audio 7078", "m=audio 4\u00b2".encode())),
    ("port count with a superscript digit",
     LINPHONE_OFFER.replace(b"m=audio 7078", "m=audio 7078/\u00b9".encode())),
    ("payload type in Arabic-Indic digits",
     LINPHONE_OFFER.replace(b"RTP/AVP 111 9", "RTP/AVP \u0669 9".encode())),
    ("rtpmap rate in Arabic-Indic digits",
     LINPHONE_OFFER.replace(b"opus/48000/2", "opus/\u0664\u0668\u0660\u0660\u0660/2".encode())),
    ("timing in Arabic-Indic digits", LINPHONE_OFFER.replace(b"t=0 0", "t=\u0660 0".encode())),
]


@pytest.mark.parametrize(("name", "data"), MALFORMED_SDP, ids=[m[0] for m in MALFORMED_SDP])
def test_malformed_sdp_is_400(name: str, data: bytes) -> None:
    with pytest.raises(SdpError) as info:
        sdp.parse(data)
    assert info.value.status == 400, name
    assert info.value.kind is ParseReason.SDP, name  # not UNEXPECTED: a check caught it, not the boundary


@pytest.mark.parametrize(
    "fingerprints",
    [
        [],
        ["md5 " + ":".join(["AB"] * 16)],  # a hash we refuse
        ["sha-256 AB:CD"],  # well-formed, wrong length
        ["sha-1 " + ":".join(["AB"] * 32)],
    ],
    ids=["none", "md5", "short", "sha-1-with-sha-256-length"],
)
def test_dtls_without_a_usable_fingerprint_is_488_in_offers_and_answers(fingerprints: list[str]) -> None:
    bare = DTLS_OFFER.replace(f"a=fingerprint:{FP}\r\n".encode(), b"")
    data = bare + b"".join(f"a=fingerprint:{f}\r\n".encode() for f in fingerprints)
    parsed = sdp.parse(data)  # well-formed: refused as unusable, not as malformed
    local = LocalAudio("10.30.0.6", 4000, mode="dtls", fingerprint="sha-256 " + ":".join(["AA"] * 32))
    uses = (lambda: answer(parsed, local, "9", 1), lambda: audio_params(parsed, answer_to=parsed))
    for use in uses:
        with pytest.raises(SdpError) as info:
            use()
        assert info.value.status == 488


def test_size_limits_are_413() -> None:
    with pytest.raises(SdpError) as info:
        sdp.parse(LINPHONE_OFFER + b"a=x\r\n" * 4000)
    assert info.value.status == 413
    with pytest.raises(SdpError) as info:
        sdp.parse(LINPHONE_OFFER + b"m=audio 0 RTP/AVP 0\r\n" * 20)
    assert info.value.status == 413


def test_rtcp_port_offered_for_a_peer_without_mux_and_read_back() -> None:
    local = LocalAudio(host="10.0.0.1", port=40000, mode="dtls", fingerprint=FP, rtcp_port=40011)
    offer = make_offer(local, "1", 1)
    media = offer.media[0]
    assert media.attr("rtcp") == "40011" and media.has("rtcp-mux")  # mux offered, RTCP's port said anyway
    peer = LocalAudio(host="10.0.0.2", port=50000, mode="dtls", fingerprint=FP, rtcp_port=50001)
    muxed = answer(offer, peer, "2", 1).media[0]
    assert muxed.has("rtcp-mux") and not muxed.has("rtcp")
    no_mux_offer = parse(offer.serialize().replace(b"a=rtcp-mux\r\n", b""))
    plain = answer(no_mux_offer, peer, "2", 1)
    assert not plain.media[0].has("rtcp-mux") and plain.media[0].attr("rtcp") == "50001"
    params = audio_params(no_mux_offer)
    assert (params.rtcp_mux, params.rtcp_host, params.rtcp_port) == (False, "10.0.0.1", 40011)


@pytest.mark.parametrize(
    ("line", "where"),
    [(None, ("10.0.0.1", 40001)), ("9", ("10.0.0.1", 9)), ("7079 IN IP4 10.9.8.7", ("10.9.8.7", 7079))],
)
def test_rtcp_address_from_a_rtcp_or_rtp_plus_one(line: str | None, where: tuple[str, int]) -> None:
    local = LocalAudio(host="10.0.0.1", port=40000, mode="dtls", fingerprint=FP)
    text = make_offer(local, "1", 1).serialize()
    if line is not None:
        text = text.replace(b"a=rtcp-mux\r\n", f"a=rtcp:{line}\r\n".encode())
    params = audio_params(parse(text))
    assert (params.rtcp_host, params.rtcp_port) == where


@pytest.mark.parametrize("value", ["0", "65536", "²", "12 IN IP4", "12 IN IP9 1.2.3.4", "x"])
def test_malformed_rtcp_attribute_is_refused(value: str) -> None:
    local = LocalAudio(host="10.0.0.1", port=40000, mode="dtls", fingerprint=FP)
    text = make_offer(local, "1", 1).serialize().replace(b"a=rtcp-mux\r\n", f"a=rtcp:{value}\r\n".encode())
    with pytest.raises(SdpError) as caught:
        audio_params(parse(text))
    assert caught.value.status == 400


@given(st.text(max_size=80))
def test_any_rtcp_attribute_is_read_or_refused_with_an_sdp_error(value: str) -> None:
    local = LocalAudio(host="10.0.0.1", port=40000, mode="dtls", fingerprint=FP)
    line = "".join(c for c in value if c not in "\r\n")
    text = make_offer(local, "1", 1).serialize().replace(b"a=rtcp-mux\r\n", f"a=rtcp:{line}\r\n".encode())
    try:
        params = audio_params(parse(text))
    except SdpError as exc:
        assert exc.status in (400, 488)
        return
    assert 0 < params.rtcp_port < 65536 and params.rtcp_host


def test_red_is_offered_after_opus_and_answered_only_when_both_want_it() -> None:
    local = LocalAudio(host="192.0.2.1", port=4000, payload_type=111, red_payload_type=63)
    offer = make_offer(local, "1", 1)
    text = offer.serialize().decode()
    assert "m=audio 4000 RTP/AVP 111 63" in text  # Opus first: a peer without RED picks it
    assert "a=rtpmap:63 red/48000/2" in text and "a=fmtp:63 111/111" in text
    parsed = sdp.parse(offer.serialize())
    assert audio_params(parsed).red_payload_type == 63
    both = answer(parsed, LocalAudio(host="192.0.2.2", port=5000, red_payload_type=96), "2", 1)
    assert audio_params(sdp.parse(both.serialize())).red_payload_type == 63  # the offer's number
    plain = answer(parsed, LocalAudio(host="192.0.2.2", port=5000), "2", 1)
    assert audio_params(sdp.parse(plain.serialize())).red_payload_type is None
    assert "red" not in plain.serialize().decode()


def test_red_over_another_codec_is_not_taken() -> None:
    text = (b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
            b"m=audio 4000 RTP/AVP 111 63 0\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:63 red/48000/2\r\n"
            b"a=fmtp:63 111/0\r\na=rtpmap:0 PCMU/8000\r\n")
    assert audio_params(sdp.parse(text)).red_payload_type is None


def test_an_empty_zrtp_hash_reads_as_none() -> None:
    # linphonec (media_encryption=dtls) answers a DTLS-SRTP offer that carries a=zrtp-hash with an empty one.
    body = DTLS_OFFER + b"a=zrtp-hash:\r\n"
    assert audio_params(parse(body)).zrtp_hash is None


def test_a_dtls_offer_carries_our_zrtp_hash_beside_the_fingerprint() -> None:
    local = LocalAudio(host="10.0.0.1", port=4000, mode="dtls", fingerprint=FP, zrtp_hash=HASH)
    params = audio_params(parse(make_offer(local, session_id="1", version=1).serialize()))
    assert params.zrtp_hash == HASH and params.fingerprints == (FP,)
