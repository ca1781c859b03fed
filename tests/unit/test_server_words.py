"""Words on the server path, in memory on a fake clock: two DtlsKeyings (DTLS-SRTP with ZRTP bound to it by
the exporter value), with and without a man in the middle of DTLS built from our own cores."""

from __future__ import annotations

import heapq
import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.dtls_mitm import DtlsMitm
from tests.unit.dtls.harness import Cred, make_cred
from zcall.events import AlertKind
from zcall.identity import Identity
from zcall.keying import DtlsKeying, KeyAlarm, KeyEvent, KeysReady, SecretsWanted, ZrtpKeying
from zcall.media.demux import PacketKind, classify
from zcall.sip.offeranswer import AudioParams
from zcall.zrtp.cache import RetainedSecrets
from zcall.zrtp.session import ZrtpSession

ZID_A, ZID_B = bytes([0xA]) * 12, bytes([0xB]) * 12


def identity(zid: bytes, cred: Cred) -> Identity:
    assert isinstance(cred.private_key, ec.EllipticCurvePrivateKey)  # what a unit's identity holds
    return Identity(zid, cred.certificate, cred.private_key, Path("-"), Path("-"))


@dataclass
class End:
    """One unit's key agreement and what it reported."""

    name: str
    keys: DtlsKeying
    secrets: dict[bytes, RetainedSecrets | None] = field(default_factory=dict)
    events: list[KeyEvent] = field(default_factory=list)

    def ready(self) -> KeysReady:
        (ready,) = [e for e in self.events if isinstance(e, KeysReady)]
        return ready

    def alerts(self) -> list[AlertKind]:
        return [e.alert for e in self.events if isinstance(e, KeyAlarm)]


def end(name: str, zid: bytes, cred: Cred, words: bool = True) -> End:
    ssrc = int.from_bytes(os.urandom(4), "big")
    zrtp = ZrtpKeying(zid, ssrc, name, ("X255",), ("B256",)) if words else None
    return End(name, DtlsKeying(identity(zid, cred), name, zrtp))


def params(fingerprint: str, setup: str, zrtp_hash: str | None) -> AudioParams:
    return AudioParams(
        host="192.0.2.1", port=4000, proto="UDP/TLS/RTP/SAVPF", payload_type=111, direction="sendrecv",
        rtcp_mux=True, fmtp={}, zrtp_hash=f"1.10 {zrtp_hash}" if zrtp_hash else None,
        fingerprints=(fingerprint,), setup=setup,
    )  # fmt: skip


Route = Callable[[str, bytes], str | None]  # (from, datagram) -> to (None: dropped)


def run(
    a: End, b: End, *, offer_a: AudioParams, answer_b: AudioParams, mitm: DtlsMitm | None = None,
    drop: Callable[[bytes], bool] = lambda _: False, until: float = 30.0,
    delay: Callable[[bytes], float] = lambda _: 0.005,
) -> float:  # fmt: skip
    """A offers (actpass: the DTLS server), B answers (active); datagrams take 5 ms. With `mitm`, every
    datagram goes through it (side a faces A). Returns when the last thing happened."""
    now, seq = 0.0, itertools.count()
    flight: list[tuple[float, int, str, bytes]] = []
    ends = {"A": a, "B": b}

    def send(to: str, data: bytes) -> None:
        if not drop(data):
            heapq.heappush(flight, (now + delay(data), next(seq), to, data))

    def flush(e: End) -> None:
        while (event := e.keys.next_event()) is not None:
            e.events.append(event)
            if isinstance(event, SecretsWanted):
                e.keys.provide_secrets(event.peer_zid, e.secrets.get(event.peer_zid), now)
        for data in e.keys.datagrams_to_send(now):
            send(("mA" if e is a else "mB") if mitm else ("B" if e is a else "A"), data)

    def to_ends(out: list[tuple[str, bytes]]) -> None:
        for side, data in out:
            send("A" if side == "a" else "B", data)

    b.keys.start(offer_a, offerer=False, now=now)  # B has the offer: active, sends its ClientHello
    flush(b)
    a.keys.start(answer_b, offerer=True, now=now)
    flush(a)
    if mitm is not None:
        to_ends(mitm.start(now))
    while True:
        timers = [t for t in (a.keys.get_timer(), b.keys.get_timer()) if t is not None]
        if mitm is not None and (t := mitm.get_timer()) is not None:
            timers.append(t)
        if flight:
            timers.append(flight[0][0])
        if not timers or min(timers) > until:
            return now
        now = max(now, min(timers))
        while flight and flight[0][0] <= now:
            _, _, to, data = heapq.heappop(flight)
            if to in ends:
                ends[to].keys.receive(data, now)
                flush(ends[to])
            else:
                assert mitm is not None
                to_ends(mitm.receive("a" if to == "mA" else "b", data, now))
        for e in (a, b):
            if (t := e.keys.get_timer()) is not None and t <= now:
                e.keys.handle_timer(now)
            flush(e)
        if mitm is not None:
            to_ends(mitm.handle_timer(now))


@pytest.fixture(scope="module")
def creds() -> dict[str, Cred]:
    return {name: make_cred(name) for name in ("alice", "bob", "mallory")}


def pair(creds: dict[str, Cred], *, b_words: bool = True) -> tuple[End, End]:
    return end("A", ZID_A, creds["alice"]), end("B", ZID_B, creds["bob"], words=b_words)


def direct(a: End, b: End, creds: dict[str, Cred], **kw: object) -> float:
    offer = params(creds["alice"].fingerprint, "actpass", a.keys.hello_hash())
    answer = params(creds["bob"].fingerprint, "active", b.keys.hello_hash())
    return run(a, b, offer_a=offer, answer_b=answer, **kw)  # type: ignore[arg-type]


def test_two_units_get_the_same_words_over_dtls_keys_and_the_cache_matches_next_time(
    creds: dict[str, Cred],
) -> None:
    a, b = pair(creds)
    direct(a, b, creds)
    ra, rb = a.ready(), b.ready()
    assert ra.secure.method == rb.secure.method == "dtls-srtp" and ra.secure.verifiable is True
    assert ra.secure.sas_words and ra.secure.sas_words == rb.secure.sas_words
    assert ra.zrtp is not None and rb.zrtp is not None
    assert ra.zrtp.channel_bound is True and rb.zrtp.channel_bound is True
    assert (ra.zrtp.cache, ra.zrtp.peer_zid, rb.zrtp.peer_zid) == ("new", ZID_B, ZID_A)
    assert ra.tx == rb.rx and ra.rx == rb.tx  # DTLS's keys, not ZRTP's
    assert a.alerts() == b.alerts() == []
    # The next call: each side's new rs1 from the cache, as the shell stores it.
    assert ra.zrtp.new_rs1 is not None and rb.zrtp.new_rs1 is not None
    a2, b2 = pair(creds)
    a2.secrets[ZID_B] = RetainedSecrets(ra.zrtp.new_rs1, None, False, None)
    b2.secrets[ZID_A] = RetainedSecrets(rb.zrtp.new_rs1, None, False, None)
    direct(a2, b2, creds)
    second_a, second_b = a2.ready(), b2.ready()
    assert second_a.zrtp is not None and second_b.zrtp is not None
    assert second_a.zrtp.cache == second_b.zrtp.cache == "match"


def mitm_run(creds: dict[str, Cred], zrtp: str) -> tuple[End, End, DtlsMitm]:
    a, b = pair(creds)
    pins = {"a": creds["alice"].fingerprint, "b": creds["bob"].fingerprint}
    m = creds["mallory"]
    mitm = DtlsMitm(m.certificate, m.private_key, pins.__getitem__, zrtp=zrtp)  # type: ignore[arg-type]
    # The server rewrote both fingerprints to the man in the middle's; in "terminate" the zrtp-hash too.
    hash_for_a, hash_for_b = mitm.hello_hash("a"), mitm.hello_hash("b")
    offer = params(m.fingerprint, "actpass", (hash_for_b or f"x {a.keys.hello_hash()}").split()[-1])
    answer = params(m.fingerprint, "active", (hash_for_a or f"x {b.keys.hello_hash()}").split()[-1])
    run(a, b, offer_a=offer, answer_b=answer, mitm=mitm)
    return a, b, mitm


def test_a_man_in_the_middle_of_dtls_relaying_zrtp_breaks_the_channel_binding(creds: dict[str, Cred]) -> None:
    a, b, mitm = mitm_run(creds, "relay")
    assert mitm.relayed_zrtp > 0 and set(mitm.keys) == {"a", "b"}
    for e in (a, b):
        ready = e.ready()
        assert ready.zrtp is not None and ready.zrtp.channel_bound is False, e.name
    # ZRTP itself ran end to end: equal words, which is exactly why they must not be trusted here.
    assert a.ready().secure.sas_words == b.ready().secure.sas_words


def test_a_man_in_the_middle_terminating_zrtp_too_shows_differing_words(creds: dict[str, Cred]) -> None:
    a, b, mitm = mitm_run(creds, "terminate")
    assert mitm.zrtp_mitm is not None and set(mitm.zrtp_mitm.ready) == {"a", "b"}
    ra, rb = a.ready(), b.ready()
    assert ra.zrtp is not None and rb.zrtp is not None
    assert ra.zrtp.channel_bound is True and rb.zrtp.channel_bound is True  # it bound each side to itself
    assert ra.secure.sas_words != rb.secure.sas_words


def test_a_peer_without_zrtp_gets_a_call_without_words(creds: dict[str, Cred]) -> None:
    a, b = pair(creds, b_words=False)  # baresip: no a=zrtp-hash
    a.keys.provide_secrets(ZID_B, None, 0.0)
    direct(a, b, creds)
    ready = a.ready()
    assert ready.secure.verifiable is False and ready.zrtp is None and ready.secure.sas_words is None
    assert ready.secure.to_dict()["verifiable"] is False and "sas" not in ready.secure.to_dict()
    assert a.alerts() == []


def test_a_verified_unit_reached_without_words_is_a_downgrade(creds: dict[str, Cred]) -> None:
    a, b = pair(creds, b_words=False)
    a.keys.provide_secrets(ZID_B, RetainedSecrets(b"\x01" * 32, None, True, None), 0.0)
    direct(a, b, creds)
    alarm = next(e for e in a.events if isinstance(e, KeyAlarm))
    assert alarm.alert is AlertKind.DOWNGRADE and not alarm.fatal and not alarm.mutes
    assert a.events.index(alarm) < a.events.index(a.ready())  # said before the call goes secure
    assert a.ready().secure.verifiable is False


def test_zrtp_signalled_but_dropped_on_the_way_falls_back_to_no_words_and_a_downgrade(
    creds: dict[str, Cred],
) -> None:
    a, b = pair(creds)
    a.keys.provide_secrets(ZID_B, RetainedSecrets(b"\x01" * 32, None, True, None), 0.0)
    end_at = direct(a, b, creds, drop=lambda data: classify(data) is PacketKind.ZRTP)
    assert a.alerts() == [AlertKind.DOWNGRADE] and a.ready().secure.verifiable is False
    assert b.alerts() == [] and b.ready().secure.verifiable is False
    assert end_at < 10.0  # given up after the Hello retries, well before the call's keys deadline


def test_zrtp_overtaking_the_last_dtls_flight_waits_for_it(creds: dict[str, Cred]) -> None:
    # A (the DTLS server) is done first and says Hello at once; here the Hello arrives before A's Finished.
    a, b = pair(creds)
    is_zrtp = lambda data: classify(data) is PacketKind.ZRTP  # noqa: E731
    end_at = direct(a, b, creds, delay=lambda data: 0.001 if is_zrtp(data) else 0.020)
    ra, rb = a.ready(), b.ready()
    assert ra.secure.sas_words == rb.secure.sas_words and ra.zrtp is not None and ra.zrtp.channel_bound
    assert end_at < 1.0


def test_a_tampered_zrtp_hash_on_the_server_path_ends_the_call_as_on_the_lan(creds: dict[str, Cred]) -> None:
    a, b = pair(creds)
    offer = params(creds["alice"].fingerprint, "actpass", "ab" * 32)  # not A's Hello
    answer = params(creds["bob"].fingerprint, "active", b.keys.hello_hash())
    run(a, b, offer_a=offer, answer_b=answer)
    assert b.alerts() == [AlertKind.ZRTP_HASH_MISMATCH]
    assert not [e for e in b.events if isinstance(e, KeysReady)], "no keys after a fatal alarm"


def test_another_phones_zrtp_over_dtls_gives_no_words_and_no_false_alarm(creds: dict[str, Cred]) -> None:
    # A phone that answers ZRTP on a DTLS-SRTP call knows nothing of the binding: no words, no alarm.
    a, b = pair(creds)
    assert b.keys.zrtp is not None
    b.keys.zrtp.session = ZrtpSession(ZID_B, ssrc=0xB0B, client_id="LINPHONE-ZRTPCPP")
    direct(a, b, creds)
    assert a.alerts() == [] and a.ready().secure.verifiable is False and a.ready().zrtp is None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.lists(st.binary(max_size=300), max_size=12), zrtp_like=st.booleans())
def test_junk_on_the_media_port_never_raises_and_keys_still_come(
    creds: dict[str, Cred], junk: list[bytes], zrtp_like: bool
) -> None:
    # Datagrams from the signalled address that are not what they claim (ZRTP-looking ones are held while
    # DTLS runs, then fed to ZRTP): dropped and counted by the cores, never an exception, and the call keys.
    a, b = pair(creds)
    cookie = bytes.fromhex("10000000") + b"ZRTP"
    for data in junk:
        b.keys.receive(cookie + data if zrtp_like else data, 0.0)
    direct(a, b, creds)
    assert a.ready().secure.sas_words == b.ready().secure.sas_words
