"""Two DtlsSrtpSessions in memory: handshake, keys, fingerprint checks, early first flight, limits."""

from __future__ import annotations

import time

import pytest

from tests.unit.dtls.harness import Cred, Pair, make_cred, session
from zcall.dtls import (
    DEFAULT_PROFILES,
    DtlsClosed,
    DtlsFailed,
    DtlsSecure,
    DtlsSrtpSession,
    FingerprintMismatch,
    FingerprintParseError,
)
from zcall.dtls.fingerprint import Fingerprint
from zcall.media.srtp import SrtpReceiver, SrtpSender


@pytest.fixture(scope="module")
def alice() -> Cred:
    return make_cred("alice")


@pytest.fixture(scope="module")
def bob() -> Cred:
    return make_cred("bob")


@pytest.fixture(scope="module")
def mallory() -> Cred:
    return make_cred("mallory")


def handshake(pair: Pair, now: float = 100.0) -> None:
    pair.client.start(now)
    pair.settle(now)


def rtp_packet(seq: int) -> bytes:
    header = bytes([0x80, 111]) + seq.to_bytes(2, "big") + bytes.fromhex("000004d2 0000cafe")
    return header + bytes(range(160))


@pytest.mark.parametrize("profile", DEFAULT_PROFILES)
def test_handshake_per_profile_keys_cross_match_and_feed_srtp(profile: str, alice: Cred, bob: Cred) -> None:
    pair = Pair(session("client", alice, bob, profiles=(profile,)), session("server", bob, alice))
    handshake(pair)
    (c,), (s,) = pair.events["client"], pair.events["server"]
    assert isinstance(c, DtlsSecure) and isinstance(s, DtlsSecure)
    assert c.srtp_profile == s.srtp_profile == profile
    assert c.peer_fingerprint_ok and s.peer_fingerprint_ok
    assert (c.local_key, c.local_salt) == (s.remote_key, s.remote_salt)
    assert (c.remote_key, c.remote_salt) == (s.local_key, s.local_salt)
    assert c.local_key != c.remote_key and c.local_salt != c.remote_salt
    assert pair.client.state == pair.server.state == "secure"
    assert pair.client.get_timer() is None and pair.server.get_timer() is None
    assert c.local_key.hex() not in repr(c) and str(list(c.local_key)) not in repr(c)
    # Both directions through libsrtp: our sender with our keys, the peer's receiver with its remote keys.
    for sender_side, receiver_side in ((c, s), (s, c)):
        sender = SrtpSender(sender_side.sender_keys())
        receiver = SrtpReceiver(receiver_side.receiver_keys())
        packet = rtp_packet(7)
        protected = sender.protect(packet)
        assert protected != packet
        assert receiver.unprotect(protected) == packet
        rtcp = bytes([0x80, 200, 0, 6]) + bytes.fromhex("000004d2") + bytes(20)
        assert receiver.unprotect_rtcp(sender.protect_rtcp(rtcp)) == rtcp


def test_channel_binding_is_shared_by_one_session_and_differs_across_sessions(
    alice: Cred, bob: Cred, mallory: Cred
) -> None:
    pair = Pair(session("client", alice, bob), session("server", bob, alice))
    handshake(pair)
    (c,), (s,) = pair.events["client"], pair.events["server"]
    assert isinstance(c, DtlsSecure) and isinstance(s, DtlsSecure)
    assert len(c.channel_binding) == 32 and c.channel_binding == s.channel_binding
    assert c.channel_binding not in (c.local_key, c.remote_key) and c.channel_binding.hex() not in repr(c)
    # A man in the middle terminates two DTLS sessions (its own certificate in each): two different values.
    other = Pair(session("client", alice, mallory), session("server", mallory, alice))
    handshake(other)
    (oc,) = other.events["client"]
    assert isinstance(oc, DtlsSecure) and oc.channel_binding != c.channel_binding


def test_server_preference_picks_the_profile(alice: Cred, bob: Cred) -> None:
    client = session("client", alice, bob, profiles=("AES_CM_128_HMAC_SHA1_32", "AEAD_AES_256_GCM"))
    server = session("server", bob, alice, profiles=("AEAD_AES_256_GCM", "AES_CM_128_HMAC_SHA1_32"))
    pair = Pair(client, server)
    handshake(pair)
    c, s = pair.secure()
    assert c.srtp_profile == s.srtp_profile == "AEAD_AES_256_GCM"


def test_no_common_profile_fails_without_keys(alice: Cred, bob: Cred) -> None:
    pair = Pair(session("client", alice, bob, profiles=("AES_CM_128_HMAC_SHA1_80",)),
                session("server", bob, alice, profiles=("AEAD_AES_128_GCM",)))
    handshake(pair)
    assert pair.events["client"] == [DtlsFailed("no common SRTP profile")]
    assert all(not isinstance(e, DtlsSecure) for e in pair.events["server"])
    assert pair.server.state in ("failed", "closed")


def test_rsa_server_certificate_and_sha384_fingerprint(alice: Cred) -> None:
    rsa_bob = make_cred("bob-rsa", kind="rsa")
    fp384 = str(Fingerprint.of(rsa_bob.certificate, "sha-384"))
    client = DtlsSrtpSession("client", alice.certificate, alice.private_key, fp384)
    pair = Pair(client, session("server", rsa_bob, alice))
    handshake(pair)
    assert isinstance(pair.events["client"][0], DtlsSecure)
    assert isinstance(pair.events["server"][0], DtlsSecure)


def test_client_rejects_wrong_server_fingerprint_no_keys(alice: Cred, bob: Cred, mallory: Cred) -> None:
    # The client expects bob; mallory answers.
    pair = Pair(session("client", alice, bob), session("server", mallory, alice))
    handshake(pair)
    (event,) = pair.events["client"]
    assert event == FingerprintMismatch(bob.fingerprint, mallory.fingerprint)
    assert pair.client.state == "failed"
    assert not any(isinstance(e, DtlsSecure) for e in pair.events["server"])


def test_server_rejects_wrong_client_fingerprint(alice: Cred, bob: Cred, mallory: Cred) -> None:
    pair = Pair(session("client", mallory, bob), session("server", bob, alice))
    handshake(pair)
    assert pair.events["server"] == [FingerprintMismatch(alice.fingerprint, mallory.fingerprint)]
    assert not any(isinstance(e, DtlsSecure) for e in pair.events["client"])


def test_early_first_flight_answered_at_once_keys_wait_for_fingerprint(alice: Cred, bob: Cred) -> None:
    # Offerer (server role, a=setup:actpass) meets the answerer's ClientHello before the SDP answer.
    server = session("server", bob, None)
    pair = Pair(session("client", alice, bob), server)
    handshake(pair, now=5.0)
    assert pair.sent["c2s"][:1] and server.state == "awaiting_fingerprint"
    assert pair.events["server"] == []  # nothing secure without the fingerprint
    assert isinstance(pair.events["client"][0], DtlsSecure)
    server.set_remote_fingerprint(alice.fingerprint, 5.2)
    pair.settle(5.2)
    (secure,) = pair.events["server"]
    assert isinstance(secure, DtlsSecure)
    assert secure.remote_key == pair.secure()[0].local_key
    # No retransmission was needed: one ClientHello, no timer fired on either side.
    assert pair.client.retransmissions == pair.server.retransmissions == 0
    hellos = [d for d in pair.sent["c2s"] if d[0] == 22 and d[3:5] == b"\x00\x00" and d[13] == 1]
    assert len(hellos) == 1


def test_early_first_flight_costs_no_retransmission_on_the_real_clock(alice: Cred, bob: Cred) -> None:
    # The SDP answer (with the client's fingerprint) reaches the server 0.3 s after the ClientHello; timers
    # are serviced all along. Both are secure as soon as it arrives, before OpenSSL's 1 s retransmission.
    server = session("server", bob, None)
    pair = Pair(session("client", alice, bob), server)
    answer_at = time.monotonic() + 0.3

    def answer_arrives(now: float) -> None:
        if server.state == "awaiting_fingerprint" and now >= answer_at:
            server.set_remote_fingerprint(alice.fingerprint, now)

    elapsed = pair.run_realtime(on_tick=answer_arrives)
    assert 0.25 <= elapsed < 1.0
    assert pair.client.retransmissions == pair.server.retransmissions == 0
    c, s = pair.secure()
    assert c.local_key == s.remote_key


def test_early_first_flight_with_wrong_fingerprint_no_keys(alice: Cred, bob: Cred, mallory: Cred) -> None:
    server = session("server", bob, None)
    pair = Pair(session("client", mallory, bob), server)
    handshake(pair)
    server.set_remote_fingerprint(alice.fingerprint)
    pair.settle(101.0)
    assert pair.events["server"] == [FingerprintMismatch(alice.fingerprint, mallory.fingerprint)]
    assert server.state == "failed" and server.get_timer() is None
    assert isinstance(pair.events["client"][-1], DtlsClosed)  # the server said close_notify


def test_waiting_for_fingerprint_times_out(alice: Cred, bob: Cred) -> None:
    server = session("server", bob, None, handshake_timeout=10.0)
    pair = Pair(session("client", alice, bob), server)
    handshake(pair, now=0.0)
    assert server.get_timer() == 10.0
    server.handle_timer(9.9)
    assert server.next_event() is None
    server.handle_timer(10.0)
    assert server.next_event() == DtlsFailed("no fingerprint")


def test_handshake_deadline_on_the_callers_clock(alice: Cred, bob: Cred) -> None:
    client = session("client", alice, bob, handshake_timeout=20.0)
    client.start(1000.0)
    (hello,) = client.datagrams_to_send(1000.0)
    timer = client.get_timer()
    # OpenSSL's first retransmission is due about 1 s later (RFC 6347 §4.2.4.1), on our clock.
    assert timer is not None and 1000.5 < timer <= 1001.0
    client.handle_timer(1020.0)
    assert client.next_event() == DtlsFailed("handshake timeout")
    assert client.get_timer() is None
    client.receive(hello, 1021.0)
    assert client.drops["after_end"] == 1


def _reverse_handshake_fragments(direction: str, first: int, batch: list[bytes]) -> list[bytes]:
    # Handshake fragments come backwards; a datagram holding ChangeCipherSpec stays last (OpenSSL drops a CCS
    # that overtakes the messages before it, and then needs a retransmission: see the next test).
    return [d for d in batch[::-1] if b"\x14\xfe\xfd" not in d] + [d for d in batch if b"\x14\xfe\xfd" in d]


def test_reordered_fragmented_flights_need_no_retransmission(alice: Cred, bob: Cred) -> None:
    # A small MTU fragments the certificate flights over several datagrams.
    pair = Pair(session("client", alice, bob, mtu=256), session("server", bob, alice, mtu=256),
                policy=_reverse_handshake_fragments)
    handshake(pair)
    assert max(len(d) for d in pair.sent["c2s"] + pair.sent["s2c"]) <= 256
    assert len(pair.sent["s2c"]) > 2 and len(pair.sent["c2s"]) > 2
    pair.secure()
    assert pair.client.retransmissions == pair.server.retransmissions == 0


def test_fully_reversed_flights_recover_by_retransmission(alice: Cred, bob: Cred) -> None:
    pair = Pair(session("client", alice, bob, mtu=256), session("server", bob, alice, mtu=256),
                policy=lambda direction, first, batch: batch[::-1])
    pair.run_realtime()
    pair.secure()
    assert pair.client.retransmissions + pair.server.retransmissions >= 1


def test_duplicated_datagrams_are_harmless(alice: Cred, bob: Cred) -> None:
    pair = Pair(session("client", alice, bob), session("server", bob, alice),
                policy=lambda direction, first, batch: [d for d in batch for _ in range(2)])
    handshake(pair)
    pair.secure()
    assert len(pair.events["client"]) == len(pair.events["server"]) == 1


def test_lost_client_hello_recovered_by_retransmission(alice: Cred, bob: Cred) -> None:
    lost = {("c2s", 0)}
    pair = Pair(session("client", alice, bob), session("server", bob, alice),
                policy=lambda direction, first, batch: [d for i, d in enumerate(batch, first)
                                                        if (direction, i) not in lost])
    elapsed = pair.run_realtime()
    assert pair.client.retransmissions == 1 and elapsed >= 0.9
    pair.secure()


def test_one_lost_fragment_of_the_server_flight_recovered(alice: Cred, bob: Cred) -> None:
    # A fragmented certificate flight loses its second datagram: the client holds the rest, retransmits its
    # ClientHello, and the server's repeated flight fills the gap.
    lost = {("s2c", 1)}
    pair = Pair(session("client", alice, bob, mtu=256), session("server", bob, alice, mtu=256),
                policy=lambda direction, first, batch: [d for i, d in enumerate(batch, first)
                                                        if (direction, i) not in lost])
    pair.run_realtime()
    assert len(pair.sent["s2c"]) > 3 and pair.client.retransmissions >= 1
    c, s = pair.secure()
    assert c.remote_key == s.local_key


def test_lost_final_flight_recovered_after_server_is_secure(alice: Cred, bob: Cred) -> None:
    # Drop the server's first answer to the client's Finished: the client retransmits its flight and the
    # (already secure) server must answer that with its last flight again.
    dropped: list[bytes] = []

    def policy(direction: str, first: int, batch: list[bytes]) -> list[bytes]:
        if direction == "s2c" and pair.server.state == "secure" and not dropped:
            dropped.extend(batch)
            return []
        return batch

    pair = Pair(session("client", alice, bob), session("server", bob, alice), policy=policy)
    pair.run_realtime()
    assert dropped and pair.client.retransmissions >= 1
    c, s = pair.secure()
    assert c.local_key == s.remote_key


def test_close_notify_reaches_the_peer(alice: Cred, bob: Cred) -> None:
    pair = Pair(session("client", alice, bob), session("server", bob, alice))
    handshake(pair)
    pair.client.close(101.0)
    pair.settle(101.0)
    assert pair.events["server"][-1] == DtlsClosed()
    assert pair.server.state == pair.client.state == "closed"


@pytest.mark.parametrize(
    ("datagram", "reason"),
    [
        (b"", "empty"),
        (b"\x16\xfe\xfd" + bytes(5), "truncated_header"),
        (b"\x63" + bytes(20), "content_type"),
        (b"\x16\x03\x03" + bytes(8) + b"\x00\x00", "version"),
        (b"\x16\xfe\xfd" + bytes(8) + b"\x00\x10" + bytes(4), "truncated_record"),
        (b"\x17\xfe\xfd" + bytes(8) + b"\x48\x01" + bytes(0x4801), "record_too_large"),
        (bytes(70000), "too_large"),
    ],
)
def test_malformed_datagrams_are_counted(datagram: bytes, reason: str, alice: Cred, bob: Cred) -> None:
    server = session("server", bob, alice)
    server.receive(datagram, 0.0)
    assert server.drops == {reason: 1}
    assert server.state == "idle" and server.next_event() is None and server.datagrams_to_send(0.0) == []


def test_garbage_handshake_record_fails_the_handshake_cleanly(alice: Cred, bob: Cred) -> None:
    server = session("server", bob, alice)
    server.receive(b"\x16\xfe\xfd" + bytes(8) + b"\x00\x04" + b"\x01\x00\x00\x00", 0.0)
    event = server.next_event()
    assert event is None or isinstance(event, DtlsFailed)


def test_client_ignores_datagrams_before_start(alice: Cred, bob: Cred) -> None:
    client = session("client", alice, bob)
    client.receive(b"\x16\xfe\xfd" + bytes(8) + b"\x00\x00", 0.0)
    assert client.drops == {"not_started": 1} and client.state == "idle"


def test_fingerprint_arguments_are_checked(alice: Cred, bob: Cred, mallory: Cred) -> None:
    with pytest.raises(FingerprintParseError):
        DtlsSrtpSession("client", alice.certificate, alice.private_key, "md5 00:11")
    with pytest.raises(ValueError, match="role"):
        DtlsSrtpSession("peer", alice.certificate, alice.private_key)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="profile"):
        DtlsSrtpSession("client", alice.certificate, alice.private_key, profiles=("AES_256_CM_HMAC_SHA1_80",))
    s = session("server", bob, alice)
    s.set_remote_fingerprint(alice.fingerprint.lower())  # the same value, spelled differently: fine
    with pytest.raises(ValueError, match="already"):
        s.set_remote_fingerprint(mallory.fingerprint)


def test_all_sdp_fingerprints_can_be_given(alice: Cred, bob: Cred) -> None:
    # As zcall.sip.sdp's AudioParams.fingerprints hands them over: several lines, one unusable.
    fps = ["md5 " + ":".join(["00"] * 16), bob.fingerprint, str(Fingerprint.of(bob.certificate, "sha-512"))]
    client = DtlsSrtpSession("client", alice.certificate, alice.private_key, fps)
    pair = Pair(client, session("server", bob, alice))
    handshake(pair)
    pair.secure()


def test_early_handle_timer_on_a_fast_fake_clock_does_not_retransmit(alice: Cred, bob: Cred) -> None:
    # OpenSSL keeps its own clock: a caller's clock running ahead cannot force a retransmission early, and
    # the timer is pushed out by what OpenSSL says remains.
    client = session("client", alice, bob)
    client.start(0.0)
    client.datagrams_to_send(0.0)
    client.handle_timer(5.0)
    assert client.retransmissions == 0 and client.datagrams_to_send(5.0) == []
    timer = client.get_timer()
    assert timer is not None and 5.5 < timer <= 6.0
