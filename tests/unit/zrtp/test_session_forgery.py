"""What a third host's packets can do to a ZRTP session (issue 12): forged Hellos and Errors change nothing,
a Hello the signalling does not vouch for is rejected (alarm only if the right one never comes), the secrets
arrive from outside receive(), the peer's V flag is reported, and SRTP stands in for a lost Conf2ACK."""

from __future__ import annotations

import random

from tests.unit.zrtp.harness import Secrets, answer, make, run_pair
from zcall.zrtp import messages as m
from zcall.zrtp.crc32c import zrtp_crc_bytes
from zcall.zrtp.events import Event, Failed, HelloHashMismatch, PeerIdentified, ReceiveKeysReady, SecureReady
from zcall.zrtp.packet import encode_packet
from zcall.zrtp.retransmit import T1_SPAN
from zcall.zrtp.session import ZrtpSession
from zcall.zrtp.states import State

ZID_B = bytes([2]) * 12


def forged_hello(zid_byte: int = 9) -> bytes:
    """A well-formed Hello with a valid CRC from a session that is not the peer."""
    forger = make(zid_byte)
    forger.start(0.0)
    (hello,) = forger.datagrams_to_send(0.0)
    return hello


def drain(session: ZrtpSession) -> list[Event]:
    out = []
    while (event := session.next_event()) is not None:
        out.append(event)
    return out


def secure_pair() -> tuple[ZrtpSession, ZrtpSession]:
    a, b = make(1, "initiator"), make(2, "responder")
    run = run_pair(a, b)
    assert a.state is b.state is State.SECURE, run.events
    return a, b


def test_forged_hello_after_secure_is_dropped_and_counted() -> None:
    a, b = secure_pair()
    for n, side in enumerate((a, b)):
        side.receive(forged_hello(9 + n), 30.0)
        assert side.state is State.SECURE and side.drops["hello_changed"] == 1
        assert drain(side) == [] and side.datagrams_to_send(30.0) == []


def test_forged_error_never_ends_a_secure_call() -> None:
    a, b = secure_pair()
    for code in (0x10, 0x40, 0x90, 0x100):
        for side in (a, b):
            side.receive(encode_packet(7, 0xBAD, m.Error(code).encode()), 30.0)
    for side in (a, b):
        assert side.state is State.SECURE and side.drops["error_after_secure"] == 4
        assert not any(isinstance(e, Failed) for e in drain(side))


def test_hello_not_matching_zrtp_hash_is_dropped_then_the_right_one_wins() -> None:
    a, b = make(1, "initiator"), make(2, "responder")
    a.set_peer_hello_hash(b.zrtp_hash_attribute(), 0.0)
    a.start(0.0)
    a.receive(forged_hello(), 0.0)
    assert a.drops["hello_hash_mismatch"] == 1 and a.get_timer() is not None
    run = run_pair(a, b)
    assert not any(isinstance(e, HelloHashMismatch | Failed) for e in run.events["a"])
    assert any(isinstance(e, SecureReady) for e in run.events["a"])
    assert [e.peer_zid for e in run.events["a"] if isinstance(e, PeerIdentified)] == [ZID_B]


def test_only_unvouched_hellos_raise_the_alarm_after_the_hello_retries() -> None:
    a = make(1, "initiator")
    a.set_peer_hello_hash("1.10 " + "ab" * 32, 0.0)
    a.start(0.0)
    now, events = 0.0, []
    a.receive(forged_hello(), 0.5)
    while (timer := a.get_timer()) is not None:
        now = timer
        a.handle_timer(now)
        a.datagrams_to_send(now)
        events += drain(a)
        if events:
            break
    assert isinstance(events[0], HelloHashMismatch) and isinstance(events[1], Failed)
    assert now >= T1_SPAN - 0.01 and a.state is State.FAILED


def test_peer_hanging_up_after_only_unvouched_hellos_is_the_alarm_at_once() -> None:
    # The peer gives up on its own Hellos (we never answer the tampered ones) before our wait for a vouched
    # one ends, and hangs up: the alarm must not be lost with the call.
    a = make(1, "responder")
    a.set_peer_hello_hash("1.10 " + "ab" * 32, 0.0)
    a.start(0.0)
    a.receive(forged_hello(), 0.5)
    assert drain(a) == []
    a.peer_gone()
    events = drain(a)
    assert isinstance(events[0], HelloHashMismatch) and isinstance(events[1], Failed)


def test_peer_hanging_up_without_a_rejected_hello_raises_nothing() -> None:
    a = make(1, "responder")
    a.set_peer_hello_hash("1.10 " + "ab" * 32, 0.0)
    a.start(0.0)
    a.peer_gone()
    assert drain(a) == []


def test_late_zrtp_hash_unseats_a_forged_hello() -> None:
    a, b = make(1, "initiator"), make(2, "responder")
    a.start(0.0)
    a.receive(forged_hello(9), 0.0)  # the forger's Hello came first, before the SDP answer
    assert [e.peer_zid for e in drain(a) if isinstance(e, PeerIdentified)] == [bytes([9]) * 12]
    a.set_peer_hello_hash(b.zrtp_hash_attribute(), 0.01)  # not yet provided secrets, so nothing committed
    assert a.state is State.DISCOVERY and a.drops["hello_hash_mismatch"] == 1
    run = run_pair(a, b)
    assert [e.peer_zid for e in run.events["a"] if isinstance(e, PeerIdentified)] == [ZID_B]
    assert any(isinstance(e, SecureReady) for e in run.events["a"])


def test_late_zrtp_hash_after_commit_is_an_alarm() -> None:
    a, b = make(1, "initiator"), make(2, "responder")
    run = run_pair(a, b)
    a.set_peer_hello_hash("1.10 " + "cd" * 32, run.end)
    assert [type(e) for e in drain(a)] == [HelloHashMismatch, Failed]


def test_secrets_for_the_expected_zid_up_front_need_no_lookup() -> None:
    rs = b"\x07" * 32
    a, b = make(1, "initiator"), make(2, "responder", Secrets(rs))
    a.provide_secrets(ZID_B, Secrets(rs), 0.0)
    run = run_pair(a, b)
    ident = [e for e in run.events["a"] if isinstance(e, PeerIdentified)]
    assert ident == [PeerIdentified(ZID_B, needs_secrets=False)]
    assert [e.cache for e in run.events["a"] if isinstance(e, SecureReady)] == ["match"]


def test_another_zid_than_expected_waits_for_its_secrets() -> None:
    a, b = make(1, "initiator"), make(2, "responder")
    a.provide_secrets(bytes([5]) * 12, Secrets(b"\x07" * 32), 0.0)  # expected someone else
    a.start(0.0)
    b.start(0.0)
    held: list[Event] = []

    def step(now: float) -> None:
        for src, dst in ((a, b), (b, a)):
            for packet in src.datagrams_to_send(now):
                dst.receive(packet, now)
        for event in drain(b):
            answer(b, event, now)
        held.extend(drain(a))  # a's owner is slow: it has not looked the new ZID up yet

    for n in range(4):
        step(n * 0.01)
    assert PeerIdentified(ZID_B, needs_secrets=True) in held
    assert a.state is State.DISCOVERY  # no Commit without the secrets
    a.provide_secrets(ZID_B, None, 0.05)
    assert a.state is State.COMMIT_SENT
    run = run_pair(a, b)
    assert [e.cache for e in run.events["a"] if isinstance(e, SecureReady)] == ["new"]


def test_responder_holds_a_commit_until_its_secrets_arrive() -> None:
    a, b = make(1, "initiator"), make(2, "responder")
    a.start(0.0)
    b.start(0.0)
    b_events: list[Event] = []
    for n in range(4):
        now = n * 0.01
        for src, dst in ((a, b), (b, a)):
            for packet in src.datagrams_to_send(now):
                dst.receive(packet, now)
        for event in drain(a):
            answer(a, event, now)
        b_events += drain(b)
    assert a.state is State.COMMIT_SENT and b.state is State.DISCOVERY
    assert PeerIdentified(bytes([1]) * 12, needs_secrets=True) in b_events
    b.provide_secrets(bytes([1]) * 12, None, 0.05)
    assert b.state is State.WAIT_DHPART2
    dhpart1 = [p for p in b.datagrams_to_send(0.05) if p[16:24] == b"DHPart1 "]
    assert dhpart1


def test_verified_only_when_both_v_flags_are_set() -> None:
    rs = b"\x07" * 32
    run = run_pair(
        make(1, "initiator", Secrets(rs, None, True)), make(2, "responder", Secrets(rs, None, True))
    )
    assert all(e.verified for side in "ab" for e in run.events[side] if isinstance(e, SecureReady))
    # b remembers verifying, a does not (it reset its flag): neither reports verified.
    run = run_pair(
        make(1, "initiator", Secrets(rs, None, False)), make(2, "responder", Secrets(rs, None, True))
    )
    (ra,) = (e for e in run.events["a"] if isinstance(e, SecureReady))
    (rb,) = (e for e in run.events["b"] if isinstance(e, SecureReady))
    assert rb.local_verified and not rb.peer_verified and not rb.verified
    assert ra.peer_verified and not ra.local_verified and not ra.verified


def test_receive_keys_come_with_confirm1_and_srtp_counts_as_conf2ack() -> None:
    a, b = make(1, "initiator"), make(2, "responder")

    def kill_conf2ack(data: bytes, rng: random.Random) -> bytes:
        if data[16:24] != b"Conf2ACK":
            return data
        body = bytearray(data[:-4])
        body[16:24] = b"Bogus   "
        return bytes(body) + zrtp_crc_bytes(bytes(body))

    run = run_pair(a, b, mutate=kill_conf2ack, mutate_rate=1.0, until=0.5)
    assert a.state is State.WAIT_CONF2ACK and b.state is State.SECURE
    (keys,) = (e for e in run.events["a"] if isinstance(e, ReceiveKeysReady))
    (rb,) = (e for e in run.events["b"] if isinstance(e, SecureReady))
    assert (keys.remote_key, keys.remote_salt) == (rb.local_key, rb.local_salt)
    assert keys.srtp_profile == rb.srtp_profile
    assert "key" not in repr(keys).lower().replace("receivekeysready", "")
    a.srtp_received(run.end)
    (ready,) = drain(a)
    assert isinstance(ready, SecureReady) and ready.remote_key == keys.remote_key
    assert not any(isinstance(e, ReceiveKeysReady) for e in run.events["b"])
