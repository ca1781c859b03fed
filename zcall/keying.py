"""One interface over the two key agreements (ZRTP on the LAN, DTLS-SRTP through a server).

Both are sans-I/O cores with their own events; a KeyAgreement wraps one and reports the same three things to
the call core: keys are ready (with what the user is shown), an alarm (someone may be in the middle), or a
failure. The adapters read no clock and do no I/O: retained secrets for ZRTP come from a lookup the shell
gives (it reads the trust cache), and packets go out through `datagrams_to_send`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from zcall import dtls, events
from zcall.events import AlertKind, EndCause
from zcall.identity import Identity
from zcall.media.srtpkeys import SrtpKeys, SrtpProfile
from zcall.sip.sdp import AudioParams
from zcall.zrtp import events as zrtp_events
from zcall.zrtp.cache import RetainedSecrets
from zcall.zrtp.session import ZrtpSession

CacheState = Literal["new", "match", "mismatch"]


@dataclass(frozen=True)
class ZrtpFacts:
    """What ZRTP learned about the peer, for the trust policy."""

    peer_zid: bytes
    cache: CacheState
    cached_verified: bool  # the trust entry said verified (and its secret is live)
    peer_verified: bool  # the peer's V flag in its Confirm
    new_rs1: bytes | None = field(repr=False)
    rs1_expires_in: int


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


class KeyAgreement(Protocol):
    """What the shell drives: a sans-I/O core with the common events."""

    def start(self, remote: AudioParams, offerer: bool, now: float) -> None: ...
    def receive(self, data: bytes, now: float) -> None: ...
    def datagrams_to_send(self, now: float) -> list[bytes]: ...
    def get_timer(self) -> float | None: ...
    def handle_timer(self, now: float) -> None: ...
    def next_event(self) -> KeyEvent | None: ...
    def confirm_words(self, verified: bool) -> None: ...
    def srtp_received(self, now: float) -> None: ...
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

    def hello_hash(self) -> str:
        return self.session.hello_hash()

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

    def close(self, now: float) -> None:
        self.session.close()

    def next_event(self) -> KeyEvent | None:
        while (event := self.session.next_event()) is not None:
            translated = self._translate(event)
            if translated is not None:
                return translated
        return None

    def _translate(self, event: zrtp_events.Event) -> KeyEvent | None:
        if isinstance(event, zrtp_events.PeerIdentified):
            return SecretsWanted(event.peer_zid) if event.needs_secrets else None
        if isinstance(event, zrtp_events.ReceiveKeysReady):
            return ReceiveKeys(SrtpKeys(SrtpProfile(event.srtp_profile), event.remote_key, event.remote_salt))
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
        profile = SrtpProfile(ready.srtp_profile)
        cache: CacheState = (
            "match" if ready.cache == "match" else "mismatch" if ready.cache == "mismatch" else "new"
        )
        secure = events.Secure(
            id=self._call_id, method="zrtp", srtp_profile=ready.srtp_profile, sas=ready.sas_text,
            sas_type="B256" if ready.sas_type == "B256" else "B32", sas_words=tuple(ready.sas_words),
            hash=ready.hash, cipher=ready.cipher, auth=ready.auth, key_agreement=ready.key_agreement,
            peer_zid=ready.peer_zid.hex(), cache=cache, verified=False,
        )  # fmt: skip
        facts = ZrtpFacts(
            peer_zid=ready.peer_zid,
            cache=cache,
            cached_verified=ready.local_verified,
            peer_verified=ready.peer_verified,
            new_rs1=ready.new_rs1,
            rs1_expires_in=ready.rs1_expires_in,
        )
        return KeysReady(
            tx=SrtpKeys(profile, ready.local_key, ready.local_salt),
            rx=SrtpKeys(profile, ready.remote_key, ready.remote_salt),
            secure=secure,
            zrtp=facts,
        )


class DtlsKeying:
    """DTLS-SRTP (RFC 5763/5764) for one call: a=setup picks the roles, the SDP fingerprint pins the peer."""

    def __init__(self, identity: Identity, call_id: str) -> None:
        self._identity = identity
        self._call_id = call_id
        self.session: dtls.DtlsSrtpSession | None = None
        self._failed: KeyFailed | None = None  # the roles could not be agreed

    def fingerprint(self) -> str:
        return dtls.fingerprint_of(self._identity.certificate)

    def start(self, remote: AudioParams, offerer: bool, now: float) -> None:
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
            return
        cert, key = self._identity.certificate, self._identity.private_key
        self.session = dtls.DtlsSrtpSession(role, cert, key, fingerprints)
        if role == "client":
            self.session.start(now)

    def accept_early(self) -> None:
        """Offering actpass, the answerer usually goes active and its ClientHello may arrive before its
        answer: be the server now, and hold the keys until the fingerprint arrives."""
        if self.session is None:
            cert, key = self._identity.certificate, self._identity.private_key
            self.session = dtls.DtlsSrtpSession("server", cert, key)

    def receive(self, data: bytes, now: float) -> None:
        if self.session is not None:
            self.session.receive(data, now)

    def datagrams_to_send(self, now: float) -> list[bytes]:
        return self.session.datagrams_to_send(now) if self.session is not None else []

    def get_timer(self) -> float | None:
        return self.session.get_timer() if self.session is not None else None

    def handle_timer(self, now: float) -> None:
        if self.session is not None:
            self.session.handle_timer(now)

    def confirm_words(self, verified: bool) -> None:
        pass  # no words on a DTLS-only call

    def srtp_received(self, now: float) -> None:
        pass

    def close(self, now: float) -> None:
        if self.session is not None:
            self.session.close(now)  # close_notify, so the peer stops at once

    def next_event(self) -> KeyEvent | None:
        if self._failed is not None:
            failed, self._failed = self._failed, None
            return failed
        while self.session is not None and (event := self.session.next_event()) is not None:
            if isinstance(event, dtls.DtlsSecure):
                secure = events.Secure(
                    id=self._call_id, method="dtls-srtp", srtp_profile=event.srtp_profile,
                    fingerprint_ok=event.peer_fingerprint_ok,
                )  # fmt: skip
                return KeysReady(event.sender_keys(), event.receiver_keys(), secure)
            if isinstance(event, dtls.FingerprintMismatch):
                return KeyAlarm(AlertKind.FINGERPRINT_MISMATCH, FINGERPRINT_TEXT, fatal=True)
            if isinstance(event, dtls.DtlsFailed):
                return KeyFailed(f"DTLS-SRTP failed: {event.reason}")
        return None
