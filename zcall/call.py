"""One call's shell: carries out what its CallCore decides (zcall/callcore.py) with real parts.

It owns the call's media (UDP port, audio devices, SRTP), drives its key agreement (ZRTP or DTLS-SRTP) and
the call core through the one CoreDriver, reads the trust cache before the exchange and writes it after,
and sends the call's SIP through its leg. The policy — what to do when — is all in the core.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from zcall import actions as act
from zcall import events
from zcall.callcore import CallCore
from zcall.cues import SoundPlayer
from zcall.driver import CoreDriver
from zcall.events import EndCause
from zcall.identity import Identity
from zcall.keying import (
    DtlsKeying,
    KeyAgreement,
    KeyAlarm,
    KeyEvent,
    ReceiveKeys,
    SecretsWanted,
    ZrtpKeying,
)
from zcall.media import speakerphone
from zcall.media.audio import AudioSource
from zcall.media.audiospec import open_sink, open_source
from zcall.media.demux import PacketKind, classify
from zcall.media.output import CueMixer, GainSink
from zcall.media.stream import MediaSession
from zcall.net import Addr
from zcall.rtcpdtls import RtcpDtls
from zcall.settings import PhoneSettings
from zcall.sip.icesdp import IceDescription
from zcall.sip.offeranswer import AudioParams, LocalAudio
from zcall.sip.uri import SipUri
from zcall.sipleg import SipLeg
from zcall.zrtp.cache import RetainedSecrets, StoredBefore, ZrtpCache
from zcall.zrtp.cachefile import CacheError

if TYPE_CHECKING:
    from zcall.ice import IceAgent

STATS_INTERVAL_S = 5.0
# RED (RFC 2198) is offered after Opus: zcall units take it, other phones keep to Opus with its own FEC.
RED_PAYLOAD_TYPE = 97


@dataclass
class CallContext:
    """What every call needs from the phone."""

    zid: bytes
    identity: Identity  # its certificate and key authenticate DTLS-SRTP
    settings: PhoneSettings
    cache: ZrtpCache
    local_ip: str
    emit: Callable[[events.Event], None]
    # Call this server address instead, expecting this ZID there (the LAN path did not ring).
    fall_back: Callable[[str, bytes | None], None]
    forget: Callable[[Call], None]  # the call ended: drop it
    volume: int = 100  # playback volume in percent for new calls
    sounds: SoundPlayer | None = None  # the phone's sounds, played through the call's output while it is open


def new_call_id() -> str:
    return secrets.token_hex(4)


@dataclass(frozen=True)
class SipSide:
    """Where this call's dialog lives: the leg, the request URI and first hop (outgoing), the Call-ID."""

    leg: SipLeg
    uri: SipUri | None = None
    dest: Addr | None = None


class Call:
    def __init__(
        self, ctx: CallContext, core: CallCore, sip: SipSide, sip_call_id: str | None = None
    ) -> None:
        self.ctx = ctx
        self.core = core
        self.sip = sip
        self.sip_call_id = sip_call_id
        self.media: MediaSession | None = None
        self.gain: GainSink | None = None
        self.output: CueMixer | None = None
        self.keys: KeyAgreement | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._keys_driver: CoreDriver[bytes, KeyEvent] | None = None
        self.rtcp_dtls: RtcpDtls | None = None  # RTCP's own handshake, for a DTLS peer without rtcp-mux
        self.ice: IceAgent | None = None  # the media's path on the server path when [nat] is set
        self._stats_task: asyncio.Task[None] | None = None
        self._stored_before: dict[bytes, StoredBefore] = {}  # undone if the words of this call differ
        self.driver: CoreDriver[object, act.Action] = CoreDriver(core, lambda _: None, self._act)

    @property
    def id(self) -> str:
        return self.core.id

    def now(self) -> float:
        return self.driver.now()

    def step(self, feed: Callable[[float], None]) -> None:
        """Feed one input into the call core (a method taking `now`) and carry out what it decides."""
        if not self.core.ended:
            feed(self.now())
        self.driver.pump()

    # --- the core's actions -----------------------------------------------------------------------------

    def _act(self, action: act.Action) -> None:
        match action:
            case act.Emit(event):
                self.ctx.emit(event)
            case act.OpenMedia():
                asyncio.get_running_loop().create_task(self._open_media())
            case act.SendInvite(body):
                ua = self.sip.leg.ua
                assert self.sip.uri is not None and ua is not None
                self.sip_call_id = ua.invite(self.sip.uri, body, self.now(), dest=self.sip.dest)
                self.sip.leg.flush()
            case act.SendRinging():
                self._sip(lambda ua, cid: ua.ringing(cid, self.now()))
            case act.SendAnswer(body):
                self._sip(lambda ua, cid: ua.answer(cid, body, self.now()))
            case act.SendReject(status, reason):
                self._sip(lambda ua, cid: ua.reject(cid, status, self.now(), reason))
            case act.SendHangup():
                self._sip(lambda ua, cid: ua.hangup(cid, self.now()))
            case act.AnswerReInvite(body, status):
                self._sip(lambda ua, cid: ua.answer_reinvite(cid, body, self.now(), status=status))
            case act.StartKeys(remote):
                self._start_keys(remote)
            case act.InstallKeys(tx, rx):
                assert self.media is not None
                self.media.start_srtp(tx, rx)
                self._stats_task = asyncio.get_running_loop().create_task(self._report_stats())
            case act.SetMuted(muted):
                if self.media is not None:
                    self.media.set_muted(muted)
            case act.SetSasVerified(verified):
                if self.keys is not None:
                    self.keys.confirm_words(verified)
            case act.FallBack(aor, expected_zid):
                self.ctx.fall_back(aor, expected_zid)
            case act.CloseMedia():
                final = self.stats() if self.media is not None and self.media.secure else None
                if final is not None:
                    self.ctx.emit(final)  # every secure call reports its totals, however short
                self._close_media()
                self.ctx.forget(self)
                asyncio.get_running_loop().call_soon(self._release)  # after the core's last actions
            case _:
                self._write_cache(action)

    def _sip(self, send: Callable[..., None]) -> None:
        ua = self.sip.leg.ua
        if ua is not None and self.sip_call_id is not None:
            send(ua, self.sip_call_id)
            self.sip.leg.flush()

    def _write_cache(self, action: act.Action) -> None:
        """The trust cache is written here, after the exchange, never from inside a core."""
        cache, now = self.ctx.cache, time.time()
        try:
            match action:
                case act.StoreSecret(zid, rs1, expires_in):
                    self._stored_before[zid] = cache.store_new_rs1(zid, rs1, expires_in, now)
                case act.RollbackSecret(zid) if zid in self._stored_before:
                    cache.rollback(self._stored_before.pop(zid))
                case act.SetVerified(zid, verified):
                    cache.set_verified(zid, verified)
                case act.RememberAccount(account, zid):
                    cache.remember_account(account, zid, now)
                case act.RememberPeer(zid, name):
                    label = "".join(c for c in name if c.isprintable())[:128]
                    cache.touch(zid, now, name=label or None)  # only fills an empty name: a nickname stays
        except CacheError as exc:
            self.ctx.emit(events.Error(message=f"could not update the trust cache: {exc}"))

    # --- media and keys ---------------------------------------------------------------------------------

    async def _open_media(self) -> None:
        """Open the audio devices and the call's UDP port, and prepare the key agreement."""
        settings = self.ctx.settings
        sounds = self.ctx.sounds
        # The speaker the phone opened when the call began (it rang on it): already playing, it loses none of
        # the far end's first words to a stream starting up.
        output = await sounds.lend() if sounds is not None else None
        source: AudioSource | None = None
        try:
            source = open_source(settings.audio_in)
            output = output or open_sink(settings.audio_out)
            # The echo reference is what the speaker plays after the volume: the canceller is under GainSink,
            # and the phone's sounds (CueMixer) are above it, at the same volume.
            source, speaker = speakerphone.wrap(source, output, settings.echo_cancel, settings.audio_in,
                                        settings.audio_out)
            self.gain = GainSink(speaker, self.ctx.volume)
            self.output = CueMixer(self.gain)
            if sounds is not None:
                sounds.attach(self.output)
            self.media = MediaSession(
                source, self.output, on_key_packet=self._on_key_packet, on_first_srtp=self._on_first_srtp,
                on_rtcp_key_packet=self._on_rtcp_key_packet,
            )
            host, port = await self.media.open((self.ctx.local_ip, settings.rtp_port))
            # RTCP's own port (RTP + 1 when the RTP port is configured), for a peer that does not multiplex.
            rtcp_bind = (self.ctx.local_ip, port + 1 if settings.rtp_port else 0)
            _, rtcp_port = await self.media.open_rtcp(rtcp_bind)
            self.media.set_muted(True)  # nothing is captured for the peer before the call is secure
            ice = await self._gather() if self.core.dtls else None
            if self.ice is not None:
                host, port = self.ice.default  # c=/m=: where a peer without ICE sends
        except Exception as exc:  # an audio device or the port: the core decides what the call does
            reason = str(exc)
            if self.media is None:  # else it closes them
                for device in (source, None if self.gain is not None else output):
                    if device is not None:
                        with contextlib.suppress(Exception):
                            device.close()
            self._close_media()
            self.opened.set_exception(exc)
            self.step(lambda now: self.core.media_failed(reason, now))
            return
        ssrc = self.media.ssrc  # ZRTP packets carry the SSRC of the RTP stream they key (RFC 6189 §5)
        zrtp_keys = ZrtpKeying(self.ctx.zid, ssrc, self.id, settings.key_agreements, settings.sas_types)
        if self.core.dtls:
            # Between zcall units ZRTP runs over the DTLS-SRTP flow too, bound to it: the words on the server.
            dtls_keys = DtlsKeying(self.ctx.identity, self.id, zrtp_keys)
            self.keys = dtls_keys
            local = LocalAudio(host=host, port=port, mode="dtls", fingerprint=dtls_keys.fingerprint(),
                               zrtp_hash=zrtp_keys.zrtp_hash_attribute(), rtcp_port=rtcp_port,
                               red_payload_type=RED_PAYLOAD_TYPE, ice=ice)  # fmt: skip
            offerer = self.core.direction == "out"
            self.rtcp_dtls = RtcpDtls(self.ctx.identity, self.id, self.media, offerer, self._on_rtcp_alarm)
        else:
            self.keys = zrtp_keys
            local = LocalAudio(host=host, port=port, mode="zrtp", zrtp_hash=zrtp_keys.zrtp_hash_attribute(),
                               rtcp_port=rtcp_port, red_payload_type=RED_PAYLOAD_TYPE)  # fmt: skip
        self._keys_driver = CoreDriver(self.keys, self._send_key_packet, self._on_key_event)
        self.opened.set_result(None)
        self.step(lambda now: self.core.media_opened(local, str(int(time.time())), now))

    def _lookup_secrets(self, peer_zid: bytes) -> RetainedSecrets | None:
        try:
            return self.ctx.cache.lookup(peer_zid, time.time())
        except CacheError as exc:
            # Without the cache this call is a first contact: still secure, the SAS must be read.
            self.ctx.emit(events.Error(message=f"trust cache unreadable, treating the peer as new: {exc}"))
            return None

    async def _gather(self) -> IceDescription | None:
        """ICE on the server path when [nat] names a STUN or TURN server (zcall/ice.py)."""
        nat = self.ctx.settings.nat
        if not nat.enabled or self.sip.leg.name != "server":
            return None
        from zcall.ice import IceAgent  # aioice (and dnspython under it) only for calls that use ICE

        self.ice = IceAgent(nat, self.ctx.local_ip, controlling=self.core.direction == "out",
                            on_datagram=self._on_ice_datagram, on_lost=self._on_ice_lost,
                            tls_ca=self.ctx.settings.server_ca)  # fmt: skip
        return await self.ice.gather()

    async def _connect_ice(self, ice: IceAgent, remote: AudioParams) -> None:
        """Keys start once ICE has a path: DTLS and SRTP then run over the selected pair, never beside it."""
        from zcall.ice import IceError

        try:
            peer = await ice.connect(remote.ice, (remote.host, remote.port))
        except IceError as exc:
            reason = str(exc)
            self.step(lambda now: self.core.hangup(now, reason, EndCause.MEDIA_FAILED))
            return
        if self.core.ended or self.media is None:
            return
        path = ice.path
        if path is not None:
            self.step(lambda now: self.core.media_path(path))
        self._start_keys(replace(remote, host=peer[0], port=peer[1], ice=None))

    def _on_ice_datagram(self, data: bytes, addr: Addr) -> None:
        # The agent let in only the peer's candidates and checked pairs, any of which the peer may send on
        # (RFC 8445 §12): to the media it is the peer, where we send.
        if self.media is not None and self.ice is not None:
            self.media.datagram_received(data, self.ice.remote or addr)

    def _on_ice_lost(self, reason: str) -> None:
        self.step(lambda now: self.core.hangup(now, reason, EndCause.MEDIA_FAILED))

    def _start_keys(self, remote: AudioParams) -> None:
        assert self.media is not None and self.keys is not None
        if self.ice is not None and self.ice.path is None:
            # From now on media leaves only through ICE (held until a pair is selected): a DTLS flight
            # answering a peer whose checks ended first must not go out of the plain socket beside it.
            self.media.use_port(self.ice)
            asyncio.get_running_loop().create_task(self._connect_ice(self.ice, remote))
            return
        self.media.set_remote((remote.host, remote.port))
        self.media.set_payload_type(remote.payload_type)
        self.media.set_red(remote.red_payload_type)  # None: the peer offered or took no RED, Opus FEC then
        expected = self.core.trust.expected_zid
        if expected is not None:
            # The trust cache is read before the exchange, for the device the user chose.
            self.keys.provide_secrets(expected, self._lookup_secrets(expected), self.now())
        self.keys.start(remote, self.core.direction == "out", self.now())
        assert self._keys_driver is not None
        self._keys_driver.pump()
        self._start_rtcp(remote)

    def _start_rtcp(self, remote: AudioParams) -> None:
        """RTCP on the RTP port when both multiplex; else on its own port, keyed by ZRTP's keys or by a DTLS
        handshake of its own (same certificates, fingerprints and roles as the RTP port's)."""
        assert self.media is not None
        if remote.rtcp_mux:
            self.media.use_rtcp_mux()
            self.rtcp_dtls = None
            return
        self.media.use_rtcp_port((remote.rtcp_host, remote.rtcp_port), own_keys=self.rtcp_dtls is not None)
        if self.rtcp_dtls is not None:
            self.rtcp_dtls.start(remote, self.now())

    def _on_rtcp_key_packet(self, data: bytes, addr: Addr) -> None:
        if self.rtcp_dtls is not None and not self.core.ended:
            self.rtcp_dtls.receive(data, addr, self.now())

    def _on_rtcp_alarm(self, alarm: KeyAlarm) -> None:
        self.step(lambda now: self.core.on_key_event(alarm, now))

    def _send_key_packet(self, data: bytes) -> None:
        if self.media is not None:
            self.media.send_key_packet(data)

    def _on_key_packet(self, data: bytes, addr: Addr) -> None:
        if self.core.ended or self.keys is None or self._keys_driver is None or self.media is None:
            return
        keys = self.keys
        if isinstance(keys, DtlsKeying) and keys.session is None and classify(data) is PacketKind.DTLS:
            keys.hold_early(data, addr)  # before the answer: kept for start(), never answered blind
            return
        self.keys.receive(data, self.now())
        self._keys_driver.pump()

    def _on_first_srtp(self) -> None:
        # Authentic SRTP from the peer: for a ZRTP initiator still waiting, the implicit Conf2ACK.
        if self.keys is not None and self._keys_driver is not None and not self.core.ended:
            self.keys.srtp_received(self.now())
            self._keys_driver.pump()

    def peer_left(self) -> None:
        """The peer hung up: the key agreement says what it can no longer wait to say (a tampered Hello)."""
        if self.keys is not None and self._keys_driver is not None and not self.core.ended:
            self.keys.peer_gone(self.now())
            self._keys_driver.pump()

    def _on_key_event(self, event: KeyEvent) -> None:
        if isinstance(event, SecretsWanted):
            if self.keys is not None:
                self.keys.provide_secrets(event.peer_zid, self._lookup_secrets(event.peer_zid), self.now())
            return
        if isinstance(event, ReceiveKeys):
            if self.media is not None:
                self.media.start_srtp_receive(event.rx)
            return
        self.step(lambda now: self.core.on_key_event(event, now))

    def _close_media(self) -> None:
        if self._stats_task is not None:
            self._stats_task.cancel()
        if self.keys is not None and self._keys_driver is not None:
            self.keys.close(self.now())
            for datagram in self.keys.datagrams_to_send(self.now()):
                self._send_key_packet(datagram)
            self._keys_driver.close()
        if self.rtcp_dtls is not None:
            self.rtcp_dtls.close(self.now())
        if self.ice is not None:
            self.ice.close()  # also when media never took it as its port
        if self.output is not None and self.ctx.sounds is not None:
            self.ctx.sounds.detach(self.output)
        if self.media is not None:
            self.media.close()
        elif self.gain is not None:
            self.gain.close()

    def _release(self) -> None:
        """The call has ended: let go of what points back at it (its drivers' and RTCP handshake's bound
        methods; closed media and ICE agents drop theirs), so refcounting frees it with its codecs and SRTP
        contexts now. Left to the cyclic gc, ended calls piled up ~35 KiB each between full collections (the
        soak's RSS growth)."""
        self.driver.close()
        self.rtcp_dtls = None

    # --- reports ----------------------------------------------------------------------------------------

    def set_volume(self, percent: int) -> None:
        if self.gain is not None:
            self.gain.percent = percent

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
        core = self.core
        info: dict[str, object] = {
            "id": self.id, "state": str(core.state), "direction": core.direction, "peer": core.peer,
            "muted": core.muted,
        }  # fmt: skip
        if core.secure is not None:
            info["secure"] = core.secure.to_dict()
        return info

    async def _report_stats(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            while not self.core.ended:
                await asyncio.sleep(STATS_INTERVAL_S)
                snapshot = self.stats()
                if snapshot is not None and not self.core.ended:
                    self.ctx.emit(snapshot)
