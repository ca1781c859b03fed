"""A SIP server account: one TLS connection to the registrar (the outbound proxy), a UserAgent speaking over
it, and the registration kept alive (RFC 3261 §10, RFC 5626 CRLF keep-alive, RFC 5923-style flow reuse: the
server reaches us back on the connection we opened, so we need no listening port).

Without an outbound proxy the server is found in DNS (RFC 3263: NAPTR, SRV, A/AAAA; see zcall.sip.locate) and
the next target is tried when one cannot be connected to or fails TLS. The server's certificate is verified
(system store or the configured CA) against the SIP domain (RFC 5922); a failure is a `registration_failed`
naming the reason, and there is never a fallback to a plain transport. A dropped
connection is re-opened with backoff and the binding registered again; closing un-registers.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import ssl
from collections.abc import Callable

from zcall import __version__, events, sip
from zcall.errors import ZcallError
from zcall.net import Addr, is_ip_literal, moved_to, routed_source
from zcall.settings import PhoneSettings
from zcall.sip.backoff import REFUSED_CAP_S, UNREACHABLE_CAP_S, Backoff
from zcall.sip.keepalive import Due, KeepAlive
from zcall.sip.locate import LocateError, Locator
from zcall.sip.transport import StreamTransport, client_tls_context
from zcall.sip.uri import SipUri, parse_uri, split_host_port
from zcall.sipleg import SipLeg

REGISTER_EXPIRES = 600
UNREGISTER_WAIT_S = 2.0
CONNECT_TIMEOUT_S = 5.0  # per DNS target, so a dead one does not hold up the next
NETWORK_CHECK_S = 2.0  # how often the route to the server is checked for a new local address


class ServerConfigError(ZcallError, ValueError):
    """The [server] settings cannot work; the message says which one."""


class NoServerReached(ZcallError):
    """Every target DNS gave failed; the message says how each one did. `lasting`: every one of them
    failed in a way retrying soon will not mend (see is_lasting)."""

    def __init__(self, message: str, *, lasting: bool = False) -> None:
        super().__init__(message)
        self.lasting = lasting


# What a failed connect means, by errno: asyncio's own text ("Connect call failed (...)") does not say.
_SOCKET_FAILURES = {
    errno.ECONNREFUSED: "connection refused (nothing listens on that port)",
    errno.ECONNRESET: "connection reset by the server",
    errno.ECONNABORTED: "connection aborted",
    errno.EHOSTUNREACH: "no route to the server's host",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "connection timed out",
    errno.EADDRNOTAVAIL: "no local address to connect from",
}


def describe_tls_failure(exc: BaseException) -> str:
    """A user-facing reason for a failed connection or TLS handshake with the server; never empty."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        text = (exc.verify_message or str(exc)).lower()
        if "hostname" in text or "ip address mismatch" in text or exc.verify_code == 62:
            return f"certificate hostname mismatch: {exc.verify_message}"
        if "expired" in text or exc.verify_code == 10:
            return "certificate expired"
        if "not yet valid" in text or exc.verify_code == 9:
            return "certificate not yet valid"
        if "self-signed" in text or "self signed" in text or "unable to get local issuer" in text:
            return f"unknown CA: {exc.verify_message}"
        return f"certificate verification failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {getattr(exc, 'reason', None) or exc.strerror or type(exc).__name__}"
    if isinstance(exc, TimeoutError):
        return "server did not answer (timeout)"
    if isinstance(exc, OSError):
        return f"cannot reach the server: {_socket_failure(exc)}"
    return f"cannot reach the server: {str(exc) or type(exc).__name__}"


def _socket_failure(exc: OSError) -> str:
    if exc.errno in _SOCKET_FAILURES:
        return _SOCKET_FAILURES[exc.errno]
    if exc.errno:
        return os.strerror(exc.errno)
    if isinstance(exc, ConnectionError) and not str(exc):
        # asyncio's TLS layer raises a bare ConnectionResetError when the peer closes during the handshake.
        return "the server closed the connection before TLS was set up"
    return exc.strerror or str(exc) or type(exc).__name__


def is_lasting(exc: BaseException) -> bool:
    """A failure that retrying soon will not mend: the server answered with a certificate we refuse."""
    return isinstance(exc, ssl.SSLCertVerificationError)


def parse_proxy(text: str, default_port: int) -> Addr:
    """HOST[:PORT], or an IPv6 address bare or as [ADDR]:PORT (RFC 3986 §3.2.2)."""
    if ":" in text and is_ip_literal(text):
        return text, default_port  # a bare IPv6 address: its colons are no port
    bad = ServerConfigError(f"server.outbound_proxy: expected HOST:PORT or [IPv6]:PORT, got {text[:64]!r}")
    try:
        host, port = split_host_port(text)
    except sip.SipParseError as exc:
        raise bad from exc
    if host.startswith("["):
        host = host[1:-1]
        if ":" not in host or not is_ip_literal(host):
            raise bad
    return host, port or default_port


class ServerLeg(SipLeg):
    name = "server"

    def __init__(
        self,
        settings: PhoneSettings,
        local_ip: str,
        on_event: Callable[[SipLeg, sip.UaEvent], None],
        emit: Callable[[events.Event], None],
        on_address: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(on_event)
        self._on_address = on_address  # the phone's address moved (new network): calls use the new one
        try:
            self.registrar: SipUri = parse_uri(settings.server_uri)
        except sip.SipParseError as exc:
            raise ServerConfigError(f"server.uri: not a SIP URI: {settings.server_uri!r}") from exc
        transport = (self.registrar.params.get("transport") or "").lower()
        if self.registrar.scheme != "sips" and transport != "tls":
            raise ServerConfigError("server.uri: zcall talks to servers over TLS only: use a sips: URI")
        if not settings.server_user:
            raise ServerConfigError("server.user: a server account needs a user name")
        self.settings = settings
        self.local_ip = local_ip
        self.emit = emit
        self.hostname = self.registrar.host.strip("[]")
        default_port = self.registrar.port or 5061
        # The configured outbound proxy, else DNS (RFC 3263); self.proxy is where the connection goes now.
        proxy = settings.outbound_proxy
        self.fixed_proxy = parse_proxy(proxy, default_port) if proxy else None
        self.proxy: Addr = self.fixed_proxy or (self.hostname, default_port)
        self.server_label = f"sips:{self.hostname}:{default_port}"
        tls = client_tls_context(settings.server_ca or None)
        self.transport = StreamTransport(self._on_bytes, client_ssl=tls, on_pong=self._on_pong)
        self.registered = asyncio.Event()
        self.expires = 0
        self._token: str | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._keepalive: asyncio.Task[None] | None = None
        self._last_failure: str | None = None
        self._connection_lost = asyncio.Event()
        self._lost_reason: str | None = None
        self._flow: KeepAlive | None = None

    # --- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise())

    async def close(self) -> None:
        """Un-register (briefly waiting for the answer), then drop the connection."""
        if self._supervisor is not None:
            self._supervisor.cancel()
        if self._keepalive is not None:
            self._keepalive.cancel()
        if self.ua is not None and self._token is not None and self.registered.is_set():
            self.registered.clear()
            self.ua.unregister(self._token, self.now())
            self.flush()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wait_unregistered(), UNREGISTER_WAIT_S)
        self.closed = True
        self.stop_timer()
        await self.transport.close()

    async def _wait_unregistered(self) -> None:
        while self.expires != 0:
            await asyncio.sleep(0.05)

    # --- the connection and the binding --------------------------------------------------------------

    async def _supervise(self) -> None:
        """Keep one verified TLS connection and a registration on it; back off after failures (a few seconds
        while the server cannot be reached, so it is registered with soon after it comes back)."""
        backoff = Backoff()
        while not self.closed:
            cap = UNREACHABLE_CAP_S
            try:
                await self._connect_and_register()
                backoff.reset()
                self._connection_lost.clear()
                checked = self.now()
                while self.transport.connected(self.proxy) and not self._connection_lost.is_set():
                    await asyncio.sleep(0.5)
                    if self.now() - checked >= NETWORK_CHECK_S:
                        checked = self.now()
                        self._follow_network()
                self.registered.clear()
                reason = self._lost_reason or "connection to the server lost; reconnecting"
                self.emit(events.RegistrationFailed(reason=reason))
            except (OSError, TimeoutError, ssl.SSLError) as exc:
                self._fail(describe_tls_failure(exc))
                cap = REFUSED_CAP_S if is_lasting(exc) else cap
            except LocateError as exc:
                self._fail(f"cannot find the server in DNS: {exc}")
            except NoServerReached as exc:
                self._fail(str(exc))
                cap = REFUSED_CAP_S if exc.lasting else cap
            await asyncio.sleep(backoff.next_delay(cap))

    async def _connect(self) -> None:
        """Open the TLS connection: to the outbound proxy, else to the first DNS target that answers and
        proves it is the SIP domain (RFC 3263 §4.3 failover, RFC 5922 certificate check)."""
        if self.fixed_proxy is not None:
            self.proxy = self.fixed_proxy
            await self.transport.connect(self.proxy, server_hostname=self.hostname)
            return
        failures: list[str] = []
        lasting = True
        locator = Locator()  # resolv.conf read again on every attempt: the unit may have changed networks
        for hop in await locator.hops(self.registrar):
            try:
                addresses = await locator.addresses(hop)
            except LocateError as exc:
                failures.append(str(exc))
                lasting = False
                continue
            for address in addresses:
                try:
                    await self.transport.connect((address, hop.port), server_hostname=self.hostname,
                                                 timeout=CONNECT_TIMEOUT_S)  # fmt: skip
                except (OSError, TimeoutError, ssl.SSLError) as exc:
                    failures.append(f"{hop.host} ({address}:{hop.port}): {describe_tls_failure(exc)}")
                    lasting = lasting and is_lasting(exc)
                    continue
                self.proxy = (address, hop.port)
                return
        if not failures:
            raise NoServerReached(f"no server found for {self.hostname}")
        raise NoServerReached("; ".join(failures[:4]), lasting=lasting)

    async def _connect_and_register(self) -> None:
        await self._connect()
        self._lost_reason = None
        sock = self.transport.socket_for(self.proxy)
        local_port = int(sock.getsockname()[1]) if sock is not None else 5061
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        settings = self.settings
        config = sip.UaConfig(
            host=self.local_ip,
            port=local_port,
            transport="TLS",
            user=settings.server_user,
            display=settings.name,
            user_agent=f"zcall/{__version__}",
            aor=SipUri("sips", self.hostname, settings.server_user),
        )
        credentials = sip.DigestClient(settings.server_user, settings.server_password)
        agent = sip.UserAgent(config, credentials)
        self.attach(agent)
        self._token = agent.register(self.registrar, self.now(), expires=REGISTER_EXPIRES, dest=self.proxy)
        self.flush()
        if self._keepalive is not None:
            self._keepalive.cancel()
        self._flow = KeepAlive(self.now(), float(self.settings.server_keepalive))
        self._keepalive = asyncio.get_running_loop().create_task(self._keep_alive(self._flow))

    def _follow_network(self) -> None:
        """A unit that changed networks (or addresses) keeps a TLS flow from an address it no longer has or
        routes from: drop it at once and register again from the new one, instead of waiting for missing
        pongs (the binding at the server would point at the old address until then)."""
        sock = self.transport.socket_for(self.proxy)
        if sock is None:
            return
        try:
            source = str(sock.getsockname()[0])
        except OSError:
            return
        moved = moved_to(source, routed_source(self.proxy[0]), pinned=bool(self.settings.bind))
        if moved is None:
            return
        self._lost_reason = f"this unit's address changed ({source} -> {moved}); registering again"
        self.local_ip = moved
        if self._on_address is not None:
            self._on_address(moved)
        self.transport.drop(self.proxy)
        self._connection_lost.set()

    async def _keep_alive(self, flow: KeepAlive) -> None:
        """RFC 5626 §4.4.1: a CRLF ping keeps NAT bindings open; a pong missing for 10 s means the flow is
        dead (a NAT or the server forgot us while TCP looks fine): drop it, reconnect, register again."""
        while not self.closed and (due := flow.get_timer()) is not None:
            await asyncio.sleep(max(0.0, due - self.now()))
            action = flow.handle_timer(self.now())
            if action is Due.PING:
                try:
                    self.transport.ping(self.proxy)
                except ConnectionError:
                    self._connection_lost.set()
                    return
            elif action is Due.DEAD:
                self._lost_reason = "the server stopped answering keep-alive pings; reconnecting"
                self.transport.drop(self.proxy)
                self._connection_lost.set()
                return

    def _on_pong(self, addr: Addr) -> None:
        if self._flow is not None and addr == self.proxy:
            self._flow.alive(self.now())

    def _fail(self, reason: str) -> None:
        self.registered.clear()
        if reason != self._last_failure:  # one event per distinct reason, not one per retry
            self._last_failure = reason
            self.emit(events.RegistrationFailed(reason=reason))

    def on_registration(self, event: sip.Registered | sip.RegistrationFailed) -> None:
        """The phone hands registration outcomes back here."""
        if isinstance(event, sip.Registered):
            self.expires = event.expires
            if event.expires > 0:
                self._last_failure = None
                self.registered.set()
                self.emit(events.Registered(server=self.server_label, expires=event.expires))
            return
        reason = f"{event.status} {event.reason}".strip()
        if event.status in (401, 403, 407):
            reason = f"wrong user name or password ({reason})"
        self._fail(reason)

    # --- bytes ------------------------------------------------------------------------------------------

    def _on_bytes(self, data: bytes, addr: Addr, stream: bool) -> None:
        if self._flow is not None:
            self._flow.alive(self.now())  # any message back shows the flow works
        self.received(data, self.proxy, stream=True)

    def _send(self, data: bytes, addr: Addr) -> None:
        # Everything goes out on the one connection (outbound proxy); the server routes it on.
        try:
            self.transport.send_nowait(data, self.proxy)
        except ConnectionError:
            self._connection_lost.set()
