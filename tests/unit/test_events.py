"""The JSON event contract: field names are pinned here, because scripts and tests rely on them."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zcall import events

PINNED = {
    "ready": ["event", "name", "zid", "sip_uri"],
    "peer": ["event", "action", "name", "zid", "address", "port"],
    "call": ["event", "id", "state", "direction", "peer", "uri", "address", "port"],
    "alert": ["event", "id", "kind", "message"],
    "stats": ["event", "id", "sent", "received", "lost", "jitter_ms", "rtt_ms", "jitter_buffer_ms", "mos"],
    "registered": ["event", "server", "expires"],
    "registration_failed": ["event", "reason"],
    "ended": ["event", "id", "reason", "duration_s", "cause"],
    "error": ["event", "message"],
}

SAMPLES: list[events.Event] = [
    events.Ready(name="desk-a", zid="00" * 12, sip_uri="sip:desk-a@10.0.0.1:5060"),
    events.Peer(action="up", name="desk-b", zid="11" * 12, address="10.0.0.2", port=5060),
    events.Call(
        id="c1", state="incoming", direction="in", peer="desk-b", uri="sip:zcall@10.0.0.2:5060",
        address="10.0.0.2", port=5060,
    ),
    events.Alert(id="c1", alert="cache_mismatch", message="the peer's retained secret differs"),
    events.Stats(
        id="c1", sent=50, received=49, lost=1, jitter_ms=2.5, rtt_ms=1.2, jitter_buffer_ms=40.0, mos=4.3
    ),
    events.Registered(server="sips:pbx.example.org", expires=3600),
    events.RegistrationFailed(reason="unknown CA"),
    events.Ended(id="c1", reason="hangup", duration_s=12.5),
    events.Error(message="boom"),
]


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.kind)
def test_field_names_are_the_contract(event: events.Event) -> None:
    line = event.to_json()
    assert "\n" not in line
    assert list(json.loads(line)) == PINNED[event.kind]


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.kind)
def test_round_trip(event: events.Event) -> None:
    assert events.decode(event.to_json()) == event


def test_secure_zrtp_carries_only_zrtp_fields() -> None:
    event = events.Secure(
        id="c1", method="zrtp", srtp_profile="AES_CM_128_HMAC_SHA1_80", sas="ybnd", sas_type="B32",
        sas_words=("ybnd",), hash="S256", cipher="AES1", auth="HS80", key_agreement="X255",
        peer_zid="22" * 12, cache="new", verified=False,
    )
    data = json.loads(event.to_json())
    assert list(data) == [
        "event", "id", "method", "srtp_profile", "sas", "sas_type", "sas_words", "hash", "cipher", "auth",
        "key_agreement", "peer_zid", "cache", "verified",
    ]
    assert data["sas_words"] == ["ybnd"]
    assert data["verified"] is False
    assert events.decode(event.to_json()) == event


def test_secure_dtls_carries_only_dtls_fields() -> None:
    event = events.Secure(
        id="c2", method="dtls-srtp", srtp_profile="AEAD_AES_128_GCM", fingerprint_ok=True
    )
    data = json.loads(event.to_json())
    assert data == {
        "event": "secure", "id": "c2", "method": "dtls-srtp", "srtp_profile": "AEAD_AES_128_GCM",
        "fingerprint_ok": True,
    }


@pytest.mark.parametrize(
    "line",
    [
        "", "[]", "{}", "{", '{"event":"nope"}', '{"event":"error"}',
        '{"event":"error","message":"x","extra":1}',
    ],
)
def test_bad_lines_are_refused(line: str) -> None:
    with pytest.raises(events.EventDecodeError):
        events.decode(line)


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=200)
    | st.builds(json.dumps, st.dictionaries(st.text(max_size=10), st.text(max_size=10)))
)
def test_fuzz_decode(line: str) -> None:
    try:
        events.decode(line)
    except events.EventDecodeError:
        pass


def test_secure_on_the_server_path_says_whether_it_has_words() -> None:
    with_words = events.Secure(
        id="c3", method="dtls-srtp", srtp_profile="AEAD_AES_128_GCM", sas="a b", sas_type="B256",
        sas_words=("a", "b"), hash="S256", key_agreement="X255", peer_zid="22" * 12, cache="match",
        verified=True, fingerprint_ok=True, verifiable=True,
    )  # fmt: skip
    without = events.Secure(
        id="c4", method="dtls-srtp", srtp_profile="AEAD_AES_128_GCM", fingerprint_ok=True, verifiable=False
    )
    assert json.loads(with_words.to_json())["verifiable"] is True
    assert json.loads(without.to_json()) == {
        "event": "secure", "id": "c4", "method": "dtls-srtp", "srtp_profile": "AEAD_AES_128_GCM",
        "fingerprint_ok": True, "verifiable": False,
    }  # fmt: skip
    for event in (with_words, without):
        assert events.decode(event.to_json()) == event
