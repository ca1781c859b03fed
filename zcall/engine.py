"""The phone: one asyncio engine under both the TUI and the headless CLI.

It owns the sockets and the long-lived parts (SIP user agent core, LAN discovery, the ZRTP cache, the
control socket) and one Call per call. Faces drive it with commands (call, answer, hangup, verify) and read
its events.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import time
from collections.abc import Callable
from typing import Any

from zcall import __version__, events
from zcall import sip as ua
from zcall.call import Call, CallContext, Method
from zcall.control import ControlError, ControlServer
from zcall.discovery.lan import Discovery, DiscoveryError, local_ipv4_addresses
from zcall.discovery.service import PeerDown, PeerUp
from zcall.identity import Identity, load_or_create
from zcall.media.audio import AudioSpecError
from zcall.paths import Paths
from zcall.settings import PhoneSettings
from zcall.sip import sdp
from zcall.sip.errors import SipParseError
from zcall.sip.uri import SipUri, parse_uri
from zcall.zrtp.cache import ZrtpCache

Addr = tuple[str, int]
Listener = Callable[[events.Event], None]

MAX_SIP_DATAGRAM = 65535


class PhoneError(Exception):
    """A command the phone cannot carry out; the message is for the user."""


class _SipProtocol(asyncio.DatagramProtocol):
    def __init__(self, phone: Phone) -> None:
        self._phone = phone

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._phone._on_sip_datagram(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP unreachable for a peer that left: its transaction times out by itself


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
        self._ua: ua.UserAgent | None = None
        self._sip: asyncio.DatagramTransport | None = None
        self._sip_timer: asyncio.TimerHandle | None = None
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
        port = self._sip.get_extra_info("sockname")[1] if self._sip is not None else self.settings.sip_port
        return ua.UaConfig(
            host=self.local_ip,
            port=int(port),
            user="zcall",
            display=self.settings.name,
            user_agent=f"zcall/{__version__}",
        )

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        bind = self.settings.bind or "0.0.0.0"
        try:
            self._sip, _ = await loop.create_datagram_endpoint(
                lambda: _SipProtocol(self), local_addr=(bind, self.settings.sip_port), family=socket.AF_INET
            )
        except OSError as exc:
            raise PhoneError(
                f"cannot listen for SIP on {bind}:{self.settings.sip_port}: {exc.strerror}"
            ) from exc
        self._ua = ua.UserAgent(self._ua_config())
        if self._control is not None:
            try:
                await self._control.start()
            except ControlError as exc:
                raise PhoneError(str(exc)) from exc
        if self.settings.mdns:
            self.discovery = Discovery(
                self.settings.name,
                self.identity.zid,
                self._ua.config.port,
                self.local_ip,
                on_event=self._on_discovery,
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

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for call in list(self.calls.values()):
            self._end_call(call, "phone closed")
        self._flush_sip()
        if self.discovery is not None:
            with contextlib.suppress(Exception):
                await self.discovery.close()
        if self._control is not None:
            await self._control.close()
        if self._sip_timer is not None:
            self._sip_timer.cancel()
        if self._sip is not None:
            self._sip.close()
        self.cache.close()

    # --- commands -------------------------------------------------------------------------------------

    def resolve_target(self, target: str) -> tuple[SipUri, Addr, str]:
        """A discovered peer's name, its ZID, or a SIP URI → (request URI, where to send, label)."""
        wanted = target.strip()
        for peer in self.peers.values():
            if wanted in (peer.name, peer.zid.hex()):
                uri = parse_uri(f"sip:zcall@{peer.address}:{peer.sip_port}")
                return uri, (peer.address, peer.sip_port), peer.name
        if not wanted.lower().startswith(("sip:", "sips:")):
            raise PhoneError(f"no peer named {wanted!r} on the LAN (try `zcall peers`, or give a SIP URI)")
        try:
            uri = parse_uri(wanted)
        except SipParseError as exc:
            raise PhoneError(f"not a SIP URI: {wanted!r} ({exc})") from exc
        if uri.params.get("transport", "udp") != "udp":
            raise PhoneError("only SIP over UDP is available for direct calls in this version")
        try:
            host = str(ipaddress.IPv4Address(uri.host))
        except ValueError as exc:
            raise PhoneError(f"give the peer's IPv4 address in the URI, not {uri.host!r}") from exc
        return uri, (host, uri.port or 5060), wanted

    async def call(self, target: str) -> str:
        if self._ua is None:
            raise PhoneError("the phone is not started")
        uri, dest, label = self.resolve_target(target)
        call = Call(self._ctx, "out", label)
        try:
            local = await call.open_media(self.local_ip)
        except (AudioSpecError, OSError) as exc:
            call.close(f"media: {exc}")
            raise PhoneError(f"cannot open the call's audio or media port: {exc}") from exc
        offer = sdp.make_offer(local, session_id=str(int(time.time())), version=1)
        call.offer = offer
        call.sip_call_id = self._ua.invite(uri, offer.serialize(), self._now(), dest=dest)
        self.calls[call.id] = call
        self.emit(events.Call(id=call.id, state="dialing", direction="out", peer=label))
        self._flush_sip()
        return call.id

    async def answer(self, call_id: str | None = None) -> str:
        call = self._find(call_id, state="incoming")
        if self._ua is None or call.sip_call_id is None:
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
        self._ua.answer(call.sip_call_id, answer.serialize(), self._now())
        self._flush_sip()
        call.set_state("answered")
        call.start_media(sdp.audio_params(offer))
        return call.id

    def _refuse_incoming(self, call: Call, status: int, reason: str) -> None:
        if self._ua is not None and call.sip_call_id is not None:
            self._ua.reject(call.sip_call_id, status, self._now(), reason)
            self._flush_sip()
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

    def _on_sip_datagram(self, data: bytes, addr: Addr) -> None:
        if self._ua is None or len(data) > MAX_SIP_DATAGRAM:
            return
        self._ua.receive(data, addr, self._now())
        self._flush_sip()

    def _on_sip_timer(self) -> None:
        self._sip_timer = None
        if self._ua is not None:
            self._ua.handle_timer(self._now())
            self._flush_sip()

    def _flush_sip(self) -> None:
        """Send what the user agent wants sent, act on its events, re-arm its timer."""
        core = self._ua
        if core is None:
            return
        if self._sip is not None:
            for data, addr in core.messages_to_send():
                self._sip.sendto(data, addr)
        while (event := core.next_event()) is not None:
            self._on_sip_event(event)
        if self._sip_timer is not None:
            self._sip_timer.cancel()
            self._sip_timer = None
        due = core.get_timer()
        if due is not None and not self._closed:
            loop = asyncio.get_running_loop()
            self._sip_timer = loop.call_later(max(0.0, due - self._now()), self._on_sip_timer)

    def _call_for(self, sip_call_id: str) -> Call | None:
        return next((c for c in self.calls.values() if c.sip_call_id == sip_call_id), None)

    def _on_sip_event(self, event: ua.UaEvent) -> None:
        if isinstance(event, ua.IncomingCall):
            self._on_incoming(event)
            return
        if isinstance(event, ua.OptionsResult | ua.Registered | ua.RegistrationFailed):
            return  # registration through a server is not wired to the phone yet
        call = self._call_for(event.call_id)
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
        elif isinstance(event, ua.ReInviteReceived) and self._ua is not None:
            self._ua.answer_reinvite(event.call_id, b"", self._now(), status=488)

    def _on_incoming(self, event: ua.IncomingCall) -> None:
        assert self._ua is not None
        try:
            offer = sdp.parse(event.sdp)
            sdp.audio_params(offer)
        except SipParseError as exc:
            self._ua.reject(event.call_id, exc.status or 488, self._now(), exc.reason)
            return
        if any(c.state not in ("ended",) for c in self.calls.values()):
            self._ua.reject(event.call_id, 486, self._now())
            return
        caller = event.caller.display or str(event.caller.uri)
        # The offer's profile says how the caller keys media: RTP/AVP is ZRTP, UDP/TLS/RTP/SAVP(F) DTLS-SRTP.
        method: Method = "dtls-srtp" if "TLS" in sdp.audio_params(offer).proto else "zrtp"
        call = Call(self._ctx, "in", caller, event.call_id, method=method)
        call.offer = offer
        self.calls[call.id] = call
        self._ua.ringing(event.call_id, self._now())
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
        if self._ua is not None and call.sip_call_id is not None:
            self._ua.hangup(call.sip_call_id, self._now())
            self._flush_sip()
        self._forget(call, reason)

    def _forget(self, call: Call, reason: str) -> None:
        call.close(reason)
        self.calls.pop(call.id, None)
