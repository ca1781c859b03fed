"""An active man in the middle made of zcall's own ZRTP cores (tests/support/mitm.py), in memory on a fake
clock: it completes both exchanges, yet the two ends' words differ every time, and ends that share retained
secrets raise the cache alarm every time, even when it announces the ZIDs of the ends it impersonates."""

from __future__ import annotations

import os

import pytest

from tests.support.mitm import ZrtpMitm
from tests.unit.zrtp.harness import Secrets
from zcall.media.srtp import SrtpReceiver, SrtpSender
from zcall.media.srtpkeys import SrtpKeys, SrtpProfile
from zcall.zrtp.events import CacheMismatch, Event, PeerIdentified, SecureReady
from zcall.zrtp.session import ZrtpSession

RUNS = int(os.environ.get("ZCALL_MITM_RUNS", "100"))
ALICE, BOB = bytes([0xA1]) * 12, bytes([0xB0]) * 12


def end(zid: bytes, role: str, secrets: Secrets | None) -> ZrtpSession:
    session = ZrtpSession(zid, role, ssrc=int.from_bytes(os.urandom(4), "big"))  # type: ignore[arg-type]
    session.provide_secrets(BOB if zid == ALICE else ALICE, secrets, 0.0)  # the device it believes it calls
    return session


def through_mitm(alice: ZrtpSession, bob: ZrtpSession, mitm: ZrtpMitm) -> dict[str, list[Event]]:
    """Alice <-> mitm side a, mitm side b <-> Bob, each packet delivered 5 ms later, until all is quiet."""
    links = [(alice, mitm.toward_a, "a"), (bob, mitm.toward_b, "b")]
    seen: dict[str, list[Event]] = {"alice": [], "bob": []}
    now = 0.0
    for session in (alice, bob, mitm.toward_a, mitm.toward_b):
        session.start(now)
    everyone = (alice, bob, mitm.toward_a, mitm.toward_b)
    for _ in range(2000):
        moved = False
        for endpoint, facing, side in links:
            for packet in endpoint.datagrams_to_send(now):
                facing.receive(packet, now)
                moved = True
            mitm.pump(side, now)
            for packet in facing.datagrams_to_send(now):
                endpoint.receive(packet, now)
                moved = True
        for name, endpoint in (("alice", alice), ("bob", bob)):
            while (event := endpoint.next_event()) is not None:
                seen[name].append(event)
                if isinstance(event, PeerIdentified) and event.needs_secrets:
                    endpoint.provide_secrets(event.peer_zid, None, now)
        if not moved:
            timers = [t for s in everyone if (t := s.get_timer()) is not None]
            if not timers:
                break
            now = max(now + 0.005, min(timers))
            for s in everyone:
                if (t := s.get_timer()) is not None and t <= now:
                    s.handle_timer(now)
        else:
            now += 0.005
    return seen


def ready(events: list[Event]) -> SecureReady:
    (found,) = (e for e in events if isinstance(e, SecureReady))
    return found


@pytest.mark.parametrize("claim_zids", [False, True])
def test_words_differ_every_time(claim_zids: bool) -> None:
    words_differ = 0
    for _ in range(RUNS):
        mitm = ZrtpMitm(BOB, ALICE) if claim_zids else ZrtpMitm()
        seen = through_mitm(end(ALICE, "initiator", None), end(BOB, "responder", None), mitm)
        at_alice, at_bob = ready(seen["alice"]), ready(seen["bob"])
        assert len(mitm.ready) == 2  # the MITM holds keys with both ends: it could listen
        assert at_alice.sas_value != at_bob.sas_value  # the whole SAS hash: never the same
        words_differ += at_alice.sas_words != at_bob.sas_words
    # The words show 16 bits of it: a MITM wins one run in 65536 by chance, which is ZRTP's bound.
    assert words_differ >= RUNS - 1


def test_cached_secrets_raise_the_alarm_every_time() -> None:
    shared = Secrets(rs1=os.urandom(32), verified=True)  # from an earlier direct call
    alarms = 0
    for _ in range(RUNS):
        mitm = ZrtpMitm(BOB, ALICE)  # it even announces the ZIDs each end expects
        seen = through_mitm(end(ALICE, "initiator", shared), end(BOB, "responder", shared), mitm)
        both = [ready(seen[name]) for name in ("alice", "bob")]
        assert all(r.cache == "mismatch" and not r.verified for r in both)
        alarms += all(any(isinstance(e, CacheMismatch) for e in seen[name]) for name in ("alice", "bob"))
    assert alarms == RUNS


def test_the_mitm_bridges_audio_once_both_sides_are_secure() -> None:
    alice, bob, mitm = end(ALICE, "initiator", None), end(BOB, "responder", None), ZrtpMitm()
    seen = through_mitm(alice, bob, mitm)
    at_alice, at_bob = ready(seen["alice"]), ready(seen["bob"])
    profile = SrtpProfile(at_alice.srtp_profile)
    rtp = bytes([0x80, 111, 0, 1]) + bytes(8) + b"hello bob"
    sent = SrtpSender(SrtpKeys(profile, at_alice.local_key, at_alice.local_salt)).protect(rtp)
    relayed = mitm.bridge("a", sent)
    assert relayed is not None
    got = SrtpReceiver(SrtpKeys(SrtpProfile(at_bob.srtp_profile), at_bob.remote_key, at_bob.remote_salt))
    assert got.unprotect(relayed) == rtp
