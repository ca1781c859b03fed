"""One call: its media port, the key agreement run on that port, and what the user is told about it.

The SIP dialog lives in the phone's UserAgent (engine.py); a Call owns everything else of one call. The key
agreement is ZRTP (LAN calls: SAS words, retained secrets) or DTLS-SRTP (calls through a server: the peer's
certificate pinned by the SDP fingerprint). Both are sans-I/O cores: this class feeds them the key packets the
media socket demultiplexed, sends what they hand out, runs their timer on the event loop, and turns their
events into the contract's events. Audio flows only once keys exist, and a ZRTP call stays muted after a
cache mismatch until the user says the words match.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from zcall import dtls, events
from zcall.identity import Identity
from zcall.media.audio import AudioSink, open_sink, open_source
from zcall.media.srtp import SrtpKeys, SrtpProfile
from zcall.media.stream import MediaSession
from zcall.net import Addr
from zcall.settings import PhoneSettings
from zcall.sip.sdp import AudioParams, LocalAudio, SessionDescription
from zcall.zrtp.cache import CacheError, RetainedSecrets, StoredBefore, ZrtpCache
from zcall.zrtp.events import (
    CacheMismatch,
    Failed,
    HelloHashMismatch,
    PeerIdentified,
    ReceiveKeysReady,
    SecureReady,
)
from zcall.zrtp.events import Event as ZrtpEvent
from zcall.zrtp.session import ZrtpSession

Direction = Literal["out", "in"]

# How long ZRTP or DTLS-SRTP may take before the call ends (a ZRTP Hello gives up by itself after ~4 s).
KEYS_DEADLINE_S = 20.0
PEER_NO_ZRTP = "peer does not support ZRTP"
Method = Literal["zrtp", "dtls-srtp"]


@dataclass
class CallContext:
    """What every call needs from the phone."""

    zid: bytes
    identity: Identity  # its certificate and key authenticate DTLS-SRTP
    settings: PhoneSettings
    cache: ZrtpCache
    emit: Callable[[events.Event], None]
    end_call: Callable[[Call, str], None]  # asks the phone to end the SIP dialog and this call
    volume: int = 100  # playback volume in percent for new calls (Phone.set_volume changes it)


class GainSink:
    """Scales what the far end says by the user's volume before it reaches the real sink."""

    def __init__(self, sink: AudioSink, percent: int) -> None:
        self._sink = sink
        self.percent = percent  # one int, swapped atomically: the playout path only reads it

    def write_frame(self, pcm: bytes) -> None:
        percent = self.percent
        if percent != 100:
            samples = np.frombuffer(pcm, np.int16).astype(np.int32) * percent // 100
            pcm = np.clip(samples, -32768, 32767).astype(np.int16).tobytes()
        self._sink.write_frame(pcm)

    def close(self) -> None:
        self._sink.close()


def new_call_id() -> str:
    return secrets.token_hex(4)


class Call:
    def __init__(
        self,
        ctx: CallContext,
        direction: Direction,
        peer: str,
        sip_call_id: str | None = None,
        method: Method = "zrtp",
    ) -> None:
        self.ctx = ctx
        self.method: Method = method
        self.dtls: dtls.DtlsSrtpSession | None = None
        self.id = new_call_id()
        self.direction = direction
        self.peer = peer
        self.sip_call_id = sip_call_id
        self.state: events.CallState = "dialing" if direction == "out" else "incoming"
        self.started_at = time.monotonic()
        self.secure_at: float | None = None
        self.media: MediaSession | None = None
        self.zrtp: ZrtpSession | None = None
        self.remote_media: Addr | None = None
        self.offer: SessionDescription | None = None  # ours (out) or the caller's (in)
        self.local_audio: LocalAudio | None = None  # what our SDP says about our audio
        self.sdp_version = 1
        self.held_by_peer = False
        self.peer_zid: bytes | None = None
        self.cache_state: str | None = None
        self.verified = False
        self.muted_for_mismatch = False
        self.user_muted = False
        self.secure_event: events.Secure | None = None
        self.ended = False
        self.gain: GainSink | None = None
        self._pending_rs1: tuple[bytes, int] | None = None  # held back after a cache mismatch
        self._stored_before: StoredBefore | None = None  # undone if the words of this call differ
        self._timer: asyncio.TimerHandle | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._stats_task: asyncio.Task[None] | None = None

    # --- set-up ---------------------------------------------------------------------------------------

    async def open_media(self, bind_ip: str) -> LocalAudio:
        """Open the call's UDP port and prepare ZRTP; returns what our SDP says about our audio."""
        settings = self.ctx.settings
        source = open_source(settings.audio_in)
        self.gain = GainSink(open_sink(settings.audio_out), self.ctx.volume)
        self.media = MediaSession(source, self.gain, on_key_packet=self._on_key_packet)
        local = await self.media.open((bind_ip, settings.rtp_port))
        self.media.set_muted(True)  # nothing is captured for the peer before the call is secure
        if self.method == "dtls-srtp":
            fingerprint = dtls.fingerprint_of(self.ctx.identity.certificate)
            self.local_audio = LocalAudio(host=local[0], port=local[1], mode="dtls", fingerprint=fingerprint)
            return self.local_audio
        self.zrtp = ZrtpSession(
            self.ctx.zid,
            ssrc=int.from_bytes(os.urandom(4), "big"),
            key_agreements=settings.key_agreements,
            sas_types=settings.sas_types,
        )
        self.local_audio = LocalAudio(
            host=local[0], port=local[1], mode="zrtp", zrtp_hash=f"1.10 {self.zrtp.hello_hash()}"
        )
        return self.local_audio

    def start_media(self, remote: AudioParams) -> None:
        """The SDP exchange is done: point media at the peer and start the key agreement there."""
        if self.media is None:
            raise RuntimeError("media not open")
        self.remote_media = (remote.host, remote.port)
        self.media.set_remote(self.remote_media)
        self.media.set_payload_type(remote.payload_type)
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(KEYS_DEADLINE_S, self._keys_deadline)
        if self.method == "dtls-srtp":
            self._start_dtls(remote)
            return
        if self.zrtp is None:
            raise RuntimeError("ZRTP not prepared")
        if remote.zrtp_hash:
            self.zrtp.set_peer_hello_hash(remote.zrtp_hash, self._now())
        self.zrtp.start(self._now())
        self._pump()

    def _start_dtls(self, remote: AudioParams) -> None:
        """RFC 5763: a=setup decides who sends the ClientHello; the SDP fingerprint pins the peer."""
        offerer = self.direction == "out"
        local_setup = "actpass" if offerer else dtls.answer_setup(remote.setup or "actpass")
        try:
            role = dtls.role_for(local_setup, remote.setup or "actpass", offerer)
        except dtls.SetupError as exc:
            self.ctx.end_call(self, f"unusable a=setup: {exc}")
            return
        fingerprints = list(remote.fingerprints)
        if self.dtls is not None and self.dtls.role == role:
            # The answerer's ClientHello beat its SDP answer here: it has been answered; now pin the peer.
            self.dtls.set_remote_fingerprint(fingerprints, self._now())
        else:
            identity = self.ctx.identity
            self.dtls = dtls.DtlsSrtpSession(role, identity.certificate, identity.private_key, fingerprints)
            if role == "client":
                self.dtls.start(self._now())
        self._pump()

    def set_state(self, state: events.CallState) -> None:
        if self.state == state or self.ended:
            return
        self.state = state
        self.ctx.emit(events.Call(id=self.id, state=state, direction=self.direction, peer=self.peer))

    # --- user actions ---------------------------------------------------------------------------------

    def confirm_sas(self, words_match: bool) -> None:
        """The user compared the words: a match marks the peer verified; a difference ends the call."""
        if self.peer_zid is None or self.secure_event is None:
            return
        if not words_match:
            if self._stored_before is not None:
                # Trust revoked: this call's secret goes and the peer is no longer verified.
                try:
                    self.ctx.cache.rollback(self._stored_before)
                except CacheError as exc:
                    self.ctx.emit(events.Error(message=f"could not revoke trust in the cache: {exc}"))
                self._stored_before = None
            self._abort("sas_mismatch", "The words differ: hung up.", "sas mismatch")
            return
        cache = self.ctx.cache
        if self._pending_rs1 is not None:
            rs1, expires_in = self._pending_rs1
            cache.store_new_rs1(self.peer_zid, rs1, expires_in, time.time())
            self._pending_rs1 = None
        cache.set_verified(self.peer_zid, True)
        self.verified = True
        if self.zrtp is not None:
            self.zrtp.set_sas_verified(True)
        self.muted_for_mismatch = False
        self._apply_mute()

    def set_volume(self, percent: int) -> None:
        if self.gain is not None:
            self.gain.percent = percent

    def on_reoffer(self, direction: str) -> None:
        """The peer put us on hold (sendonly/inactive) or took us off it: send nothing while held."""
        self.held_by_peer = direction in ("sendonly", "inactive")
        self._apply_mute()

    def set_user_muted(self, muted: bool) -> None:
        self.user_muted = muted
        self._apply_mute()

    def close(self, reason: str) -> None:
        """Free the port and the keys, and tell the user the call ended."""
        if self.ended:
            return
        self.state = "ended"
        for handle in (self._timer, self._deadline):
            if handle is not None:
                handle.cancel()
        if self._stats_task is not None:
            self._stats_task.cancel()
        if self.zrtp is not None:
            self.zrtp.close()
        if self.dtls is not None and self.media is not None:
            self.dtls.close(self._now())  # close_notify, so the peer stops at once
            for datagram in self.dtls.datagrams_to_send(self._now()):
                self.media.send_key_packet(datagram)
        if self.media is not None:
            self.media.close()
        self._pending_rs1 = None
        duration = time.monotonic() - self.secure_at if self.secure_at is not None else 0.0
        self.ctx.emit(events.Call(id=self.id, state="ended", direction=self.direction, peer=self.peer))
        self.ctx.emit(events.Ended(id=self.id, reason=reason, duration_s=round(duration, 3)))
        self.ended = True

    def stats(self) -> events.Stats | None:
        if self.media is None:
            return None
        snap = self.media.stats()
        return events.Stats(
            id=self.id,
            sent=int(snap.get("sent", 0)),
            received=int(snap.get("received", 0)),
            lost=int(snap.get("lost", 0)),
            jitter_ms=float(snap.get("jitter_ms", 0.0)),
            rtt_ms=snap.get("rtt_ms"),
            jitter_buffer_ms=float(snap.get("jitter_buffer_ms", 0.0)),
            mos=snap.get("mos"),
        )

    def status(self) -> dict[str, object]:
        info: dict[str, object] = {
            "id": self.id,
            "state": self.state,
            "direction": self.direction,
            "peer": self.peer,
            "muted": self.user_muted or self.muted_for_mismatch,
        }
        if self.secure_event is not None:
            info["secure"] = self.secure_event.to_dict()
        return info

    # --- ZRTP plumbing --------------------------------------------------------------------------------

    @staticmethod
    def _now() -> float:
        return time.monotonic()

    def _lookup_secrets(self, peer_zid: bytes) -> RetainedSecrets | None:
        self.peer_zid = peer_zid
        try:
            return self.ctx.cache.lookup(peer_zid, time.time())
        except CacheError as exc:
            # Without the cache this call is a first contact: still secure, the SAS must be read.
            self.ctx.emit(events.Error(message=f"trust cache unreadable, treating the peer as new: {exc}"))
            return None

    def _on_key_packet(self, data: bytes, addr: Addr) -> None:
        if self.ended:
            return
        if self.method == "dtls-srtp" and self.dtls is None and self.direction == "out":
            # Offering actpass, the answerer usually goes active and its ClientHello may arrive before its
            # answer: be the server now, answer at once, and hold the keys until the fingerprint arrives.
            identity = self.ctx.identity
            self.dtls = dtls.DtlsSrtpSession("server", identity.certificate, identity.private_key)
            self.remote_media = addr
            if self.media is not None:
                self.media.set_remote(addr)
        core = self._core()
        if core is None:
            return
        if self.remote_media is not None and addr != self.remote_media:
            # Symmetric RTP: a peer behind a different source port than its SDP said is still our peer
            # (ZRTP authenticates it); follow it so our packets reach it.
            self.remote_media = addr
            if self.media is not None:
                self.media.set_remote(addr)
        core.receive(data, self._now())
        self._pump()

    def _core(self) -> ZrtpSession | dtls.DtlsSrtpSession | None:
        return self.dtls if self.method == "dtls-srtp" else self.zrtp

    def _on_timer(self) -> None:
        self._timer = None
        core = self._core()
        if core is None or self.ended:
            return
        core.handle_timer(self._now())
        self._pump()

    def _pump(self) -> None:
        """Send what the key agreement wants sent, act on its events, re-arm its timer."""
        core = self._core()
        if core is None or self.media is None or self.ended:
            return
        for datagram in core.datagrams_to_send(self._now()):
            self.media.send_key_packet(datagram)
        while (event := core.next_event()) is not None:
            if isinstance(core, dtls.DtlsSrtpSession):
                self._on_dtls_event(event)  # type: ignore[arg-type]
            else:
                self._on_zrtp_event(event)  # type: ignore[arg-type]
            if self.ended:
                return
            for datagram in core.datagrams_to_send(self._now()):  # answering an event may send
                self.media.send_key_packet(datagram)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        due = core.get_timer()
        if due is not None:
            self._timer = asyncio.get_running_loop().call_later(max(0.0, due - self._now()), self._on_timer)

    def _on_zrtp_event(self, event: ZrtpEvent) -> None:
        if isinstance(event, PeerIdentified):
            if event.needs_secrets and self.zrtp is not None:
                self.zrtp.provide_secrets(event.peer_zid, self._lookup_secrets(event.peer_zid), self._now())
        elif isinstance(event, ReceiveKeysReady):
            pass  # the implicit Conf2ACK needs the media path to report authenticated SRTP
        elif isinstance(event, SecureReady):
            self._on_secure(event)
        elif isinstance(event, CacheMismatch):
            self.muted_for_mismatch = True
            self.ctx.emit(
                events.Alert(
                    id=self.id,
                    alert="cache_mismatch",
                    message=(
                        "This device's ZRTP secret does not match the one remembered from earlier calls: "
                        "someone may be in the middle, or the peer reset its identity. Audio stays muted. "
                        "Read the words to each other; hang up if they differ."
                    ),
                )
            )
        elif isinstance(event, HelloHashMismatch):
            self._abort(
                "zrtp_hash_mismatch",
                "The peer's ZRTP Hello does not match the hash its SIP offer carried: "
                "the signalling was tampered with. The call is ended and never went secure.",
                "zrtp hash mismatch",
            )
        elif isinstance(event, Failed):
            reason = PEER_NO_ZRTP if event.reason == "no answer to Hello" else f"ZRTP failed: {event.reason}"
            self.ctx.end_call(self, reason)

    def _on_dtls_event(self, event: dtls.DtlsEvent) -> None:
        if isinstance(event, dtls.DtlsSecure):
            secure = events.Secure(
                id=self.id, method="dtls-srtp", srtp_profile=event.srtp_profile,
                fingerprint_ok=event.peer_fingerprint_ok,
            )  # fmt: skip
            if self._keys_in(event.sender_keys(), event.receiver_keys(), secure):
                self._stats_task = asyncio.get_running_loop().create_task(self._report_stats())
        elif isinstance(event, dtls.FingerprintMismatch):
            self._abort(
                "fingerprint_mismatch",
                "The peer's DTLS certificate is not the one its SIP offer named: someone may be "
                "in the middle of the call. It was ended before any audio was sent.",
                "dtls fingerprint mismatch",
            )
        elif isinstance(event, dtls.DtlsFailed):
            self.ctx.end_call(self, f"DTLS-SRTP failed: {event.reason}")

    def _abort(self, alert: str, message: str, reason: str) -> None:
        """Something on the path is not who it claims to be: say so loudly and end the call."""
        self.ctx.emit(events.Alert(id=self.id, alert=alert, message=message))
        self.ctx.end_call(self, reason)

    def _keys_in(self, tx: SrtpKeys, rx: SrtpKeys, secure: events.Secure) -> bool:
        """Either key agreement finished: SRTP on, the call is secure and the user is told how."""
        if self.media is None:
            return False
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self.media.start_srtp(tx, rx)
        self.secure_at = time.monotonic()
        self.secure_event = secure
        self.set_state("secure")
        self.ctx.emit(secure)
        self._apply_mute()
        return True

    def _on_secure(self, ready: SecureReady) -> None:
        if self.media is None:
            return
        self.peer_zid = ready.peer_zid
        self.cache_state = ready.cache
        try:
            self._remember_peer(ready)
        except CacheError as exc:
            self.ctx.emit(events.Error(message=f"could not update the trust cache: {exc}"))
        profile = SrtpProfile(ready.srtp_profile)
        tx = SrtpKeys(profile, ready.local_key, ready.local_salt)
        rx = SrtpKeys(profile, ready.remote_key, ready.remote_salt)
        secure = events.Secure(
            id=self.id,
            method="zrtp",
            srtp_profile=ready.srtp_profile,
            sas=ready.sas_text,
            sas_type="B256" if ready.sas_type == "B256" else "B32",
            sas_words=tuple(ready.sas_words),
            hash=ready.hash,
            cipher=ready.cipher,
            auth=ready.auth,
            key_agreement=ready.key_agreement,
            peer_zid=ready.peer_zid.hex(),
            cache="mismatch" if ready.cache == "mismatch" else ("match" if ready.cache == "match" else "new"),
            verified=self.verified,
        )
        self._keys_in(tx, rx, secure)
        if ready.cache == "mismatch" and self.ctx.settings.on_mismatch == "hangup":
            self.ctx.end_call(self, "cache mismatch")
            return
        self._stats_task = asyncio.get_running_loop().create_task(self._report_stats())

    def _remember_peer(self, ready: SecureReady) -> None:
        """Cache bookkeeping for a secure call; after a mismatch the new secret waits for the user's word."""
        cache, now = self.ctx.cache, time.time()
        named = any(p.zid == ready.peer_zid and p.name for p in cache.peers())
        label = "".join(c for c in self.peer if c.isprintable())[:128]
        cache.touch(ready.peer_zid, now, name=None if named else label)  # a nickname the user gave stays
        if ready.cache == "mismatch":
            cache.set_verified(ready.peer_zid, False)
            if ready.new_rs1 is not None:
                self._pending_rs1 = (ready.new_rs1, ready.rs1_expires_in)
            self.verified = False
            self.muted_for_mismatch = True
        else:
            known = cache.lookup(ready.peer_zid, now)
            # Both ends must have compared the words on this chain: our cached flag and the peer's V.
            verified_here = ready.cache == "match" and known is not None and known.verified
            self.verified = verified_here and ready.peer_verified
            if ready.new_rs1 is not None:
                self._stored_before = cache.store_new_rs1(
                    ready.peer_zid, ready.new_rs1, ready.rs1_expires_in, now
                )

    def _apply_mute(self) -> None:
        if self.media is not None:
            self.media.set_muted(
                self.user_muted or self.muted_for_mismatch or self.held_by_peer or self.secure_event is None
            )

    def _keys_deadline(self) -> None:
        self._deadline = None
        if self.secure_event is None and not self.ended:
            reason = "DTLS-SRTP did not complete" if self.method == "dtls-srtp" else PEER_NO_ZRTP
            self.ctx.end_call(self, reason)

    async def _report_stats(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            while not self.ended:
                await asyncio.sleep(5.0)
                snapshot = self.stats()
                if snapshot is not None and not self.ended:
                    self.ctx.emit(snapshot)
