"""The call policy for words on the server path (fake clock): a ZRTP exchange not bound to the DTLS keys,
and a verified device reached without words."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.unit.test_callcore import (
    KEYS,
    LOCAL,
    PEER_ZID,
    Bench,
    answer_sdp,
    incoming,
    outgoing,
    secure_call,
    zrtp_ready,
)  # fmt: skip
from zcall import actions as act
from zcall import events
from zcall.callcore import CallCommandError, CallPolicy
from zcall.events import AlertKind, CallState, EndCause
from zcall.keying import KeyAlarm, KeysReady


def server_ready(channel_bound: bool, cache: str = "match") -> KeysReady:
    ready = zrtp_ready(cache, cached_verified=True, peer_verified=True)
    assert ready.zrtp is not None
    secure = replace(ready.secure, method="dtls-srtp", fingerprint_ok=True, verifiable=True)
    return replace(ready, secure=secure, zrtp=replace(ready.zrtp, channel_bound=channel_bound))


def alerts(bench: Bench) -> list[AlertKind]:
    return [e.alert for e in bench.events(events.Alert) if isinstance(e, events.Alert)]


def test_bound_words_on_the_server_path_work_as_on_the_lan() -> None:
    bench = secure_call(outgoing(dtls=True), server_ready(channel_bound=True))
    (secure,) = bench.events(events.Secure)
    assert isinstance(secure, events.Secure) and secure.verified is True and secure.sas == "abcd"
    assert bench.of(act.StoreSecret) and not bench.core.muted and alerts(bench) == []


def test_an_unbound_exchange_is_a_loud_muted_channel_binding_mismatch_words_cannot_lift() -> None:
    bench = secure_call(outgoing(dtls=True), server_ready(channel_bound=False))
    assert alerts(bench) == [AlertKind.CHANNEL_BINDING_MISMATCH]
    (secure,) = bench.events(events.Secure)
    assert isinstance(secure, events.Secure) and secure.verified is False
    assert bench.core.muted and bench.core.state is CallState.SECURE
    # The cache is left as it was on both ends (they both see it), and equal words change nothing.
    assert not bench.of(act.StoreSecret) and not bench.of(act.SetVerified)
    with pytest.raises(CallCommandError, match="cannot vouch"):
        bench.core.words(True, 5.0)
    assert bench.core.muted
    bench.core.words(False, 6.0)  # differing words still end it
    bench.drain()
    assert bench.ended().cause is EndCause.ALARM


def test_hangup_on_mismatch_ends_an_unbound_call_at_once() -> None:
    policy = CallPolicy(on_mismatch="hangup")
    bench = secure_call(outgoing(policy, dtls=True), server_ready(channel_bound=False))
    assert alerts(bench) == [AlertKind.CHANNEL_BINDING_MISMATCH]
    ended = bench.ended()
    assert ended.cause is EndCause.ALARM and ended.reason == "channel binding mismatch"


def test_a_downgrade_alarm_is_loud_but_leaves_the_microphone_to_the_person() -> None:
    bench = outgoing(dtls=True, expected_zid=PEER_ZID)
    words_less = KeysReady(
        KEYS, KEYS, events.Secure(id="c1", method="dtls-srtp", srtp_profile="x", fingerprint_ok=True,
                                  verifiable=False),
    )  # fmt: skip
    bench.core.media_opened(LOCAL, "1", 0.0)
    bench.core.sip_answered(answer_sdp(bench), 0.0)
    bench.core.on_key_event(KeyAlarm(AlertKind.DOWNGRADE, "no words", fatal=False, mutes=False), 0.1)
    bench.core.on_key_event(words_less, 0.1)
    bench.drain()
    assert alerts(bench) == [AlertKind.DOWNGRADE]
    assert bench.core.state is CallState.SECURE and not bench.core.muted
    (secure,) = bench.events(events.Secure)
    assert isinstance(secure, events.Secure) and secure.to_dict()["verifiable"] is False


OTHER_ZID = bytes.fromhex("e7" * 12)


def test_a_bound_exchange_learns_who_is_at_the_account() -> None:
    bench = secure_call(outgoing(dtls=True, account="bob@example.org"), server_ready(channel_bound=True))
    assert act.RememberAccount("bob@example.org", PEER_ZID) in bench.log


def test_an_unbound_exchange_learns_no_account_even_when_the_words_are_read() -> None:
    bench = secure_call(outgoing(dtls=True, account="bob@example.org"), server_ready(channel_bound=False))
    with pytest.raises(CallCommandError):
        bench.core.words(True, 5.0)
    bench.drain()
    assert not bench.of(act.RememberAccount)


def test_a_call_without_words_learns_no_account() -> None:
    bench = outgoing(dtls=True, account="bob@example.org")
    words_less = KeysReady(
        KEYS, KEYS, events.Secure(id="c1", method="dtls-srtp", srtp_profile="x", fingerprint_ok=True,
                                  verifiable=False),
    )  # fmt: skip
    secure_call(bench, words_less)
    assert bench.core.state is CallState.SECURE and not bench.of(act.RememberAccount)


def test_another_device_at_a_known_account_is_an_identity_mismatch_learnt_only_when_the_words_match() -> None:
    ready = server_ready(channel_bound=True, cache="new")
    assert ready.zrtp is not None
    ready = replace(ready, zrtp=replace(ready.zrtp, peer_zid=OTHER_ZID))
    bench = secure_call(outgoing(dtls=True, account="bob@example.org", expected_zid=PEER_ZID), ready)
    assert alerts(bench) == [AlertKind.IDENTITY_MISMATCH] and bench.core.muted
    assert not bench.of(act.RememberAccount)  # an impostor at the account is not its device yet
    bench.core.words(True, 5.0)  # Bob's new unit: the people say so
    bench.drain()
    assert act.RememberAccount("bob@example.org", OTHER_ZID) in bench.log and not bench.core.muted


def test_differing_words_at_a_known_account_learn_nothing() -> None:
    ready = server_ready(channel_bound=True, cache="new")
    assert ready.zrtp is not None
    ready = replace(ready, zrtp=replace(ready.zrtp, peer_zid=OTHER_ZID))
    bench = secure_call(outgoing(dtls=True, account="bob@example.org", expected_zid=PEER_ZID), ready)
    bench.core.words(False, 5.0)
    bench.drain()
    assert not bench.of(act.RememberAccount) and bench.ended().cause is EndCause.ALARM


def test_an_incoming_bound_call_learns_the_callers_account() -> None:
    bench = secure_call(incoming(dtls=True, account="bob@example.org"), server_ready(channel_bound=True))
    assert act.RememberAccount("bob@example.org", PEER_ZID) in bench.log
