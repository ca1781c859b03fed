"""Two ZrtpSessions over the in-memory link with a fake clock: DH mode end to end."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import itertools
import random
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import x25519

from tests.unit.zrtp.harness import Run, Secrets, answer, make, run_pair
from zcall.zrtp import crypto, handshake
from zcall.zrtp import messages as m
from zcall.zrtp.crc32c import zrtp_crc_bytes
from zcall.zrtp.errors import ZrtpErrorCode
from zcall.zrtp.events import CacheMismatch, Failed, HelloHashMismatch, SecureReady
from zcall.zrtp.packet import encode_packet, parse_packet
from zcall.zrtp.retransmit import T1_RETRIES, T2_RETRIES
from zcall.zrtp.session import ZrtpSession
from zcall.zrtp.states import ACCEPTED_IN, TRANSITIONS, State


def ready(run: Run, side: str) -> SecureReady:
    found = [e for e in run.events[side] if isinstance(e, SecureReady)]
    assert len(found) == 1, run.events[side]
    return found[0]


def failures(run: Run, side: str) -> list[Failed]:
    return [e for e in run.events[side] if isinstance(e, Failed)]


def assert_agree(run: Run) -> tuple[SecureReady, SecureReady]:
    a, b = ready(run, "a"), ready(run, "b")
    assert a.local_key == b.remote_key and a.local_salt == b.remote_salt
    assert a.remote_key == b.local_key and a.remote_salt == b.local_salt
    assert a.local_key != a.remote_key
    assert (a.sas_value, a.sas_text, a.sas_words) == (b.sas_value, b.sas_text, b.sas_words)
    assert a.is_initiator != b.is_initiator
    assert a.new_rs1 == b.new_rs1 and a.new_rs1 is not None
    for attr in ("srtp_profile", "hash", "cipher", "auth", "key_agreement", "sas_type"):
        assert getattr(a, attr) == getattr(b, attr)
    return a, b


def message_of(packet: bytes) -> m.Message:
    return m.parse_message(parse_packet(packet).message)


def edit(mtype: bytes, change: Callable[[bytearray], None]) -> Callable[[bytes, random.Random], bytes]:
    """A link mutator that rewrites one message type and fixes the CRC, so only ZRTP's own checks see it."""

    def mutate(data: bytes, rng: random.Random) -> bytes:
        if data[16:24] != mtype:
            return data
        body = bytearray(data[:-4])
        change(body)
        return bytes(body) + zrtp_crc_bytes(bytes(body))

    return mutate


# ----------------------------------------------------------------------------------- combinations

COMBOS = [
    combo
    for combo in itertools.product(
        crypto.KEY_AGREEMENTS, ("S256", "S384"), ("AES1", "AES3"), ("HS80", "HS32"), ("B256", "B32")
    )
    if combo[:2] != ("EC38", "S256")  # §5.1.5: EC38 only with S384 (test_negotiation)
]


@pytest.mark.parametrize(("ka", "hash_", "cipher", "auth", "sas_type"), COMBOS)
def test_every_combination_agrees(ka: str, hash_: str, cipher: str, auth: str, sas_type: str) -> None:
    algos = dict(
        key_agreements=(ka,), hashes=(hash_,), ciphers=(cipher,), auth_tags=(auth,), sas_types=(sas_type,)
    )
    a, b = make(1, "initiator", **algos), make(2, "responder", **algos)
    run = run_pair(a, b)
    ra, rb = assert_agree(run)
    assert (ra.key_agreement, ra.hash, ra.cipher, ra.auth, ra.sas_type) == (ka, hash_, cipher, auth, sas_type)
    assert ra.srtp_profile == crypto.srtp_profile(cipher, auth)
    assert len(ra.local_key) == crypto.CIPHER_KEY_LEN[cipher] and len(ra.local_salt) == 14
    assert ra.cache == rb.cache == "new"
    assert a.state is b.state is State.SECURE
    assert a.get_timer() is None and b.get_timer() is None
    assert not a.drops and not b.drops


def test_defaults_pick_x255_and_linphone_like_peer_gets_dh3k() -> None:
    run = run_pair(make(1), make(2))
    assert ready(run, "a").key_agreement == "X255"
    # A peer shaped like Debian linphonec's default Hello: DH3k first, no X255.
    peer = make(2, key_agreements=("DH3k",), sas_types=("B32",), auth_tags=("HS80", "HS32"))
    run = run_pair(make(1, "initiator"), peer)
    a, _ = assert_agree(run)
    assert (a.key_agreement, a.sas_type, a.hash, a.cipher) == ("DH3k", "B32", "S256", "AES1")


def test_faster_first_choice_wins() -> None:
    run = run_pair(
        make(1, "initiator", key_agreements=("DH3k", "EC25")), make(2, key_agreements=("EC25", "DH3k"))
    )
    assert assert_agree(run)[0].key_agreement == "EC25"


def test_ec38_prefers_s384_and_aes3() -> None:
    run = run_pair(make(1, "initiator", key_agreements=("EC38",)), make(2, key_agreements=("EC38", "DH3k")))
    a, _ = assert_agree(run)
    assert (a.hash, a.cipher) == ("S384", "AES3")


# --------------------------------------------------------------------- independent key computation


def _messages(run: Run, side: str) -> dict[bytes, bytes]:
    """The last distinct message of each type a side sent (retransmissions are identical)."""
    out: dict[bytes, bytes] = {}
    for packet in run.sent[side]:
        msg = parse_packet(packet).message
        out[msg[4:12]] = msg
    return out


def test_keys_match_an_independent_computation_from_the_wire() -> None:
    a, b = make(1, "initiator", key_agreements=("X255",)), make(2, "responder", key_agreements=("X255",))
    run = run_pair(a, b)
    ra, rb = assert_agree(run)
    sent_a, sent_b = _messages(run, "a"), _messages(run, "b")
    hello_r, commit = sent_b[b"Hello   "], sent_a[b"Commit  "]
    dh1, dh2 = sent_b[b"DHPart1 "], sent_a[b"DHPart2 "]
    # DH result from the initiator's private key and the responder's public value as sent.
    priv = a._x.keypair._x if a._x is not None else None
    assert isinstance(priv, x25519.X25519PrivateKey)
    pvr = dh1[76:-8]
    assert len(pvr) == 32 and len(dh1) == 4 * 29
    dh_result = priv.exchange(x25519.X25519PublicKey.from_public_bytes(pvr))
    zidi, zidr = commit[44:56], hello_r[64:76]
    assert zidi == bytes([1]) * 12 and zidr == bytes([2]) * 12
    # hvi in the Commit = SHA-256(DHPart2 || responder's Hello)
    assert commit[76:108] == hashlib.sha256(dh2 + hello_r).digest()
    total = hashlib.sha256(hello_r + commit + dh1 + dh2).digest()
    s0 = hashlib.sha256(
        b"\x00\x00\x00\x01" + dh_result + b"ZRTP-HMAC-KDF" + zidi + zidr + total + bytes(12)
    ).digest()
    ctx = zidi + zidr + total

    def kdf(label: bytes, bits: int) -> bytes:
        data = b"\x00\x00\x00\x01" + label + b"\x00" + ctx + bits.to_bytes(4, "big")
        return hmac.new(s0, data, "sha256").digest()[: bits // 8]

    assert ra.local_key == kdf(b"Initiator SRTP master key", 128)
    assert ra.local_salt == kdf(b"Initiator SRTP master salt", 112)
    assert rb.local_key == kdf(b"Responder SRTP master key", 128)
    assert rb.local_salt == kdf(b"Responder SRTP master salt", 112)
    assert ra.sas_value == kdf(b"SAS", 256)
    assert ra.new_rs1 == kdf(b"retained secret", 256)
    # Confirm1: confirm_mac = HMAC(mackeyr, encrypted part)[:8]; the plaintext starts with the responder's H0.
    confirm1 = sent_b[b"Confirm1"]
    mackeyr, zrtpkeyr = kdf(b"Responder HMAC key", 256), kdf(b"Responder ZRTP key", 128)
    assert confirm1[12:20] == hmac.new(mackeyr, confirm1[36:], "sha256").digest()[:8]
    plain = crypto.cfb_decrypt(zrtpkeyr, confirm1[20:36], confirm1[36:])
    assert hashlib.sha256(plain[:32]).digest() == dh1[12:44]  # H0 -> H1 of DHPart1
    # The Hello MAC is keyed by H2 = hash(H1), and the SDP hash is SHA-256 of the Hello message.
    h2 = hashlib.sha256(dh1[12:44]).digest()
    assert hello_r[-8:] == hmac.new(h2, hello_r[:-8], "sha256").digest()[:8]
    assert b.hello_hash() == hashlib.sha256(hello_r).hexdigest()


# ------------------------------------------------------------------------------- loss, contention


@pytest.mark.parametrize("seed", range(12))
def test_thirty_percent_loss_and_reordering(seed: int) -> None:
    a, b = make(1), make(2)
    run = run_pair(a, b, loss=0.3, jitter=0.25, seed=seed)
    assert_agree(run)
    assert not failures(run, "a") and not failures(run, "b")
    assert "internal_error" not in a.drops and "internal_error" not in b.drops


@pytest.mark.parametrize("seed", range(4))
def test_commit_contention_resolves(seed: int) -> None:
    a, b = make(1), make(2)
    run = run_pair(a, b, seed=seed)  # symmetric start: both commit at the same instant
    assert_agree(run)
    assert a.drops["contention_won"] + b.drops["contention_won"] >= 1
    # The side whose Commit had the larger hvi is the initiator.
    commits = {s: message_of(next(p for p in run.sent[s] if p[16:24] == b"Commit  ")) for s in "ab"}
    hvis = {s: c.hvi for s, c in commits.items() if isinstance(c, m.Commit)}
    winner = "a" if hvis["a"] > hvis["b"] else "b"
    assert ready(run, winner).is_initiator


def test_contention_with_different_key_agreement_lists() -> None:
    a = make(1, key_agreements=("DH3k", "X255"))
    b = make(2, key_agreements=("X255", "DH3k"))
    assert assert_agree(run_pair(a, b))[0].key_agreement == "X255"


# ------------------------------------------------------------------------------------ error paths


def assert_failed_cleanly(run: Run, a: ZrtpSession, b: ZrtpSession, code: int | None) -> None:
    for side, sess in (("a", a), ("b", b)):
        fails = failures(run, side)
        assert len(fails) == 1, (side, run.events[side])
        assert fails[0].error_code == code
        assert not any(isinstance(e, SecureReady) for e in run.events[side])
        assert sess.state is State.FAILED
        assert sess.get_timer() is None


def test_no_listed_key_agreement_in_common_uses_the_mandatory_dh3k() -> None:
    # §5.2: DH3k is implicitly at the end of a's list, so a peer that lists only DH3k is still met.
    a, b = make(1, key_agreements=("X255",)), make(2, key_agreements=("DH3k",))
    ra, _ = assert_agree(run_pair(a, b))
    assert ra.key_agreement == "DH3k"


def test_equal_zids() -> None:
    a, b = make(1), make(1)
    assert_failed_cleanly(run_pair(a, b), a, b, ZrtpErrorCode.EQUAL_ZID)


def test_unsupported_version() -> None:
    a, b = make(1, "initiator"), make(2, "responder")

    def old(body: bytearray) -> None:
        body[24:28] = b"1.00"

    run = run_pair(a, b, mutate=edit(b"Hello   ", old), mutate_rate=1.0)
    assert_failed_cleanly(run, a, b, ZrtpErrorCode.VERSION)


def test_newer_version_hello_is_ignored_until_it_falls_back() -> None:
    a, b = make(1), make(2)

    def newer(body: bytearray) -> None:
        body[24:28] = b"2.00"

    run = run_pair(a, b, mutate=edit(b"Hello   ", newer), mutate_rate=1.0, until=30)
    assert a.drops["newer_version"] > 0 and b.drops["newer_version"] > 0
    assert failures(run, "a") and failures(run, "b")  # nobody ever falls back: both time out


@pytest.mark.parametrize(
    ("field", "offset", "code"), [("cipher", 60, 0x52), ("hash", 56, 0x51), ("auth", 64, 0x54)]
)
def test_commit_with_algorithm_not_offered(field: str, offset: int, code: int) -> None:
    a, b = make(1, "initiator", hashes=("S256",)), make(2, "responder", hashes=("S256",))
    value = {"cipher": b"2FS1", "hash": b"S384", "auth": b"SK32"}[field]

    def swap(body: bytearray) -> None:
        body[12 + offset : 12 + offset + 4] = value

    run = run_pair(a, b, mutate=edit(b"Commit  ", swap), mutate_rate=1.0)
    assert_failed_cleanly(run, a, b, code)


def test_bad_hvi() -> None:
    a, b = make(1, "initiator"), make(2, "responder")

    def flip_pv(body: bytearray) -> None:
        body[12 + 80] ^= 0x01

    run = run_pair(a, b, mutate=edit(b"DHPart2 ", flip_pv), mutate_rate=1.0)
    assert_failed_cleanly(run, a, b, ZrtpErrorCode.BAD_HVI)


def test_bad_public_value_p_minus_1() -> None:
    a = make(1, "initiator", key_agreements=("DH3k",))
    b = make(2, "responder", key_agreements=("DH3k",))
    p_minus_1 = (crypto.DH_PRIMES["DH3k"] - 1).to_bytes(384, "big")

    def weak(body: bytearray) -> None:
        body[12 + 76 : 12 + 76 + 384] = p_minus_1

    run = run_pair(a, b, mutate=edit(b"DHPart1 ", weak), mutate_rate=1.0)
    assert_failed_cleanly(run, a, b, ZrtpErrorCode.BAD_PV)


def test_bad_confirm_mac() -> None:
    a, b = make(1, "initiator"), make(2, "responder")

    def flip(body: bytearray) -> None:
        body[12 + 40] ^= 0x80

    run = run_pair(a, b, mutate=edit(b"Confirm1", flip), mutate_rate=1.0)
    assert_failed_cleanly(run, a, b, ZrtpErrorCode.CONFIRM_MAC)


def test_hello_changed_midway() -> None:
    a, b = make(1, "initiator"), make(2, "responder")
    seen = {"n": 0}

    def second_differs(data: bytes, rng: random.Random) -> bytes:
        if data[16:24] != b"Hello   " or parse_packet(data).ssrc != b.ssrc:
            return data
        seen["n"] += 1
        if seen["n"] < 2:
            return data
        body = bytearray(data[:-4])
        body[12 + 16] ^= 1  # client id
        return bytes(body) + zrtp_crc_bytes(bytes(body))

    # A long delay makes b retransmit its Hello after a accepted the first one. The differing copy (what a
    # third host could send) is dropped and counted; the exchange completes with the Hello a accepted.
    run = run_pair(a, b, mutate=second_differs, mutate_rate=1.0, start_b_at=0.0, delay=0.2)
    assert seen["n"] >= 2 and a.drops["hello_changed"] >= 1
    assert_agree(run)
    assert not failures(run, "a") and not failures(run, "b")


def test_hash_chain_forgery_is_dropped_and_times_out() -> None:
    a, b = make(1, "initiator"), make(2, "responder")

    def forge(body: bytearray) -> None:
        body[24:56] = bytes(32)  # H1 that does not hash to the Commit's H2

    run = run_pair(a, b, mutate=edit(b"DHPart2 ", forge), mutate_rate=1.0)
    assert b.drops["hash_chain"] > 0
    assert [f.error_code for f in failures(run, "a")] == [ZrtpErrorCode.TIMEOUT]
    assert failures(run, "b")
    assert not any(isinstance(e, SecureReady) for e in run.events["a"] + run.events["b"])


def test_peer_never_answers_hello() -> None:
    a = make(1)
    a.start(0.0)
    sends: list[float] = []
    now = 0.0
    while (timer := a.get_timer()) is not None:
        sends += [now] * len(a.datagrams_to_send(now))
        now = timer
        a.handle_timer(now)
    gaps = [round(y - x, 3) for x, y in itertools.pairwise(sends)]
    assert gaps[:4] == [0.05, 0.1, 0.2, 0.2] and len(sends) == 1 + T1_RETRIES
    assert a.next_event() == Failed("no answer to Hello", None)


def test_a_peer_whose_hello_came_is_not_reported_as_having_no_zrtp() -> None:
    # Its Hello arrived but ours never got a HelloACK or Commit (one-way path): ZRTP runs there, so the
    # failure must not read "no answer to Hello", which the call reports as "peer does not support ZRTP".
    a, b = make(1), make(2)
    b.start(0.0)
    (hello,) = b.datagrams_to_send(0.0)
    a.start(0.0)
    a.receive(hello, 0.01)
    now = 0.01
    while (timer := a.get_timer()) is not None:
        a.datagrams_to_send(now)
        now = timer
        a.handle_timer(now)
    failed = [e for e in iter(a.next_event, None) if isinstance(e, Failed)]
    assert failed == [Failed("peer's Hello arrived, but ours got no answer", None)]


def test_commit_retransmission_schedule_then_timeout() -> None:
    a, b = make(1, "initiator"), make(2, "responder")
    drop_commit = edit(b"Commit  ", lambda body: body.__setitem__(slice(16, 24), b"Bogus   "))
    run = run_pair(a, b, mutate=drop_commit, mutate_rate=1.0)
    commits = [p for p in run.sent["a"] if p[16:24] == b"Commit  "]
    assert len(commits) == 1 + T2_RETRIES
    assert [f.error_code for f in failures(run, "a")] == [ZrtpErrorCode.TIMEOUT]
    assert b.drops["unknown_type"] == len(commits)
    assert failures(run, "b")  # the responder's stall guard ends it too


def test_hello_hash_signalled() -> None:
    a, b = make(1, "initiator"), make(2, "responder")
    a.set_peer_hello_hash("1.10 " + b.hello_hash(), 0.0)
    b.set_peer_hello_hash(a.hello_hash().upper(), 0.0)
    assert_agree(run_pair(a, b))
    a, b = make(1, "initiator"), make(2, "responder")
    a.set_peer_hello_hash("1.10 " + "00" * 32, 0.0)
    run = run_pair(a, b)
    assert any(isinstance(e, HelloHashMismatch) for e in run.events["a"])
    assert failures(run, "a") and a.state is State.FAILED
    assert not any(isinstance(e, SecureReady) for e in run.events["a"] + run.events["b"])


# ----------------------------------------------------------------------------------- retained secrets


def test_cache_new_then_match_then_mismatch() -> None:
    first = run_pair(make(1, "initiator"), make(2, "responder"))
    ra, rb = assert_agree(first)
    assert ra.cache == rb.cache == "new" and not ra.peer_verified
    # The engine stores new_rs1; the next call looks it up and matches.
    second = run_pair(make(1, "initiator", Secrets(ra.new_rs1)), make(2, "responder", Secrets(rb.new_rs1)))
    sa, sb = assert_agree(second)
    assert sa.cache == sb.cache == "match"
    assert sa.new_rs1 != ra.new_rs1
    assert not any(isinstance(e, CacheMismatch) for e in second.events["a"] + second.events["b"])
    # A tampered rs1 on one side: both see a mismatch and say so before SecureReady.
    third = run_pair(make(1, "initiator", Secrets(ra.new_rs1)), make(2, "responder", Secrets(b"\x55" * 32)))
    ta, tb = assert_agree(third)
    assert ta.cache == tb.cache == "mismatch"
    for side, peer_zid in (("a", bytes([2]) * 12), ("b", bytes([1]) * 12)):
        late = [e for e in third.events[side] if isinstance(e, CacheMismatch | SecureReady)]
        assert late[0] == CacheMismatch(peer_zid)
        assert isinstance(late[1], SecureReady)


def test_rs2_matches_after_one_side_missed_an_update() -> None:
    old, new = b"\x01" * 32, b"\x02" * 32
    a = make(1, "initiator", Secrets(rs1=new, rs2=old))
    b = make(2, "responder", Secrets(rs1=old))
    ra, rb = assert_agree(run_pair(a, b))
    assert ra.cache == rb.cache == "match"


def test_one_side_without_secrets() -> None:
    ra, rb = assert_agree(run_pair(make(1, "initiator"), make(2, "responder", Secrets(rs1=b"\x03" * 32))))
    assert (ra.cache, rb.cache) == ("new", "mismatch")


def test_verified_flag() -> None:
    rs = b"\x07" * 32
    # Cached verified + match: both send V.
    run = run_pair(
        make(1, "initiator", Secrets(rs, None, True)), make(2, "responder", Secrets(rs, None, True))
    )
    ra, rb = assert_agree(run)
    assert ra.peer_verified and rb.peer_verified
    # Verified in the cache but a mismatch: V is cleared.
    run = run_pair(
        make(1, "initiator", Secrets(rs, None, True)), make(2, "responder", Secrets(b"\x08" * 32, None, True))
    )
    ra, rb = assert_agree(run)
    assert not ra.peer_verified and not rb.peer_verified
    # Explicit setting overrides the cache.
    a, b = make(1, "initiator"), make(2, "responder")
    a.set_sas_verified(True)
    ra, rb = assert_agree(run_pair(a, b))
    assert rb.peer_verified and not ra.peer_verified


@pytest.mark.parametrize(("ea", "eb", "expect"), [(100, handshake.CACHE_NEVER_EXPIRES, 100), (0, 100, 0)])
def test_cache_expiry_is_the_minimum(ea: int, eb: int, expect: int) -> None:
    ra, rb = assert_agree_expiry(run_pair(make(1, "initiator", cache_expiry=ea), make(2, cache_expiry=eb)))
    assert ra.rs1_expires_in == rb.rs1_expires_in == expect
    # The new rs1 is reported either way: with 0 the cache discards it and the peer's old secrets (§4.9).
    assert ra.new_rs1 == rb.new_rs1 is not None


def assert_agree_expiry(run: Run) -> tuple[SecureReady, SecureReady]:
    a, b = ready(run, "a"), ready(run, "b")
    assert a.local_key == b.remote_key and a.sas_value == b.sas_value
    return a, b


# ------------------------------------------------------------------------- ping, clear, relay


def _secure_pair() -> tuple[ZrtpSession, ZrtpSession]:
    a, b = make(1, "initiator"), make(2, "responder")
    assert_agree(run_pair(a, b))
    return a, b


def test_ping_is_answered() -> None:
    a = make(1)
    a.receive(encode_packet(7, 0xABCD, m.Ping(b"1.10", b"PINGHASH").encode()), 0.0)
    (packet,) = a.datagrams_to_send(0.0)
    ack = message_of(packet)
    assert isinstance(ack, m.PingAck)
    assert ack.received_endpoint_hash == b"PINGHASH" and ack.ssrc == 0xABCD and ack.version == b"1.10"


def test_goclear_is_refused_and_keys_kept() -> None:
    a, b = _secure_pair()
    x = a._x
    assert x is not None and x.keys is not None
    clear_mac = crypto.mac64(x.choice.hash, x.keys.mac_key_r, b"GoClear ")
    a.receive(encode_packet(1, b.ssrc, m.GoClear(clear_mac).encode()), 10.0)
    (packet,) = a.datagrams_to_send(10.0)
    assert message_of(packet) == m.Error(ZrtpErrorCode.GOCLEAR_NOT_ALLOWED)
    assert a.state is State.SECURE and a.get_timer() is not None
    a.receive(encode_packet(2, b.ssrc, m.ErrorAck().encode()), 10.1)
    assert a.state is State.SECURE and a.get_timer() is None
    # A forged GoClear is dropped.
    a.receive(encode_packet(3, b.ssrc, m.GoClear(bytes(8)).encode()), 11.0)
    assert a.drops["bad_mac"] == 1 and not a.datagrams_to_send(11.0)


def _sasrelay_for(a: ZrtpSession) -> m.SasRelay:
    """An SASrelay as a's peer could send it: MACed over its encrypted part like its confirm_mac (§5.13)."""
    x = a._x
    assert x is not None and x.keys is not None
    encrypted = bytes(40)
    return m.SasRelay(crypto.mac64(x.choice.hash, x.peer_mac_key, encrypted), bytes(16), encrypted)


def test_forged_sasrelay_is_dropped_unanswered() -> None:
    # Unauthenticated, it must not make us send anything: an Error in SECURE could end the call at the peer.
    a, b = _secure_pair()
    genuine = _sasrelay_for(a)
    tampered = m.SasRelay(genuine.mac, genuine.iv, bytes(39) + b"\1")
    for forged in (m.SasRelay(bytes(8), bytes(16), bytes(40)), tampered):
        a.receive(encode_packet(1, b.ssrc, forged.encode()), 10.0)
        assert not a.datagrams_to_send(10.0) and a.get_timer() is None
    assert a.drops["bad_mac"] == 2 and a.state is State.SECURE


def test_sasrelay_from_a_peer_that_is_no_mitm_is_acknowledged_not_rendered() -> None:
    # §5.13: without the M flag in the peer's Hello the relayed SAS is not rendered; RelayACK, no Error.
    a, b = _secure_pair()
    a.receive(encode_packet(1, b.ssrc, _sasrelay_for(a).encode()), 10.0)
    (packet,) = a.datagrams_to_send(10.0)
    assert message_of(packet) == m.RelayAck()
    assert a.state is State.SECURE and a.next_event() is None


def test_sasrelay_from_a_mitm_is_refused() -> None:
    # A PBX that said it relays SAS (M flag) is no MiTM we trust: Error 0x63 until ErrorACK, keys kept.
    a, b = _secure_pair()
    hello = a._peer_hello
    assert hello is not None
    a._peer_hello = dataclasses.replace(hello, mitm=True)
    a.receive(encode_packet(1, b.ssrc, _sasrelay_for(a).encode()), 10.0)
    (packet,) = a.datagrams_to_send(10.0)
    assert message_of(packet) == m.Error(ZrtpErrorCode.UNTRUSTED_MITM)
    assert a.state is State.SECURE and a.get_timer() is not None


def test_peer_error_is_acknowledged() -> None:
    a = make(1)
    a.start(0.0)
    a.datagrams_to_send(0.0)
    a.receive(encode_packet(1, 2, m.Error(0xA0).encode()), 0.01)
    assert a.next_event() == Failed("peer sent Error 0xa0", 0xA0)
    (packet,) = a.datagrams_to_send(0.01)
    assert message_of(packet) == m.ErrorAck()
    assert a.get_timer() is None and a.state is State.FAILED


@pytest.mark.parametrize(("sent", "named"), [(0xA0, ZrtpErrorCode.UNAVAILABLE), (0x77, None)])
def test_peer_error_code_is_named_when_known(sent: int, named: ZrtpErrorCode | None) -> None:
    a = make(1)
    a.start(0.0)
    a.receive(encode_packet(1, 2, m.Error(sent).encode()), 0.01)
    event = a.next_event()
    assert isinstance(event, Failed) and event.error_code == sent
    assert type(event.error_code) is (ZrtpErrorCode if named else int)
    assert repr(event.error_code) == (repr(named) if named else repr(sent))


def test_garbage_is_counted_not_raised() -> None:
    a = make(1)
    for junk in (b"", b"\x80" * 40, encode_packet(1, 2, m.HelloAck().encode())[:-1] + b"\x00"):
        a.receive(junk, 0.0)
    assert a.drops["bad_length"] + a.drops["not_zrtp"] + a.drops["bad_crc"] == 3


def test_conf2ack_lost_srtp_counts_as_ack() -> None:
    a, b = make(1, "initiator"), make(2, "responder")
    kill = edit(b"Conf2ACK", lambda body: body.__setitem__(slice(16, 24), b"Bogus   "))
    run = run_pair(a, b, mutate=kill, mutate_rate=1.0, until=0.5)
    assert a.state is State.WAIT_CONF2ACK and b.state is State.SECURE
    a.srtp_received(run.end)
    assert isinstance(a.next_event(), SecureReady)


def _hellos_exchanged(a: ZrtpSession, b: ZrtpSession) -> None:
    a.start(0.0)
    b.start(0.0)
    for _ in range(2):
        for src, dst in ((a, b), (b, a)):
            for packet in src.datagrams_to_send(0.0):
                dst.receive(packet, 0.0)
            while (event := dst.next_event()) is not None:
                answer(dst, event, 0.0)


@pytest.mark.parametrize(("ka", "value_len"), [(b"Prsh", 16), (b"Mult", 16)])
def test_non_dh_commit_asks_for_dh_mode(ka: bytes, value_len: int) -> None:
    a, b = make(1, "responder"), make(2, "responder")
    _hellos_exchanged(a, b)
    commit = m.Commit(
        a._chain.h2,
        a.zid,
        b"S256",
        b"AES1",
        b"HS80",
        ka,
        b"B32 ",
        bytes(value_len),
        bytes(8) if ka == b"Prsh" else b"",
    )
    b.receive(encode_packet(9, a.ssrc, commit.encode()), 0.1)
    assert b.next_event() == Failed(
        "preshared/multistream Commit: DH mode required", ZrtpErrorCode.NO_SHARED_SECRET
    )
    assert message_of(b.datagrams_to_send(0.1)[-1]) == m.Error(ZrtpErrorCode.NO_SHARED_SECRET)


def test_ssrc_collision() -> None:
    a = ZrtpSession(bytes([1]) * 12, ssrc=5)
    b = ZrtpSession(bytes([2]) * 12, ssrc=5)
    run = run_pair(a, b)
    assert_failed_cleanly(run, a, b, ZrtpErrorCode.SSRC_COLLISION)


def test_receive_before_start_announces_us() -> None:
    a, b = make(1), make(2)
    b.start(0.0)
    (hello,) = b.datagrams_to_send(0.0)
    a.receive(hello, 0.01)
    types = [message_of(p).encode()[4:12] for p in a.datagrams_to_send(0.01)]
    assert types == [b"Hello   ", b"HelloACK"]


def test_zrtp_hash_attribute() -> None:
    a = make(1)
    assert a.zrtp_hash_attribute() == "1.10 " + hashlib.sha256(a.hello_message).hexdigest()


def test_injected_error_after_secure_keeps_keys() -> None:
    a, _ = _secure_pair()
    a.receive(encode_packet(1, 2, m.Error(0x20).encode()), 10.0)
    assert message_of(a.datagrams_to_send(10.0)[0]) == m.ErrorAck()
    assert a.state is State.SECURE and a.next_event() is None
    assert a.drops["error_after_secure"] == 1


UNSOLICITED = [m.ClearAck(), m.RelayAck(), m.PingAck(b"1.10", b"ABCDEFGH", b"HGFEDCBA", 7)]


@pytest.mark.parametrize("state", list(State))
def test_the_dispatch_table_drops_what_a_state_does_not_expect(state: State) -> None:
    """The state check is made once, at dispatch: a refused message reaches no handler and changes nothing."""
    refused: list[m.Message] = [*UNSOLICITED]
    if state is not State.DISCOVERY:
        refused.append(m.HelloAck())
    if state is not State.WAIT_CONF2ACK:
        refused.append(m.Conf2Ack())
    if state is not State.SECURE:
        refused.append(m.GoClear(bytes(8)))
    terminal = state in (State.FAILED, State.CLOSED, State.ERROR_SENT)
    a = make(1)
    a.start(0.0)
    a.datagrams_to_send(0.0)
    a.state = state
    for n, msg in enumerate(refused):
        a.receive(encode_packet(n, 2, msg.encode()), 0.1)
    if state is State.CLOSED:  # a closed session does not even parse
        assert sum(a.drops.values()) == 0
    else:
        assert a.drops == {"after_end" if terminal else "unexpected": len(refused)}
    assert a.state is state and a.next_event() is None and a.datagrams_to_send(0.1) == []


@pytest.mark.parametrize("state", [State.FAILED, State.ERROR_SENT])
def test_error_and_ping_are_answered_even_after_the_end(state: State) -> None:
    a = make(1)
    a.state = state
    a.receive(encode_packet(1, 2, m.Ping(b"1.10", b"PINGHASH").encode()), 0.0)
    a.receive(encode_packet(2, 2, m.Error(ZrtpErrorCode.TIMEOUT).encode()), 0.0)
    sent = [message_of(p) for p in a.datagrams_to_send(0.0)]
    assert [type(x) for x in sent] == [m.PingAck, m.ErrorAck] and not a.drops


def test_every_handled_message_has_its_states_and_the_other_way_round() -> None:
    assert set(handshake._ROUTES) == set(ACCEPTED_IN)


def test_state_table_is_closed_and_refuses_other_moves() -> None:
    assert all(t in TRANSITIONS for targets in TRANSITIONS.values() for t in targets)
    assert TRANSITIONS[State.CLOSED] == frozenset()
    a, b = _secure_pair()
    assert a.state is State.SECURE
    with pytest.raises(RuntimeError, match="secure -> discovery is no transition"):
        a._move(State.DISCOVERY)
    b.close()
    with pytest.raises(RuntimeError, match="closed -> secure"):
        b._move(State.SECURE)
