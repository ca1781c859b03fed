"""One interface over the two key agreements (ZRTP on the LAN, DTLS-SRTP through a server).

Both are sans-I/O cores with their own events; a KeyAgreement wraps one and reports the same three things to
the call core: keys are ready (with what the user is shown), an alarm (someone may be in the middle), or a
failure. The adapters read no clock and do no I/O: retained secrets for ZRTP come from a lookup the shell
gives (it reads the trust cache), and packets go out through `datagrams_to_send`.

On the server path DtlsKeying may carry a ZrtpKeying: when the peer's SDP has a=zrtp-hash, a ZRTP exchange
runs over the same flow once DTLS-SRTP is done, with the DTLS session's exporter value as its auxiliary
secret. It gives the words and the cache as on the LAN; the SRTP keys stay DTLS's.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from zcall import dtls, events
from zcall.events import AlertKind, EndCause
from zcall.identity import Identity
from zcall.media.demux import PacketKind, classify
from zcall.media.srtpkeys import SrtpKeys
from zcall.net import Addr
from zcall.sip.offeranswer import AudioParams
from zcall.zrtp import events as zrtp_events
from zcall.zrtp.cache import RetainedSecrets
from zcall.zrtp.events import CacheState
from zcall.zrtp.session import ZrtpSession
from zcall.zrtp.states import State


@dataclass(frozen=True)
class ZrtpFacts:
    """What ZRTP learned about the peer, for the trust policy."""

    peer_zid: bytes
    cache: CacheState
    cached_verified: bool  # the trust entry said verified (and its secret is live)
    peer_verified: bool  # the peer's V flag in its Confirm
    new_rs1: bytes | None = field(repr=False)
    rs1_expires_in: int
    # On the server path: whether ZRTP's auxiliary secret (the DTLS exporter value) matched the peer's.
    # False means two DTLS sessions (someone terminates DTLS in between); None: nothing to bind (the LAN).
    channel_bound: bool | None = None


@dataclass(frozen=True)
class KeysReady:
    tx: SrtpKeys = field(repr=False)
    rx: SrtpKeys = field(repr=False)
    secure: events.Secure  # `verified` is decided by the call core
    zrtp: ZrtpFacts | None = None


@dataclass(frozen=True)
class KeyAlarm:
    """The key agreement saw something only a man in the middle (or a broken peer) does."""

    alert: AlertKind
    message: str
    fatal: bool  # the key agreement is over; otherwise keys may still come (cache mismatch)
    mutes: bool = True  # the microphone waits for the words (nothing to wait for on a call without words)


@dataclass(frozen=True)
class KeyFailed:
    reason: str
    cause: EndCause = EndCause.KEYS_FAILED


@dataclass(frozen=True)
class SecretsWanted:
    """ZRTP met a peer whose retained secrets it was not given: the shell reads them from the cache."""

    peer_zid: bytes


@dataclass(frozen=True)
class ReceiveKeys:
    """A ZRTP initiator checked Confirm1: the shell installs these receive keys now, so the responder's first
    authentic SRTP can stand in for a lost Conf2ACK (RFC 6189 §4.6; report it with srtp_received)."""

    rx: SrtpKeys = field(repr=False)


KeyEvent = KeysReady | KeyAlarm | KeyFailed | SecretsWanted | ReceiveKeys

CACHE_MISMATCH_TEXT = (
    "This device's ZRTP secret does not match the one remembered from earlier calls: someone may be in the "
    "middle, or the peer reset its identity. Audio stays muted. Read the words to each other; hang up if "
    "they differ."
)
HELLO_HASH_TEXT = (
    "The peer's ZRTP Hello does not match the hash its SIP offer carried: the signalling was tampered with. "
    "The call is ended and never went secure."
)
FINGERPRINT_TEXT = (
    "The peer's DTLS certificate is not the one its SIP offer named: someone may be in the middle of the "
    "call. It was ended before any audio was sent."
)
PEER_NO_ZRTP = "peer does not support ZRTP"
# Only our own units bind ZRTP to DTLS (RFC 6189 has no such rule): another phone that answers ZRTP over
# DTLS-SRTP gets a call without words, not a false channel_binding_mismatch.
BINDING_CLIENT = b"zcall"
NOT_BINDABLE = "the peer's ZRTP cannot be bound to DTLS-SRTP (not a zcall unit)"
DOWNGRADE_TEXT = (
    "This device was verified, but this call has no words to compare (its ZRTP did not run over the "
    "server): the server or someone on the way may be in the middle. Say nothing you would not say in the "
    "clear, or hang up."
)
MAX_EARLY_ZRTP = 8  # ZRTP packets held while our DTLS handshake finishes (the peer's may finish first)
MAX_EARLY_DTLS = 8  # DTLS datagrams held before the answer says who the peer is (the newest kept)


class KeyAgreement(Protocol):
    """What the shell drives: a sans-I/O core with the common events."""

    def start(self, remote: AudioParams, offerer: bool, now: float) -> None: ...
    def receive(self, data: bytes, now: float) -> None: ...
    def datagrams_to_send(self, now: float) -> list[bytes]: ...
    def get_timer(self) -> float | None: ...
    def handle_timer(self, now: float) -> None: ...
    def next_event(self) -> KeyEvent | None: ...
    def provide_secrets(self, peer_zid: bytes, secrets: RetainedSecrets | None, now: float) -> None: ...
    def confirm_words(self, verified: bool) -> None: ...
    def srtp_received(self, now: float) -> None: ...
    def peer_gone(self, now: float) -> None: ...
    def close(self, now: float) -> None: ...


class ZrtpKeying:
    """ZRTP (RFC 6189) for one call. The shell reads the trust cache: secrets for the expected peer before
    the exchange (`provide_secrets`), or when the session names another peer (SecretsWanted)."""

    def __init__(
        self, zid: bytes, ssrc: int, call_id: str, key_agreements: Sequence[str], sas_types: Sequence[str]
    ) -> None:
        self.session = ZrtpSession(
            zid, ssrc=ssrc, key_agreements=tuple(key_agreements), sas_types=tuple(sas_types)
        )
        self._call_id = call_id
        self._bound = False  # an auxiliary secret binds this exchange to a DTLS session
        self._failing: KeyFailed | None = None  # held while our Error awaits its ErrorACK

    def hello_hash(self) -> str:
        return self.session.hello_hash()

    def zrtp_hash_attribute(self) -> str:
        """Our SDP a=zrtp-hash value: the ZRTP version and our Hello's hash (RFC 6189 §8.1)."""
        return self.session.zrtp_hash_attribute()

    def bind_channel(self, value: bytes) -> None:
        """Require the peer to hold this value too (ZRTP's auxiliary secret): before start()."""
        self.session.set_aux_secret(value)
        self._bound = True

    def start(self, remote: AudioParams, offerer: bool, now: float) -> None:
        if remote.zrtp_hash:
            self.session.set_peer_hello_hash(remote.zrtp_hash, now)
        self.session.start(now)

    def provide_secrets(self, peer_zid: bytes, secrets: RetainedSecrets | None, now: float) -> None:
        self.session.provide_secrets(peer_zid, secrets, now)

    def receive(self, data: bytes, now: float) -> None:
        self.session.receive(data, now)

    def datagrams_to_send(self, now: float) -> list[bytes]:
        return self.session.datagrams_to_send(now)

    def get_timer(self) -> float | None:
        return self.session.get_timer()

    def handle_timer(self, now: float) -> None:
        self.session.handle_timer(now)

    def confirm_words(self, verified: bool) -> None:
        self.session.set_sas_verified(verified)

    def srtp_received(self, now: float) -> None:
        self.session.srtp_received(now)

    def peer_gone(self, now: float) -> None:
        self.session.peer_gone()

    def close(self, now: float) -> None:
        self.session.close()

    def next_event(self) -> KeyEvent | None:
        while (event := self.session.next_event()) is not None:
            translated = self._translate(event)
            if isinstance(translated, KeyFailed) and self.session.state is State.ERROR_SENT:
                # §6: our Error is resent on T2 until ErrorACK; ending the call now would close the session
                # after one Error. The failure is reported once it is acknowledged or the resends run out.
                self._failing = translated
            elif translated is not None:
                return translated
        if self._failing is not None and self.session.state is not State.ERROR_SENT:
            failed, self._failing = self._failing, None
            return failed
        return None

    def _translate(self, event: zrtp_events.Event) -> KeyEvent | None:
        if isinstance(event, zrtp_events.PeerIdentified):
            if self._bound and not event.client_id.startswith(BINDING_CLIENT):
                self.session.close()
                return KeyFailed(NOT_BINDABLE, EndCause.NO_ZRTP)
            return SecretsWanted(event.peer_zid) if event.needs_secrets else None
        if isinstance(event, zrtp_events.ReceiveKeysReady):
            return ReceiveKeys(event.receiver_keys())
        if isinstance(event, zrtp_events.SecureReady):
            return self._ready(event)
        if isinstance(event, zrtp_events.CacheMismatch):
            return KeyAlarm(AlertKind.CACHE_MISMATCH, CACHE_MISMATCH_TEXT, fatal=False)
        if isinstance(event, zrtp_events.HelloHashMismatch):
            return KeyAlarm(AlertKind.ZRTP_HASH_MISMATCH, HELLO_HASH_TEXT, fatal=True)
        if event.reason == "no answer to Hello":
            return KeyFailed(PEER_NO_ZRTP, EndCause.NO_ZRTP)
        return KeyFailed(f"ZRTP failed: {event.reason}")

    def _ready(self, ready: zrtp_events.SecureReady) -> KeysReady:
        cache = ready.cache
        secure = events.Secure(
            id=self._call_id, method="zrtp", srtp_profile=ready.srtp_profile, sas=ready.sas_text,
            sas_type=ready.sas_type, sas_words=tuple(ready.sas_words),
            hash=ready.hash, cipher=ready.cipher, auth=ready.auth, key_agreement=ready.key_agreement,
            peer_zid=ready.peer_zid.hex(), cache=cache, verified=False, verifiable=True,
        )  # fmt: skip
        facts = ZrtpFacts(
            peer_zid=ready.peer_zid,
            cache=cache,
            cached_verified=ready.local_verified,
            peer_verified=ready.peer_verified,
            new_rs1=ready.new_rs1,
            rs1_expires_in=ready.rs1_expires_in,
            channel_bound=ready.aux_secret == "match" if self._bound else None,
        )
        return KeysReady(
            tx=ready.sender_keys(),
            rx=ready.receiver_keys(),
            secure=secure,
            zrtp=facts,
        )


class DtlsKeying:
    """DTLS-SRTP (RFC 5763/5764) for one call: a=setup picks the roles, the SDP fingerprint pins the peer.

    With `zrtp` (between zcall units), and when the peer's SDP carries a=zrtp-hash too, the keys wait for a
    ZRTP exchange over the same flow, bound to this DTLS session by its exporter value (ZRTP's auxiliary
    secret, which both ends require): its words, cache state and alarms come with the DTLS keys. A peer
    that does not speak ZRTP gets a call without words (`verifiable` false); if it was verified, that is a
    `downgrade`."""

    def __init__(self, identity: Identity, call_id: str, zrtp: ZrtpKeying | None = None) -> None:
        self._identity = identity
        self._call_id = call_id
        self.session: dtls.DtlsSrtpSession | None = None
        self._failed: KeyFailed | None = None  # the roles could not be agreed
        self.zrtp = zrtp
        self._remote: AudioParams | None = None  # set by start(); a=zrtp-hash there asks for the words
        self._offerer = False
        self._dtls_keys: dtls.DtlsSecure | None = None  # held while ZRTP runs
        self._zrtp_running = False
        self._keys_out = False  # KeysReady was reported
        self._early_zrtp: deque[bytes] = deque(maxlen=MAX_EARLY_ZRTP)
        self._early_dtls: deque[tuple[bytes, Addr]] = deque(maxlen=MAX_EARLY_DTLS)
        self._was_verified = False  # the trust cache said verified for the device this call was made for
        self._events: deque[KeyEvent] = deque()

    def fingerprint(self) -> str:
        return dtls.fingerprint_of(self._identity.certificate)

    def hello_hash(self) -> str | None:
        return self.zrtp.hello_hash() if self.zrtp is not None else None

    def _words_expected(self) -> bool:
        return self.zrtp is not None and self._remote is not None and bool(self._remote.zrtp_hash)

    def start(self, remote: AudioParams, offerer: bool, now: float) -> None:
        self._remote, self._offerer = remote, offerer
        local_setup = "actpass" if offerer else dtls.answer_setup(remote.setup or "actpass")
        try:
            role = dtls.role_for(local_setup, remote.setup or "actpass", offerer)
        except dtls.SetupError as exc:
            self._failed = KeyFailed(f"unusable a=setup: {exc}")
            return
        fingerprints = list(remote.fingerprints)
        if self.session is not None and self.session.role == role:
            # The answerer's ClientHello beat its SDP answer here: it has been answered; now pin the peer.
            self.session.set_remote_fingerprint(fingerprints, now)
            self._step(now)
            return
        cert, key = self._identity.certificate, self._identity.private_key
        self.session = dtls.DtlsSrtpSession(role, cert, key, fingerprints)
        if role == "client":
            self.session.start(now)
        peer = (remote.host, remote.port)
        for data, source in self._early_dtls:
            if source == peer:  # the answerer's ClientHello that beat its answer: answered now
                self.session.receive(data, now)
        self._early_dtls.clear()
        self._step(now)

    def hold_early(self, data: bytes, source: Addr) -> None:
        """A DTLS datagram before the answer: offering actpass, the answerer usually goes active and its
        ClientHello may beat its SDP answer. No session starts on it (anyone can send to our port, and the
        first sender must not own the handshake); start() hands on what came from the address the answer
        names, and a sender crowded out of this small buffer is heard at its next retransmission."""
        if self.session is None:
            self._early_dtls.append((data, source))

    def provide_secrets(self, peer_zid: bytes, secrets: RetainedSecrets | None, now: float) -> None:
        # Up front, for the device the user chose: if it was verified, a call without words is a downgrade.
        self._was_verified |= secrets is not None and secrets.verified
        if self.zrtp is not None:
            self.zrtp.provide_secrets(peer_zid, secrets, now)
            self._step(now)

    def receive(self, data: bytes, now: float) -> None:
        if classify(data) is PacketKind.ZRTP:
            if self._zrtp_running and self.zrtp is not None:
                self.zrtp.receive(data, now)
            elif self.zrtp is not None and self._dtls_keys is None and (
                self._remote is None or self._words_expected()
            ):
                self._early_zrtp.append(data)  # the peer's DTLS finished first: its Hello waits for ours
        elif self.session is not None:
            self.session.receive(data, now)
        self._step(now)

    def datagrams_to_send(self, now: float) -> list[bytes]:
        out = self.session.datagrams_to_send(now) if self.session is not None else []
        if self._zrtp_running and self.zrtp is not None:
            out += self.zrtp.datagrams_to_send(now)
        return out

    def get_timer(self) -> float | None:
        timers = [self.session.get_timer() if self.session is not None else None]
        if self._zrtp_running and self.zrtp is not None:
            timers.append(self.zrtp.get_timer())
        return min((t for t in timers if t is not None), default=None)

    def handle_timer(self, now: float) -> None:
        if self.session is not None:
            self.session.handle_timer(now)
        if self._zrtp_running and self.zrtp is not None:
            self.zrtp.handle_timer(now)
        self._step(now)

    def confirm_words(self, verified: bool) -> None:
        if self.zrtp is not None:
            self.zrtp.confirm_words(verified)

    def srtp_received(self, now: float) -> None:
        pass  # DTLS keys the media: SRTP says nothing about ZRTP's Conf2ACK

    def peer_gone(self, now: float) -> None:
        if self.zrtp is not None:
            self.zrtp.peer_gone(now)

    def close(self, now: float) -> None:
        if self.zrtp is not None:
            self.zrtp.close(now)
        self._zrtp_running = False
        if self.session is not None:
            self.session.close(now)  # close_notify, so the peer stops at once

    def next_event(self) -> KeyEvent | None:
        if self._failed is not None:
            failed, self._failed = self._failed, None
            return failed
        return self._events.popleft() if self._events else None

    def _step(self, now: float) -> None:
        """Act on what the two cores reported (both are fed and timed alike, with the shell's `now`)."""
        while self.session is not None and (event := self.session.next_event()) is not None:
            self._on_dtls(event, now)
        while self._zrtp_running and self.zrtp is not None and (zrtp_event := self.zrtp.next_event()):
            self._on_zrtp(zrtp_event)

    def _on_dtls(self, event: dtls.DtlsEvent, now: float) -> None:
        if isinstance(event, dtls.DtlsSecure):
            self._dtls_keys = event
            if self._words_expected():
                self._start_zrtp(event.channel_binding, now)
            else:
                self._without_words()
        elif isinstance(event, dtls.FingerprintMismatch):
            self._events.append(KeyAlarm(AlertKind.FINGERPRINT_MISMATCH, FINGERPRINT_TEXT, fatal=True))
        elif isinstance(event, dtls.DtlsFailed):
            self._events.append(KeyFailed(f"DTLS-SRTP failed: {event.reason}"))

    def _start_zrtp(self, binding: bytes, now: float) -> None:
        assert self.zrtp is not None and self._remote is not None
        self.zrtp.bind_channel(binding)
        self._zrtp_running = True
        self.zrtp.start(self._remote, self._offerer, now)
        while self._early_zrtp:
            self.zrtp.receive(self._early_zrtp.popleft(), now)

    def _on_zrtp(self, event: KeyEvent) -> None:
        if self._keys_out and isinstance(event, KeysReady | KeyFailed):
            return
        if isinstance(event, KeysReady) and event.zrtp is not None:
            assert self._dtls_keys is not None
            keys = self._dtls_keys
            secure = replace(
                event.secure, method="dtls-srtp", srtp_profile=keys.srtp_profile, cipher=None, auth=None,
                fingerprint_ok=keys.peer_fingerprint_ok,
            )  # fmt: skip
            self._keys_out = True
            self._events.append(KeysReady(keys.sender_keys(), keys.receiver_keys(), secure, event.zrtp))
        elif isinstance(event, KeyFailed):
            # The peer said it speaks ZRTP and it did not happen (dropped on the way, or it failed): the
            # call goes on keyed by DTLS, without words, and says so.
            self._zrtp_running = False
            self._without_words()
        elif isinstance(event, KeyAlarm) and event.fatal:
            self._keys_out = True  # the call ends on it; the ZRTP failure that follows changes nothing
            self._events.append(event)
        elif not isinstance(event, ReceiveKeys):  # SRTP keys stay DTLS's
            self._events.append(event)  # SecretsWanted for the shell; cache or Hello-hash alarms

    def _without_words(self) -> None:
        keys = self._dtls_keys
        assert keys is not None
        if self._was_verified:
            self._events.append(KeyAlarm(AlertKind.DOWNGRADE, DOWNGRADE_TEXT, fatal=False, mutes=False))
        secure = events.Secure(
            id=self._call_id, method="dtls-srtp", srtp_profile=keys.srtp_profile,
            fingerprint_ok=keys.peer_fingerprint_ok, verifiable=False,
        )  # fmt: skip
        self._keys_out = True
        self._events.append(KeysReady(keys.sender_keys(), keys.receiver_keys(), secure))
