"""The whole call policy in memory, on a fake clock: no sockets, no devices, no asyncio."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from zcall import actions as act
from zcall import events
from zcall.callcore import TRANSITIONS, CallCommandError, CallCore, CallPolicy
from zcall.events import AlertKind, CallState, EndCause
from zcall.keying import KeyAlarm, KeyFailed, KeysReady, ZrtpFacts
from zcall.media.srtpkeys import SrtpKeys, SrtpProfile
from zcall.sip import offeranswer, sdp

PEER_ZID = bytes.fromhex("aa" * 12)
OTHER_ZID = bytes.fromhex("bb" * 12)
KEYS = SrtpKeys(SrtpProfile.AES_CM_128_HMAC_SHA1_80, b"k" * 16, b"s" * 14)
LOCAL = offeranswer.LocalAudio(host="10.0.0.1", port=40000, mode="zrtp", zrtp_hash="1.10 " + "ab" * 32)
PEER_AUDIO = offeranswer.LocalAudio(host="10.0.0.2", port=40002, mode="zrtp", zrtp_hash="1.10 " + "cd" * 32)


@dataclass
class Bench:
    """One core on a fake clock, with every action it produced so far."""

    core: CallCore
    now: float = 0.0

    def __post_init__(self) -> None:
        self.log: list[act.Action] = []
        self.drain()

    def drain(self) -> list[act.Action]:
        new = []
        while (action := self.core.next_event()) is not None:
            new.append(action)
        self.log.extend(new)
        return new

    def tick(self, seconds: float) -> list[act.Action]:
        self.now += seconds
        due = self.core.get_timer()
        if due is not None and due <= self.now:
            self.core.handle_timer(self.now)
        return self.drain()

    def events(self, kind: type[events.Event] = events.Event) -> list[events.Event]:
        return [a.event for a in self.log if isinstance(a, act.Emit) and isinstance(a.event, kind)]

    def states(self) -> list[str]:
        return [str(e.state) for e in self.events(events.Call) if isinstance(e, events.Call)]

    def of(self, kind: type[act.Action]) -> list[act.Action]:
        return [a for a in self.log if isinstance(a, kind)]

    def ended(self) -> events.Ended:
        (ended,) = self.events(events.Ended)
        assert isinstance(ended, events.Ended)
        return ended


def outgoing(policy: CallPolicy | None = None, **kw: object) -> Bench:
    return Bench(CallCore("c1", "out", "bob", policy or CallPolicy(), 0.0, **kw))  # type: ignore[arg-type]


def incoming(policy: CallPolicy | None = None, **kw: object) -> Bench:
    offer = offeranswer.make_offer(PEER_AUDIO, session_id="1", version=1)
    core = CallCore("c2", "in", "alice", policy or CallPolicy(), 0.0, offer=offer, **kw)  # type: ignore[arg-type]
    return Bench(core)


def answer_sdp(bench: Bench) -> bytes:
    assert bench.core.offer is not None
    return offeranswer.answer(bench.core.offer, PEER_AUDIO, session_id="2", version=1).serialize()


def zrtp_ready(
    cache: str = "new", zid: bytes = PEER_ZID, cached_verified: bool = False, peer_verified: bool = False
) -> KeysReady:
    secure = events.Secure(
        id="c1", method="zrtp", srtp_profile=KEYS.profile.value, sas="abcd", verified=False
    )
    facts = ZrtpFacts(zid, cache, cached_verified, peer_verified, b"r" * 32, 3600)  # type: ignore[arg-type]
    return KeysReady(KEYS, KEYS, secure, facts)


def secure_call(bench: Bench, ready: KeysReady | None = None) -> Bench:
    core = bench.core
    if core.direction == "out":
        core.media_opened(LOCAL, "1", bench.now)
        core.sip_progress(180, bench.now)
        core.sip_answered(answer_sdp(bench), bench.now)
    else:
        if not bench.of(act.OpenMedia):  # not answered unattended
            core.answer(bench.now)
        core.media_opened(LOCAL, "1", bench.now)
    core.on_key_event(ready or zrtp_ready(), bench.now)
    bench.drain()
    return bench


# --- outgoing ---------------------------------------------------------------------------------------


def test_outgoing_call_goes_secure_and_unmutes_only_then() -> None:
    bench = outgoing()
    assert isinstance(bench.log[0], act.OpenMedia)
    bench.core.media_opened(LOCAL, "1", 0.0)
    invite = bench.drain()
    assert isinstance(invite[0], act.SendInvite) and b"zrtp-hash" in invite[0].sdp
    assert bench.core.muted
    secure_call(bench)
    assert bench.states() == ["dialing", "ringing", "answered", "secure"]
    assert bench.of(act.StartKeys) and bench.of(act.InstallKeys)
    assert bench.of(act.SetMuted)[-1] == act.SetMuted(False)
    assert not bench.core.muted


@pytest.mark.parametrize(
    ("status", "cause"),
    [(486, EndCause.BUSY), (603, EndCause.DECLINED), (480, EndCause.NO_ANSWER), (404, EndCause.UNREACHABLE),
     (500, EndCause.FAILED)],
)  # fmt: skip
def test_a_final_status_says_why_the_call_ended(status: int, cause: EndCause) -> None:
    bench = outgoing()
    bench.core.media_opened(LOCAL, "1", 0.0)
    bench.core.sip_failed(status, "Whatever", 1.0)
    bench.drain()
    ended = bench.ended()
    assert ended.cause is cause and ended.reason.startswith(str(status))
    assert bench.states()[-1] == "ended" and bench.of(act.CloseMedia)
    assert not bench.of(act.SendHangup)  # the dialog is already over


@pytest.mark.parametrize("after_1xx", [False, True])
def test_hanging_up_before_an_answer_cancels(after_1xx: bool) -> None:
    bench = outgoing()
    bench.core.media_opened(LOCAL, "1", 0.0)
    if after_1xx:
        bench.core.sip_progress(180, 0.1)
    bench.core.hangup(0.2)
    bench.drain()
    assert bench.of(act.SendHangup) and bench.ended().cause is EndCause.LOCAL_HANGUP
    bench.core.sip_failed(487, "Request Terminated", 0.3)  # the CANCEL's effect arrives later: ignored
    assert len(bench.events(events.Ended)) == 1


def test_an_unusable_answer_hangs_up() -> None:
    bench = outgoing()
    bench.core.media_opened(LOCAL, "1", 0.0)
    bench.core.sip_answered(b"v=0\r\nnot sdp", 1.0)
    bench.drain()
    assert bench.of(act.SendHangup) and "unusable answer" in bench.ended().reason


def test_a_lan_peer_that_does_not_ring_is_called_through_the_server() -> None:
    bench = outgoing(fallback_aor="bob@example.org", expected_zid=PEER_ZID)
    bench.core.media_opened(LOCAL, "1", 0.0)
    bench.drain()
    assert bench.tick(2.9) == []
    bench.tick(0.2)
    # The same device is expected there: its ZID (and whether it was verified) goes with the new call.
    assert bench.of(act.FallBack) == [act.FallBack("bob@example.org", PEER_ZID)]
    assert bench.ended().cause is EndCause.FALLBACK


def test_a_ringing_lan_peer_is_not_called_through_the_server() -> None:
    bench = outgoing(fallback_aor="bob@example.org")
    bench.core.media_opened(LOCAL, "1", 0.0)
    bench.core.sip_progress(180, 1.0)
    bench.tick(5.0)
    assert not bench.of(act.FallBack) and not bench.events(events.Ended)


def test_key_agreement_must_finish_in_time() -> None:
    bench = outgoing()
    bench.core.media_opened(LOCAL, "1", 0.0)
    bench.core.sip_answered(answer_sdp(bench), 0.0)
    bench.tick(19.9)
    assert not bench.events(events.Ended)
    bench.tick(0.2)
    assert bench.ended().cause is EndCause.NO_ZRTP and bench.of(act.SendHangup)
    assert not bench.of(act.InstallKeys)


def test_media_failure_ends_the_call_before_any_sip() -> None:
    bench = outgoing()
    bench.core.media_failed("no such device", 0.0)
    bench.drain()
    assert bench.ended().cause is EndCause.MEDIA_FAILED and not bench.of(act.SendInvite)


# --- incoming -------------------------------------------------------------------------------------------


def test_incoming_rings_then_answers_with_our_media() -> None:
    bench = incoming()
    assert bench.of(act.SendRinging) and bench.states() == ["incoming"]
    bench.core.answer(1.0)
    assert isinstance(bench.drain()[0], act.OpenMedia)
    with pytest.raises(CallCommandError):
        bench.core.answer(1.1)  # a double press does not open twice
    bench.core.media_opened(LOCAL, "1", 1.2)
    actions = bench.drain()
    assert isinstance(actions[0], act.SendAnswer) and b"zrtp-hash" in actions[0].sdp
    assert any(isinstance(a, act.StartKeys) for a in actions)


def test_auto_answer_opens_media_at_once() -> None:
    bench = incoming(auto_answer=True)
    assert bench.of(act.OpenMedia)


def test_an_unanswered_call_gets_480_after_the_ring_timeout() -> None:
    bench = incoming(CallPolicy(ring_timeout_s=60.0))
    bench.tick(59.0)
    assert not bench.events(events.Ended)
    bench.tick(1.5)
    assert act.SendReject(480, "Temporarily Unavailable") in bench.log
    assert bench.ended().cause is EndCause.NO_ANSWER


def test_the_caller_cancelling_ends_the_incoming_call() -> None:
    bench = incoming()
    bench.core.sip_ended("cancelled", 2.0)
    bench.drain()
    assert bench.ended().cause is EndCause.CANCELLED and bench.tick(100.0) == []


def test_reject_declines() -> None:
    bench = incoming()
    bench.core.reject(1.0)
    bench.drain()
    assert act.SendReject(603, "Decline") in bench.log and bench.ended().cause is EndCause.DECLINED


def test_an_incompatible_offer_gets_488() -> None:
    offer = sdp.parse(
        b"v=0\r\no=- 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n"
        b"m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    )
    bench = Bench(CallCore("c3", "in", "x", CallPolicy(), 0.0, offer=offer))
    bench.core.answer(0.0)
    bench.core.media_opened(LOCAL, "1", 0.0)
    bench.drain()
    (reject,) = bench.of(act.SendReject)
    assert isinstance(reject, act.SendReject) and reject.status == 488
    assert not bench.of(act.StartKeys)


# --- key agreement and trust ----------------------------------------------------------------------------


def test_first_contact_stores_the_secret_and_is_not_verified() -> None:
    bench = secure_call(outgoing())
    (secure,) = bench.events(events.Secure)
    assert isinstance(secure, events.Secure) and secure.verified is False
    assert bench.of(act.StoreSecret) and act.RememberPeer(PEER_ZID, "bob") in bench.log


@pytest.mark.parametrize(
    ("cached_verified", "peer_verified", "verified"),
    [(True, True, True), (True, False, False), (False, True, False)],
)
def test_verified_needs_both_sides_v_flags(
    cached_verified: bool, peer_verified: bool, verified: bool
) -> None:
    bench = secure_call(
        outgoing(), zrtp_ready("match", cached_verified=cached_verified, peer_verified=peer_verified)
    )
    (secure,) = bench.events(events.Secure)
    assert isinstance(secure, events.Secure) and secure.verified is verified


@pytest.mark.parametrize("on_mismatch", ["continue", "hangup"])
def test_cache_mismatch(on_mismatch: str) -> None:
    bench = outgoing(CallPolicy(on_mismatch=on_mismatch))
    bench.core.media_opened(LOCAL, "1", 0.0)
    bench.core.sip_answered(answer_sdp(bench), 0.0)
    bench.core.on_key_event(KeyAlarm(AlertKind.CACHE_MISMATCH, "differs", fatal=False), 0.1)
    bench.core.on_key_event(zrtp_ready("mismatch", cached_verified=True, peer_verified=True), 0.2)
    bench.drain()
    assert [e.alert for e in bench.events(events.Alert) if isinstance(e, events.Alert)] == [
        AlertKind.CACHE_MISMATCH
    ]
    assert act.SetVerified(PEER_ZID, False) in bench.log and not bench.of(act.StoreSecret)
    if on_mismatch == "hangup":
        assert bench.ended().cause is EndCause.ALARM
        return
    assert bench.core.muted and bench.core.state is CallState.SECURE  # up, muted, words asked for
    bench.core.words(True, 5.0)
    bench.drain()
    assert bench.of(act.StoreSecret) and act.SetVerified(PEER_ZID, True) in bench.log  # new secret adopted
    assert not bench.core.muted and bench.core.trust.verified


def test_cache_mismatch_then_words_differ_keeps_the_old_secret() -> None:
    bench = outgoing()
    secure_call(bench, zrtp_ready("mismatch"))
    bench.core.words(False, 5.0)
    bench.drain()
    assert not bench.of(act.StoreSecret) and not bench.of(act.RollbackSecret)
    assert bench.ended().cause is EndCause.ALARM


def test_words_differ_revokes_trust_and_rolls_back_this_calls_secret() -> None:
    bench = secure_call(outgoing(), zrtp_ready("match", cached_verified=True, peer_verified=True))
    bench.core.words(False, 5.0)
    bench.drain()
    assert act.SetVerified(PEER_ZID, False) in bench.log and act.RollbackSecret(PEER_ZID) in bench.log
    assert [e.alert for e in bench.events(events.Alert) if isinstance(e, events.Alert)] == [
        AlertKind.SAS_MISMATCH
    ]
    assert bench.ended().cause is EndCause.ALARM and bench.of(act.SendHangup)


def test_words_match_verifies_and_sets_our_v_flag() -> None:
    bench = secure_call(outgoing())
    bench.core.words(True, 5.0)
    bench.drain()
    assert act.SetVerified(PEER_ZID, True) in bench.log and act.SetSasVerified(True) in bench.log


def test_another_zid_than_the_one_chosen_is_an_identity_alarm() -> None:
    bench = secure_call(
        outgoing(expected_zid=OTHER_ZID), zrtp_ready("match", cached_verified=True, peer_verified=True)
    )
    alerts = [e for e in bench.events(events.Alert) if isinstance(e, events.Alert)]
    assert [a.alert for a in alerts] == [
        AlertKind.IDENTITY_MISMATCH
    ] and "not the device you chose" in alerts[0].message
    (secure,) = bench.events(events.Secure)
    assert isinstance(secure, events.Secure) and secure.verified is False
    assert bench.core.muted and bench.core.state is CallState.SECURE


def test_the_zid_chosen_is_met_no_alarm() -> None:
    bench = secure_call(outgoing(expected_zid=PEER_ZID))
    assert not bench.events(events.Alert) and not bench.core.muted


@pytest.mark.parametrize("alert", [AlertKind.ZRTP_HASH_MISMATCH, AlertKind.FINGERPRINT_MISMATCH])
def test_a_fatal_key_alarm_ends_the_call_before_any_keys(alert: AlertKind) -> None:
    bench = outgoing()
    bench.core.media_opened(LOCAL, "1", 0.0)
    bench.core.sip_answered(answer_sdp(bench), 0.0)
    bench.core.on_key_event(KeyAlarm(alert, "tampered", fatal=True), 0.5)
    bench.drain()
    assert bench.ended().cause is EndCause.ALARM and not bench.of(act.InstallKeys)
    expected = "zrtp hash mismatch" if alert is AlertKind.ZRTP_HASH_MISMATCH else "dtls fingerprint mismatch"
    assert bench.ended().reason == expected


def test_key_failure_hangs_up_with_its_reason() -> None:
    bench = outgoing()
    bench.core.media_opened(LOCAL, "1", 0.0)
    bench.core.sip_answered(answer_sdp(bench), 0.0)
    bench.core.on_key_event(KeyFailed("peer does not support ZRTP", EndCause.NO_ZRTP), 4.0)
    bench.drain()
    assert bench.ended().reason == "peer does not support ZRTP" and bench.of(act.SendHangup)


def test_dtls_call_reports_fingerprint_and_no_words() -> None:
    bench = outgoing(dtls=True)
    ready = KeysReady(
        KEYS, KEYS, events.Secure(id="c1", method="dtls-srtp", srtp_profile="x", fingerprint_ok=True)
    )
    secure_call(bench, ready)
    assert bench.core.state is CallState.SECURE and not bench.core.muted
    with pytest.raises(CallCommandError):
        bench.core.words(True, 1.0)


# --- during the call ------------------------------------------------------------------------------------


def test_hold_and_resume_mute_and_unmute() -> None:
    bench = secure_call(outgoing())
    on_hold = offeranswer.LocalAudio(host="10.0.0.2", port=40002, direction="sendonly")
    hold = offeranswer.make_offer(on_hold, "1", 2)
    bench.core.sip_reoffer(hold.serialize(), 5.0)
    actions = bench.drain()
    assert isinstance(actions[0], act.AnswerReInvite) and actions[0].status == 200
    assert bench.core.muted and act.SetMuted(True) in actions
    resume = offeranswer.make_offer(PEER_AUDIO, "1", 3)
    bench.core.sip_reoffer(resume.serialize(), 6.0)
    assert act.SetMuted(False) in bench.drain()


def test_a_reinvite_without_an_offer_gets_488() -> None:
    bench = secure_call(outgoing())
    bench.core.sip_reoffer(b"", 5.0)
    assert bench.drain() == [act.AnswerReInvite(b"", 488)]


def test_user_mute_is_one_switch_among_the_reasons() -> None:
    bench = secure_call(outgoing())
    bench.core.set_muted(True)
    assert bench.drain() == [act.SetMuted(True)] and bench.core.muted
    bench.core.set_muted(False)
    assert bench.drain() == [act.SetMuted(False)]


def test_remote_hangup_reports_duration_from_secure() -> None:
    bench = secure_call(outgoing())
    bench.core.sip_ended("bye", 12.5)
    bench.drain()
    ended = bench.ended()
    assert (
        ended.cause is EndCause.REMOTE_HANGUP and ended.reason == "remote hangup" and ended.duration_s == 12.5
    )


def test_transitions_table_is_closed() -> None:
    for state, follows in TRANSITIONS.items():
        assert state not in follows and follows <= set(CallState)
    assert TRANSITIONS[CallState.ENDED] == frozenset()


def test_a_dialled_uri_never_names_the_trust_entry() -> None:
    bench = Bench(CallCore("c9", "out", "sip:zcall@10.0.0.2:5060", CallPolicy(), 0.0))
    secure_call(bench)
    assert act.RememberPeer(PEER_ZID, "") in bench.log


def test_an_unattended_answer_for_verified_callers_keeps_the_microphone_until_proven() -> None:
    bench = incoming(auto_answer=True, unattended_needs_verified=True)
    secure_call(bench, zrtp_ready("match", cached_verified=True, peer_verified=False))
    assert bench.core.state is CallState.SECURE and bench.core.muted  # secure, but not proven verified
    proven = incoming(auto_answer=True, unattended_needs_verified=True)
    secure_call(proven, zrtp_ready("match", cached_verified=True, peer_verified=True))
    assert not proven.core.muted


def test_icmp_unreachable_ends_a_dialing_call_only() -> None:
    bench = outgoing()
    bench.core.media_opened(LOCAL, "1", 0.0)
    bench.core.sip_unreachable("port unreachable", 0.1)
    bench.drain()
    assert bench.ended().cause is EndCause.UNREACHABLE and "port unreachable" in bench.ended().reason
    ringing = outgoing()
    ringing.core.media_opened(LOCAL, "1", 0.0)
    ringing.core.sip_progress(180, 0.1)
    ringing.core.sip_unreachable("port unreachable", 0.2)  # it answered once: a stray ICMP changes nothing
    ringing.drain()
    assert not ringing.events(events.Ended)
