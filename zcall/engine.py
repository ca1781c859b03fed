"""The phone: one asyncio engine under both the TUI and the headless CLI.

It owns the sockets and the long-lived parts (SIP user agent core, LAN discovery, the ZRTP cache, the
control socket) and one Call per call. Faces drive it with commands (call, answer, hangup, verify) and read
its events.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from zcall import __version__, events
from zcall import sip as ua
from zcall.call import Call, CallContext, Method
from zcall.control import ControlError, ControlServer
from zcall.discovery.lan import Discovery, DiscoveryError, local_ipv4_addresses
from zcall.discovery.service import PeerDown, PeerUp
from zcall.errors import ZcallError
from zcall.identity import Identity, load_or_create
from zcall.media.audio import AudioSpecError
from zcall.net import Addr
from zcall.paths import Paths
from zcall.server import ServerConfigError, ServerLeg
from zcall.settings import PhoneSettings
from zcall.sip import sdp
from zcall.sip.errors import SipParseError
from zcall.sip.uri import SipUri, parse_uri
from zcall.sipleg import LanLeg, SipLeg
from zcall.zrtp.cache import ZrtpCache

Listener = Callable[[events.Event], None]

LAN_FALLBACK_S = 3.0  # a zcall unit on the LAN rings within milliseconds; silence this long means unreachable


class PhoneError(ZcallError):
    """A command the phone cannot carry out; the message is for the user."""


@dataclass(frozen=True)
class Route:
    """How a call reaches its target: request URI, first hop, label for the user, SIP leg, key agreement."""

    uri: SipUri
    dest: Addr
    label: str
    leg: SipLeg
    method: Method
    fallback: str | None = None  # the peer's server AOR, tried when the LAN path does not answer


def pick_local_ip(bind: str) -> str:
    """The address we put in SIP and SDP: the bound one, else the first LAN address."""
    if bind and not ipaddress.ip_address(bind).is_unspecified:
        return bind
    addresses = local_ipv4_addresses()
    if not addresses:
        raise PhoneError("no IPv4 address on this machine (give --bind IP)")
    return addresses[0]


class Phone:
    def __init__(self, settings: PhoneSettings, paths: Paths, *, control: bool = True) -> None:
        self.settings = settings
        self.paths = paths
        paths.ensure_private_dirs()
        self.identity: Identity = load_or_create(paths.identity_dir)
        self.cache = ZrtpCache(paths.cache_file)
        self.local_ip = pick_local_ip(settings.bind)
        self.calls: dict[str, Call] = {}
        self.peers: dict[str, PeerUp] = {}  # by instance name
        self.discovery: Discovery | None = None
        self._listeners: list[Listener] = []
        self.lan = LanLeg(self._on_sip_event)
        self.server: ServerLeg | None = None
        self._call_leg: dict[str, SipLeg] = {}  # call id -> the leg its dialog lives on
        if settings.server_uri:
            try:
                self.server = ServerLeg(settings, self.local_ip, self._on_sip_event, self.emit)
            except ServerConfigError as exc:
                raise PhoneError(str(exc)) from exc
        self._control = ControlServer(paths.control_socket, self._on_control) if control else None
        self._discovery_task: asyncio.Task[None] | None = None
        self._closed = False
        self._early_peers: list[PeerUp | PeerDown] | None = []  # peers seen before `ready` went out
        self._ctx = CallContext(
            zid=self.identity.zid,
            identity=self.identity,
            settings=settings,
            cache=self.cache,
            emit=self.emit,
            end_call=self._end_call,
        )

    # --- events ---------------------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def emit(self, event: events.Event) -> None:
        for listener in list(self._listeners):
            listener(event)

    @property
    def name(self) -> str:
        return self.discovery.name if self.discovery is not None else self.settings.name

    @property
    def sip_uri(self) -> str:
        return str(self._ua_config().uri)

    # --- lifecycle ------------------------------------------------------------------------------------

    def _ua_config(self) -> ua.UaConfig:
        port = self.lan.ua.config.port if self.lan.ua is not None else self.settings.sip_port
        return ua.UaConfig(
            host=self.local_ip,
            port=int(port),
            user="zcall",
            display=self.settings.name,
            user_agent=f"zcall/{__version__}",
        )

    async def start(self) -> None:
        bind = self.settings.bind or "0.0.0.0"
        try:
            port = await self.lan.listen(bind, self.settings.sip_port)
        except OSError as exc:
            raise PhoneError(
                f"cannot listen for SIP on {bind}:{self.settings.sip_port}: {exc.strerror}"
            ) from exc
        self.lan.ua = ua.UserAgent(replace(self._ua_config(), port=port))
        if self._control is not None:
            try:
                await self._control.start()
            except ControlError as exc:
                raise PhoneError(str(exc)) from exc
        if self.settings.mdns:
            aor = f"{self.settings.server_user}@{self.server.hostname}" if self.server is not None else None
            self.discovery = Discovery(
                self.settings.name,
                self.identity.zid,
                port,
                self.local_ip,
                on_event=self._on_discovery,
                aor=aor,
            )
            try:
                await self.discovery.start()
            except DiscoveryError as exc:
                self.emit(events.Error(message=f"LAN discovery is off: {exc}"))
                self.discovery = None
        self.emit(events.Ready(name=self.name, zid=self.identity.zid_hex, sip_uri=self.sip_uri))
        early, self._early_peers = self._early_peers or [], None
        for seen in early:
            self._on_discovery(seen)
        if self.server is not None:
            await self.server.start()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for call in list(self.calls.values()):
            self._end_call(call, "phone closed")
        if self.server is not None:
            await self.server.close()
        if self.discovery is not None:
            with contextlib.suppress(Exception):
                await self.discovery.close()
        if self._control is not None:
            await self._control.close()
        self.lan.close()
        self.cache.close()

    # --- commands -------------------------------------------------------------------------------------

    def resolve_target(self, target: str) -> Route:
        """Where a call goes. A discovered peer (by name or ZID): straight to it with ZRTP. A SIP URI with
        an IPv4 address over UDP: straight there with ZRTP. Anything else (a user name, a URI with a domain
        or TLS): through the configured server with DTLS-SRTP."""
        wanted = target.strip()
        for peer in self.peers.values():
            if wanted in (peer.name, peer.zid.hex()):
                uri = parse_uri(f"sip:zcall@{peer.address}:{peer.sip_port}")
                fallback = peer.aor if self.server is not None else None
                return Route(uri, (peer.address, peer.sip_port), peer.name, self.lan, "zrtp", fallback)
        direct: SipUri | None = None
        if wanted.lower().startswith(("sip:", "sips:")):
            try:
                uri = parse_uri(wanted)
            except SipParseError as exc:
                raise PhoneError(f"not a SIP URI: {wanted!r} ({exc})") from exc
            if uri.scheme == "sip" and (uri.params.get("transport") or "udp").lower() == "udp":
                with contextlib.suppress(ValueError):
                    ipaddress.IPv4Address(uri.host)
                    direct = uri
            if direct is not None:
                return Route(direct, (direct.host, direct.port or 5060), wanted, self.lan, "zrtp")
        if self.server is None:
            if wanted.lower().startswith(("sip:", "sips:")):
                raise PhoneError(
                    f"{wanted!r} is not on the LAN and no SIP server is configured (give an IPv4 SIP URI)"
                )
            raise PhoneError(f"no peer named {wanted!r} on the LAN (try `zcall peers`, or give a SIP URI)")
        if not self.server.registered.is_set():
            raise PhoneError("the SIP server is not reachable now (not registered)")
        if not wanted.lower().startswith(("sip:", "sips:")):
            wanted = f"sips:{wanted}@{self.server.hostname}"
        try:
            uri = parse_uri(wanted)
        except SipParseError as exc:
            raise PhoneError(f"not a SIP URI: {wanted!r} ({exc})") from exc
        return Route(uri, self.server.proxy, wanted, self.server, "dtls-srtp")

    async def call(self, target: str) -> str:
        route = self.resolve_target(target)
        leg = route.leg
        if leg.ua is None:
            raise PhoneError("the phone is not started")
        call = Call(self._ctx, "out", route.label, method=route.method)
        try:
            local = await call.open_media(self.local_ip)
        except (AudioSpecError, OSError) as exc:
            call.close(f"media: {exc}")
            raise PhoneError(f"cannot open the call's audio or media port: {exc}") from exc
        offer = sdp.make_offer(local, session_id=str(int(time.time())), version=1)
        call.offer = offer
        call.sip_call_id = leg.ua.invite(route.uri, offer.serialize(), self._now(), dest=route.dest)
        self.calls[call.id] = call
        self._call_leg[call.id] = leg
        self.emit(events.Call(id=call.id, state="dialing", direction="out", peer=route.label))
        leg.flush()
        if route.fallback is not None:
            loop = asyncio.get_running_loop()
            loop.call_later(LAN_FALLBACK_S, self._fall_back, call.id, route.fallback)
        return call.id

    def _fall_back(self, call_id: str, aor: str) -> None:
        """A LAN peer that did not even ring: reach it through the server instead (DTLS-SRTP)."""
        call = self.calls.get(call_id)
        if (
            call is None
            or call.state != "dialing"
            or self.server is None
            or not self.server.registered.is_set()
        ):
            return
        self._end_call(call, "no answer on the LAN; calling through the server")
        task = asyncio.get_running_loop().create_task(self.call(f"sips:{aor}"))
        task.add_done_callback(self._report_failed_call)

    def _report_failed_call(self, task: asyncio.Task[str]) -> None:
        if not task.cancelled() and isinstance(task.exception(), PhoneError):
            self.emit(events.Error(message=str(task.exception())))

    async def answer(self, call_id: str | None = None) -> str:
        call = self._find(call_id, state="incoming")
        leg = self._call_leg.get(call.id)
        if leg is None or leg.ua is None or call.sip_call_id is None:
            raise PhoneError("nothing to answer")
        offer = call.offer
        if offer is None:
            raise PhoneError("the incoming call has no offer")
        try:
            local = await call.open_media(self.local_ip)
            answer = sdp.answer(offer, local, session_id=str(int(time.time())), version=1)
        except sdp.SdpError as exc:
            self._refuse_incoming(call, 488, f"incompatible offer: {exc.reason}")
            raise PhoneError(f"cannot accept the call's media: {exc.reason}") from exc
        except (AudioSpecError, OSError) as exc:
            self._refuse_incoming(call, 500, f"media: {exc}")
            raise PhoneError(f"cannot open the call's audio or media port: {exc}") from exc
        leg.ua.answer(call.sip_call_id, answer.serialize(), self._now())
        leg.flush()
        call.set_state("answered")
        call.start_media(sdp.audio_params(offer))
        return call.id

    def _refuse_incoming(self, call: Call, status: int, reason: str) -> None:
        leg = self._call_leg.get(call.id)
        if leg is not None and leg.ua is not None and call.sip_call_id is not None:
            leg.ua.reject(call.sip_call_id, status, self._now(), reason)
            leg.flush()
        self._forget(call, reason)

    def hangup(self, call_id: str | None = None) -> str:
        call = self._find(call_id)
        self._end_call(call, "local hangup")
        return call.id

    def verify(self, call_id: str | None = None, words_match: bool = True) -> str:
        call = self._find(call_id, state="secure")
        call.confirm_sas(words_match)
        return call.id

    def set_muted(self, muted: bool, call_id: str | None = None) -> None:
        self._find(call_id).set_user_muted(muted)

    @property
    def volume(self) -> int:
        return self._ctx.volume

    def set_volume(self, percent: int) -> int:
        """Playback volume 0-100 for the calls now and later; returns the value applied."""
        self._ctx.volume = max(0, min(100, int(percent)))
        for call in self.calls.values():
            call.set_volume(self._ctx.volume)
        return self._ctx.volume

    def is_muted(self, call_id: str | None = None) -> bool:
        """Whether our microphone is held back in this call (by the user or after a cache mismatch)."""
        call = self._find(call_id)
        return call.user_muted or call.muted_for_mismatch or call.secure_event is None

    def status(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "zid": self.identity.zid_hex,
            "sip_uri": self.sip_uri,
            "server": None
            if self.server is None
            else {
                "uri": self.server.server_label,
                "registered": self.server.registered.is_set(),
                "address": f"{self.server.proxy[0]}:{self.server.proxy[1]}",
            },
            "calls": [call.status() for call in self.calls.values()],
            "peers": [
                {"name": p.name, "zid": p.zid.hex(), "address": p.address, "port": p.sip_port}
                for p in self.peers.values()
            ],
        }

    def _find(self, call_id: str | None, state: str | None = None) -> Call:
        if call_id is not None:
            call = self.calls.get(call_id)
            if call is None:
                raise PhoneError(f"no call {call_id!r}")
            return call
        candidates = [c for c in self.calls.values() if state is None or c.state == state]
        if not candidates:
            raise PhoneError("no call" + (f" in state {state}" if state else ""))
        return candidates[-1]

    # --- the control socket ---------------------------------------------------------------------------

    async def _on_control(self, cmd: str, args: dict[str, Any]) -> Any:
        try:
            if cmd == "call":
                return {"id": await self.call(str(args.get("target", "")))}
            if cmd == "answer":
                return {"id": await self.answer(args.get("id"))}
            if cmd == "hangup":
                return {"id": self.hangup(args.get("id"))}
            if cmd == "verify":
                return {"id": self.verify(args.get("id"), bool(args.get("match", True)))}
            if cmd == "status":
                return self.status()
        except PhoneError as exc:
            raise ControlError(str(exc)) from exc
        raise ControlError(f"unknown command {cmd!r}")

    # --- discovery ------------------------------------------------------------------------------------

    def _on_discovery(self, event: PeerUp | PeerDown) -> None:
        if self._early_peers is not None:
            self._early_peers.append(event)
            return
        if isinstance(event, PeerUp):
            self.peers[event.name] = event
            self.emit(
                events.Peer(
                    action="up",
                    name=event.name,
                    zid=event.zid.hex(),
                    address=event.address,
                    port=event.sip_port,
                )
            )
        else:
            self.peers.pop(event.name, None)
            self.emit(events.Peer(action="down", name=event.name, zid=event.zid.hex()))

    # --- SIP plumbing ---------------------------------------------------------------------------------

    @staticmethod
    def _now() -> float:
        return time.monotonic()

    def _call_for(self, leg: SipLeg, sip_call_id: str) -> Call | None:
        return next(
            (
                c
                for c in self.calls.values()
                if c.sip_call_id == sip_call_id and self._call_leg.get(c.id) is leg
            ),
            None,
        )

    def _on_sip_event(self, leg: SipLeg, event: ua.UaEvent) -> None:
        if isinstance(event, ua.IncomingCall):
            self._on_incoming(leg, event)
            return
        if isinstance(event, ua.Registered | ua.RegistrationFailed):
            if isinstance(leg, ServerLeg):
                leg.on_registration(event)
            return
        if isinstance(event, ua.OptionsResult):
            return
        call = self._call_for(leg, event.call_id)
        if call is None:
            return
        if isinstance(event, ua.CallProgress):
            if event.status in (180, 183):
                call.set_state("ringing")
        elif isinstance(event, ua.CallAnswered):
            self._on_answered(call, event.sdp)
        elif isinstance(event, ua.CallFailed):
            self._forget(call, f"{event.status} {event.reason}".strip())
        elif isinstance(event, ua.CallEnded):
            self._forget(call, "remote hangup" if event.reason == "bye" else event.reason)
        elif isinstance(event, ua.ReInviteReceived) and leg.ua is not None:
            self._on_reoffer(leg, call, event.sdp)

    def _on_reoffer(self, leg: SipLeg, call: Call, offer_sdp: bytes) -> None:
        """A re-INVITE (hold, resume): answer on the same media and keys; anything else is refused (488)."""
        assert leg.ua is not None
        try:
            if call.local_audio is None or not offer_sdp:
                raise sdp.SdpError("re-INVITE without an offer", 488)
            offer = sdp.parse(offer_sdp)
            call.sdp_version += 1
            answer = sdp.answer(
                offer, call.local_audio, session_id=str(int(time.time())), version=call.sdp_version
            )
            direction = sdp.audio_params(offer).direction
        except SipParseError as exc:
            leg.ua.answer_reinvite(call.sip_call_id or "", b"", self._now(), status=exc.status or 488)
            return
        leg.ua.answer_reinvite(call.sip_call_id or "", answer.serialize(), self._now())
        call.on_reoffer(direction)

    def _on_incoming(self, leg: SipLeg, event: ua.IncomingCall) -> None:
        core = leg.ua
        assert core is not None
        try:
            offer = sdp.parse(event.sdp)
            sdp.audio_params(offer)
        except SipParseError as exc:
            core.reject(event.call_id, exc.status or 488, self._now(), exc.reason)
            return
        if any(c.state not in ("ended",) for c in self.calls.values()):
            core.reject(event.call_id, 486, self._now())
            return
        caller = event.caller.display or str(event.caller.uri)
        # The offer's profile says how the caller keys media: RTP/AVP is ZRTP, UDP/TLS/RTP/SAVP(F) DTLS-SRTP.
        method: Method = "dtls-srtp" if "TLS" in sdp.audio_params(offer).proto else "zrtp"
        call = Call(self._ctx, "in", caller, event.call_id, method=method)
        call.offer = offer
        self.calls[call.id] = call
        self._call_leg[call.id] = leg
        core.ringing(event.call_id, self._now())
        self.emit(events.Call(id=call.id, state="incoming", direction="in", peer=caller))
        if self.settings.auto_answer:
            asyncio.get_running_loop().create_task(self._auto_answer(call.id))

    async def _auto_answer(self, call_id: str) -> None:
        with contextlib.suppress(PhoneError):
            await self.answer(call_id)

    def _on_answered(self, call: Call, answer_sdp: bytes) -> None:
        try:
            params = sdp.audio_params(sdp.parse(answer_sdp), answer_to=call.offer)
        except SipParseError as exc:
            self._end_call(call, f"unusable answer: {exc.reason}")
            return
        call.set_state("answered")
        call.start_media(params)

    def _end_call(self, call: Call, reason: str) -> None:
        leg = self._call_leg.get(call.id)
        if leg is not None and leg.ua is not None and call.sip_call_id is not None:
            leg.ua.hangup(call.sip_call_id, self._now())
            leg.flush()
        self._forget(call, reason)

    def _forget(self, call: Call, reason: str) -> None:
        call.close(reason)
        self.calls.pop(call.id, None)
        self._call_leg.pop(call.id, None)
