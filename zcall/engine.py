"""The phone: the one asyncio shell under both the TUI and the headless CLI.

It owns the sockets and the long-lived parts (the SIP legs, LAN discovery, the trust cache, the control
socket) and one Call per call; each call's policy is its CallCore (zcall/callcore.py), and every sans-I/O
core is driven by the same CoreDriver (zcall/driver.py). Faces drive the phone with commands (call, answer,
hangup, verify) and read its events.

An idle phone loads no call machinery: the call, its keying (ZRTP, DTLS), media, codecs and numpy are imported
at the first call, and the server leg (TLS, DNS) only when a server is configured (issue 17's footprint).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from zcall import __version__, events
from zcall import sip as ua
from zcall.calls import Calls, NoSuchCall
from zcall.control import ControlError
from zcall.controlserver import ControlServer
from zcall.cues import SoundPlayer
from zcall.discovery.lan import local_ipv4_addresses
from zcall.errors import ZcallError
from zcall.identity import Identity, load_or_create
from zcall.net import Addr
from zcall.paths import Paths
from zcall.peerbook import PeerBook
from zcall.routing import NotOnLan, Route, RouteError, ServerRoute, account_of, resolve
from zcall.settings import PhoneSettings
from zcall.sipleg import LanLeg, SipLeg
from zcall.zrtp.cache import PeerRecord, ZrtpCache
from zcall.zrtp.cachefile import CacheError

if TYPE_CHECKING:
    from zcall.call import Call, CallContext
    from zcall.callcore import CallPolicy
    from zcall.server import ServerLeg

Listener = Callable[[events.Event], None]


class PhoneError(ZcallError):
    """A command the phone cannot carry out; the message is for the user."""


class PeerNotFound(PhoneError):
    """No unit on the LAN has that name (yet); it may still show up while discovery runs."""


def pick_local_ip(bind: str) -> str:
    """The address we put in SIP and SDP: the bound one, else the first LAN address."""
    if bind and not ipaddress.ip_address(bind).is_unspecified:
        return bind
    addresses = local_ipv4_addresses()
    if not addresses:
        raise PhoneError("no IPv4 address on this machine (give --bind IP)")
    return addresses[0]


def _zid_arg(value: object) -> bytes | None:
    """A control request's "zid": 24 hex digits, or absent."""
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-fA-F]{24}", value):
        raise ControlError("zid must be 24 hex digits")
    return bytes.fromhex(value)


class Phone:
    def __init__(self, settings: PhoneSettings, paths: Paths, *, control: bool = True) -> None:
        self.settings = settings
        self.paths = paths
        paths.ensure_private_dirs()
        self.identity: Identity = load_or_create(paths.identity_dir)
        self.cache = ZrtpCache(paths.cache_file)
        self.local_ip = pick_local_ip(settings.bind)
        self.calls = Calls()
        self.peers = PeerBook(self.emit)
        self._listeners: list[Listener] = []
        self.lan = LanLeg(self._on_sip_event, self._on_unreachable)
        self.server: ServerLeg | None = None
        if settings.server_uri:
            from zcall.server import ServerConfigError, ServerLeg

            try:
                self.server = ServerLeg(settings, self.local_ip, self._on_sip_event, self.emit,
                                        on_address=self._on_local_address)  # fmt: skip
            except ServerConfigError as exc:
                raise PhoneError(str(exc)) from exc
        self._control = ControlServer(paths.control_socket, self._on_control) if control else None
        self._discovery_task: asyncio.Task[None] | None = None
        self._closed = False
        self._volume = 100  # playback volume in percent, for the calls now and later
        self._calling: tuple[CallContext, CallPolicy] | None = None
        self.sounds = SoundPlayer(settings.audio_out, lambda: self._volume, enabled=settings.sounds)
        self._listeners.append(self.sounds.on_event)

    def _on_local_address(self, address: str) -> None:
        """The unit moved networks (the server leg noticed): new calls open media on the new address."""
        self.local_ip = address
        if self._calling is not None:
            self._calling[0].local_ip = address

    def _call_kit(self) -> tuple[CallContext, CallPolicy]:
        """What every call shares, built (and the call machinery imported) at the first call."""
        if self._calling is None:
            from zcall.call import CallContext
            from zcall.callcore import CallPolicy

            ctx = CallContext(
                zid=self.identity.zid,
                identity=self.identity,
                settings=self.settings,
                cache=self.cache,
                local_ip=self.local_ip,
                emit=self.emit,
                fall_back=self._fall_back,
                forget=self._forget,
                volume=self._volume,
                sounds=self.sounds,
            )
            settings = self.settings
            policy = CallPolicy(on_mismatch=settings.on_mismatch, ring_timeout_s=settings.ring_timeout)
            self._calling = ctx, policy
        return self._calling

    # --- events ---------------------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def emit(self, event: events.Event) -> None:
        for listener in list(self._listeners):
            listener(event)

    @property
    def name(self) -> str:
        discovery = self.peers.discovery
        return discovery.name if discovery is not None else self.settings.name

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
        if self._control is not None:
            try:
                await self._control.start()
            except ControlError as exc:
                raise PhoneError(str(exc)) from exc
        if self.settings.mdns:
            aor = f"{self.settings.server_user}@{self.server.hostname}" if self.server is not None else None
            await self.peers.start(self.settings.name, self.identity.zid, port, self.local_ip, aor)
        # SIP is spoken from `ready` on (nothing before it is a call): what came while the name was probed is
        # dropped unanswered, and the caller's retransmission finds a ready phone.
        self.lan.attach(ua.UserAgent(replace(self._ua_config(), port=port)))
        self.emit(events.Ready(name=self.name, zid=self.identity.zid_hex, sip_uri=self.sip_uri))
        self.peers.open()
        if self.server is not None:
            await self.server.start()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for call in self.calls:
            call.step(partial(call.core.hangup, reason="phone closed", cause=events.EndCause.PHONE_CLOSED))
        if self.server is not None:
            await self.server.close()
        await self.peers.close()
        if self._control is not None:
            await self._control.close()
        self.lan.close()
        self.cache.close()
        await self.sounds.close()

    # --- commands -------------------------------------------------------------------------------------

    def resolve_target(self, target: str) -> Route:
        server = None
        if self.server is not None:
            registered = self.server.registered.is_set()
            server = ServerRoute(self.server, self.server.hostname, self.server.proxy, registered)
        try:
            return resolve(target, self.peers, self.lan, server, self._verified())
        except NotOnLan as exc:
            raise PeerNotFound(str(exc)) from exc
        except RouteError as exc:
            raise PhoneError(str(exc)) from exc

    def _verified(self) -> list[PeerRecord]:
        """The verified devices of the trust list (an unreadable cache trusts no one)."""
        try:
            return [p for p in self.cache.peers(time.time()) if p.verified]
        except CacheError:
            return []

    @property
    def discovering(self) -> bool:
        """Whether LAN peers can still show up (discovery runs)."""
        return self.peers.discovery is not None

    async def call(self, target: str, expected_zid: bytes | None = None) -> str:
        """Call a name, a ZID or a URI. expected_zid: the device the user chose (a trust or history entry
        dialled at its URI, a LAN unit reached through the server): ZRTP meeting another ZID raises
        identity_mismatch."""
        route = self.resolve_target(target)
        if expected_zid is not None:  # the same device, reached another way: ZRTP must meet it there too
            if route.expected_zid not in (None, expected_zid):
                raise PhoneError(f"{route.label} is another device now ({route.expected_zid.hex()})")
            route = replace(route, expected_zid=expected_zid)
        if route.expected_zid is None and route.account is not None:
            # A server account a bound call met before: the same device is expected there (words or not).
            route = replace(route, expected_zid=self._account_zid(route.account))
        if route.leg.ua is None:
            raise PhoneError("the phone is not started")
        if self.calls.busy:
            raise PhoneError("already in a call (one call at a time)")
        ctx, policy = self._call_kit()
        from zcall.call import Call, SipSide, new_call_id
        from zcall.callcore import CallCore

        core = CallCore(
            new_call_id(), "out", route.label, policy, self._now(),
            dtls=route.dtls, expected_zid=route.expected_zid, fallback_aor=route.fallback,
            account=route.account,
            where=(str(route.uri), route.dest),
        )  # fmt: skip
        call = Call(ctx, core, SipSide(route.leg, route.uri, route.dest))
        self.calls.add(call)
        call.step(lambda now: None)
        try:
            await call.opened
        except Exception as exc:
            raise PhoneError(f"cannot open the call's audio or media port: {exc}") from exc
        return call.id

    def _account_zid(self, account: str) -> bytes | None:
        """The ZID a bound call met at this server account (an unreadable cache knows none)."""
        try:
            return self.cache.account_zid(account)
        except CacheError:
            return None

    def _fall_back(self, aor: str, expected_zid: bytes | None) -> None:
        """A LAN peer that did not even ring: reach it through the server instead (DTLS-SRTP)."""
        if self.server is None or not self.server.registered.is_set():
            return
        task = asyncio.get_running_loop().create_task(self.call(f"sips:{aor}", expected_zid))
        task.add_done_callback(self._report_failed_call)

    def _report_failed_call(self, task: asyncio.Task[str]) -> None:
        if not task.cancelled() and isinstance(task.exception(), PhoneError):
            self.emit(events.Error(message=str(task.exception())))

    async def answer(self, call_id: str | None = None) -> str:
        call = self._find_call(call_id, state=events.CallState.INCOMING)
        self._command(call, call.core.answer)
        try:
            await call.opened
        except Exception as exc:
            raise PhoneError(f"cannot open the call's audio or media port: {exc}") from exc
        if call.core.ended:
            raise PhoneError("cannot accept the call's media")
        return call.id

    def reject(self, call_id: str | None = None) -> str:
        call = self._find_call(call_id, state=events.CallState.INCOMING)
        self._command(call, call.core.reject)
        return call.id

    @staticmethod
    def _command(call: Call, command: Callable[[float], None]) -> None:
        from zcall.callcore import CallCommandError  # loaded with the call

        try:
            call.step(command)
        except CallCommandError as exc:
            raise PhoneError(str(exc)) from exc

    def hangup(self, call_id: str | None = None) -> str:
        call = self._find_call(call_id)
        self._command(call, call.core.hangup)
        return call.id

    def verify(self, call_id: str | None = None, words_match: bool = True) -> str:
        call = self._find_call(call_id, state=events.CallState.SECURE)
        self._command(call, lambda now: call.core.words(words_match, now))
        return call.id

    def set_muted(self, muted: bool, call_id: str | None = None) -> None:
        call = self._find_call(call_id)
        call.step(lambda now: call.core.set_muted(muted))

    @property
    def volume(self) -> int:
        return self._volume

    def set_volume(self, percent: int) -> int:
        """Playback volume 0-100 for the calls now and later; returns the value applied."""
        self._volume = max(0, min(100, int(percent)))
        if self._calling is not None:
            self._calling[0].volume = self._volume
        for call in self.calls:
            call.set_volume(self._volume)
        return self._volume

    def is_muted(self, call_id: str | None = None) -> bool:
        """Whether our microphone is held back in this call (by the user or after a cache mismatch)."""
        return self._find_call(call_id).core.muted

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
            "calls": [call.status() for call in self.calls],
            "tasks": len(asyncio.all_tasks()),  # a soak watches this stay flat
            "calls_alive": self.calls.alive,  # and this drop back once a call has ended
            "peers": self.peers.status(),
        }

    def _find_call(self, call_id: str | None, state: events.CallState | None = None) -> Call:
        try:
            return self.calls.find(call_id, state)
        except NoSuchCall as exc:
            raise PhoneError(str(exc)) from exc

    # --- the control socket ---------------------------------------------------------------------------

    async def _on_control(self, cmd: str, args: dict[str, Any]) -> Any:
        try:
            match cmd:
                case "call":
                    return {"id": await self.call(str(args.get("target", "")), _zid_arg(args.get("zid")))}
                case "answer":
                    return {"id": await self.answer(args.get("id"))}
                case "hangup":
                    return {"id": self.hangup(args.get("id"))}
                case "verify":
                    return {"id": self.verify(args.get("id"), bool(args.get("match", True)))}
                case "status":
                    return self.status()
        except PhoneError as exc:
            raise ControlError(str(exc)) from exc
        raise ControlError(f"unknown command {cmd!r}")

    # --- SIP plumbing ---------------------------------------------------------------------------------

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _on_sip_event(self, leg: SipLeg, event: ua.UaEvent) -> None:
        if isinstance(event, ua.IncomingCall):
            self._on_incoming(leg, event)
            return
        if isinstance(event, ua.Registered | ua.RegistrationFailed):
            if self.server is not None and leg is self.server:
                self.server.on_registration(event)
            return
        if isinstance(event, ua.OptionsResult):
            return
        self.calls.on_dialog_event(leg, event)

    def _on_unreachable(self, dest: Addr, why: str) -> None:
        for call in self.calls:
            if call.sip.leg is self.lan and call.sip.dest == dest:
                call.step(partial(call.core.sip_unreachable, why))

    def _on_incoming(self, leg: SipLeg, event: ua.IncomingCall) -> None:
        assert leg.ua is not None
        from zcall.incoming import Refuse, take_or_refuse

        account = None
        if leg is self.lan:
            caller_zid = self.peers.at(event.source[0])
        else:  # through the server: the ZID a bound call met at the caller's account, else a unit on the
            # LAN announcing that account (aor= in its TXT)
            account = account_of(event.caller.uri)
            caller_zid = (self._account_zid(account) or self.peers.with_aor(account)) if account else None
        verified = [p.zid for p in self._verified()]
        decision = take_or_refuse(event.sdp, self.calls.busy, caller_zid, self.settings.auto_answer, verified)
        if isinstance(decision, Refuse):
            leg.ua.reject(event.call_id, decision.status, self._now(), decision.reason)
            return
        caller = event.caller.display or str(event.caller.uri)
        ctx, policy = self._call_kit()
        from zcall.call import Call, SipSide, new_call_id
        from zcall.callcore import CallCore

        core = CallCore(
            new_call_id(), "in", caller, policy, self._now(), dtls=decision.dtls, offer=decision.offer,
            expected_zid=decision.expected_zid, account=account, auto_answer=decision.auto_answer,
            unattended_needs_verified=decision.needs_verified, where=(str(event.caller.uri), event.source),
        )  # fmt: skip
        call = Call(ctx, core, SipSide(leg), event.call_id)
        self.calls.add(call)
        call.step(lambda now: None)

    def _forget(self, call: Call) -> None:
        self.calls.forget(call)
