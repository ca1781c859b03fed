"""The call's media port on the server path when [nat] is set: an ICE agent (RFC 8445) on aioice.

aioice gathers host, server-reflexive (STUN) and relayed (TURN over UDP, TCP or TLS) candidates, runs the
connectivity checks, and keeps checking consent on the selected pair (RFC 7675: a request every ~5 s, consent
lost after 6 unanswered, i.e. 30 s). This adapter gives the call what its media needs from all that:

- `sendto(data, addr)` / `close()`, the two calls MediaSession makes on its port: everything goes out on the
  selected pair (or, to a peer without ICE, from the default candidate to its c= address);
- every datagram that is not STUN goes to `on_datagram(data, addr)` as the media's own socket would hand it
  over (RFC 7983 first-byte demux: STUN stays with aioice), and only from an address the peer gave as a
  candidate or proved by an authenticated check (a peer-reflexive one). Before the peer's candidates are
  known, a few packets wait; anything else is dropped and counted. The peer may send on another valid pair
  than the one we selected (RFC 8445 §12: media is accepted on any valid pair), e.g. from its host socket
  to our relay while we send to its relay;
- `path`: what kind of route media takes ("host", "srflx", "prflx" or "relay");
- `on_lost(reason)`: the pair is gone (consent expired, the relay dropped).

aioice exposes neither the selected pair nor a received packet's source, and gathers on every interface, so
this module reads and sets a few of its connection's internals (`_nominated`, `_protocols`, `_check_list`,
`_remote_candidates`, `_local_candidates*`; the version range is pinned in pyproject.toml). What aioice does
not do: ICE-TCP candidates, TURN relaying over TCP to the peer (RFC 6062), TURN over DTLS, STUN over TLS,
trickle ICE and ICE restarts; it nominates aggressively (the first pair that works, not the best one).
RTCP rides on the RTP component (rtcp-mux); a peer that does ICE without rtcp-mux gets no RTCP from us.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ssl
from collections.abc import Callable
from typing import Any

import aioice
from aioice import stun
from aioice.ice import CandidatePair, StunProtocol

from zcall.errors import ZcallError
from zcall.events import MediaPath
from zcall.natconfig import NatSettings
from zcall.net import Addr
from zcall.sip.icesdp import Candidate, IceDescription

GATHER_TIMEOUT_S = 3  # a dead STUN or TURN server holds up every call this long; TURN over TLS needs ~4 RTT
CONNECT_TIMEOUT_S = 10.0
_EARLY_PACKETS = 8  # held until the peer's candidates are known (a DTLS ClientHello racing the 200 OK)
_HELD_SENDS = 16  # sent once a pair is selected (our DTLS flight answering a peer whose checks ended first)
_PATH_ORDER: tuple[MediaPath, ...] = ("relay", "prflx", "srflx", "host")  # the more indirect end names it

DatagramHandler = Callable[[bytes, Addr], None]


class IceError(ZcallError):
    """ICE could not give this call a media path; the message says why."""


def _to_aioice(candidate: Candidate) -> aioice.Candidate:
    return aioice.Candidate(
        foundation=candidate.foundation, component=candidate.component, transport=candidate.transport,
        priority=candidate.priority, host=candidate.host, port=candidate.port, type=candidate.type,
        related_address=candidate.related_address, related_port=candidate.related_port,
    )  # fmt: skip


def _from_aioice(candidate: aioice.Candidate) -> Candidate:
    return Candidate(
        foundation=candidate.foundation, component=candidate.component, transport=candidate.transport.lower(),
        priority=candidate.priority, host=candidate.host, port=candidate.port, type=candidate.type,
        related_address=candidate.related_address, related_port=candidate.related_port,
    )  # fmt: skip


def _address(candidate: aioice.Candidate) -> tuple[str | None, int | None]:
    return candidate.host, candidate.port


def path_of(local_type: str, remote_type: str) -> MediaPath:
    """The contract's `path`: relay if either end relays, else the peer's reflexive kind, else host."""
    for kind in _PATH_ORDER:
        if kind in (local_type, remote_type):
            return kind
    return "host"


class _Connection(aioice.Connection):
    """aioice's connection with RFC 8445 §7.3.1.4 done fully: a check arriving on a pair whose own check is
    still in progress triggers a new check now. aioice leaves that pair to its retransmission timer (500 ms),
    so behind NAT, where our first check is dropped until the peer's arrives, every path cost 500 ms more."""

    def check_incoming(self, message: stun.Message, addr: tuple[str, int], protocol: StunProtocol) -> None:
        super().check_incoming(message, addr, protocol)
        for pair in self._check_list:
            if pair.protocol is protocol and pair.remote_addr == addr:
                if pair.state == CandidatePair.State.IN_PROGRESS and pair.task is not None \
                        and not getattr(pair, "retriggered", False):  # fmt: skip
                    pair.retriggered = True  # type: ignore[attr-defined]  # once: no storm of restarts
                    pair.task.cancel()
                    pair.task = None
                    self.check_start_task(pair)
                break


class IceAgent:
    """One call's ICE: `await gather()`, put `description()` in the SDP, `await connect(...)`, then use it as
    the media's port. `close()` frees the sockets and the TURN allocation."""

    def __init__(
        self,
        nat: NatSettings,
        local_ip: str,
        *,
        controlling: bool,
        on_datagram: DatagramHandler,
        on_lost: Callable[[str], None],
        tls_ca: str = "",
    ) -> None:
        turn = nat.turn
        turn_ssl: bool | ssl.SSLContext = False
        if turn is not None and turn.tls:
            turn_ssl = ssl.create_default_context(cafile=tls_ca or None)  # the server's name is checked
        self._conn = _Connection(
            ice_controlling=controlling,
            stun_server=None if nat.stun is None else (nat.stun.host, nat.stun.port),
            turn_server=None if turn is None else (turn.host, turn.port),
            turn_username=nat.turn_user or None,
            turn_password=nat.turn_password or None,
            turn_ssl=turn_ssl,  # type: ignore[arg-type]  # aioice passes it on to create_connection(ssl=)
            turn_transport="udp" if turn is None else turn.transport,
            use_ipv6=False,
            transport_policy=aioice.TransportPolicy.RELAY if nat.relay_only else aioice.TransportPolicy.ALL,
        )
        self._local_ip = local_ip
        self._relay_only = nat.relay_only
        self._on_datagram = on_datagram
        self._on_lost = on_lost
        self._allowed: set[Addr] = set()
        self._remote_known = False
        self._early: collections.deque[tuple[bytes, Addr]] = collections.deque(maxlen=_EARLY_PACKETS)
        self._selected: tuple[StunProtocol, Addr] | None = None
        self._held: collections.deque[bytes] | None = collections.deque(maxlen=_HELD_SENDS)
        self._watch: asyncio.Task[None] | None = None
        self._closed = False
        self.path: MediaPath | None = None
        self.drops: collections.Counter[str] = collections.Counter()

    # --- gathering ---

    async def gather(self) -> IceDescription:
        """Host candidates on our address (not every interface: the phone speaks from the one it binds),
        then STUN and TURN in parallel; a server that does not answer in 3 s gives no candidate. Relay only:
        the TURN allocation alone (RFC 9429 §3.5.3's "relay" policy)."""
        conn = self._conn
        conn._local_candidates_start = True
        addresses = [] if self._relay_only else [self._local_ip]
        candidates = await conn.get_component_candidates(1, addresses, timeout=GATHER_TIMEOUT_S)
        conn._local_candidates += candidates
        conn._local_candidates_end = True
        for protocol in conn._protocols:
            self._tap(protocol)
        return self.description()

    def description(self) -> IceDescription:
        conn = self._conn
        candidates = tuple(_from_aioice(c) for c in conn.local_candidates)
        return IceDescription(conn.local_username, conn.local_password, candidates)

    @property
    def default(self) -> Addr:
        """The default candidate, said in c=/m= (RFC 8445 §5.1.2: the relay if any, else srflx, else host):
        where a peer without ICE sends."""
        candidate = self._conn.get_default_candidate(1)
        if candidate is None:
            raise IceError(f"no ICE candidate on {self._local_ip}")
        return candidate.host, candidate.port

    @property
    def remote(self) -> Addr | None:
        """Where media goes: the selected pair's remote address (None before a pair is selected)."""
        return None if self._selected is None else self._selected[1]

    @property
    def gathered(self) -> tuple[str, ...]:
        return tuple(c.type for c in self._conn.local_candidates)

    # --- connecting ---

    async def connect(
        self, remote: IceDescription | None, peer: Addr, timeout: float = CONNECT_TIMEOUT_S
    ) -> Addr:
        """Find the media path: ICE checks with a peer that does ICE, else the default candidate to the peer's
        c= address. Returns the peer address media goes to; raises IceError."""
        if remote is None or not remote.candidates:
            return self._without_ice(peer)  # no ICE, or none we can use (TCP only, mDNS names): its c=
        conn = self._conn
        conn.remote_username, conn.remote_password = remote.ufrag, remote.pwd
        conn.remote_is_lite = remote.lite
        if remote.lite:
            conn.switch_role(ice_controlling=True)  # RFC 8445 §6.1.1: a lite peer is always controlled
        for candidate in remote.candidates:
            await conn.add_remote_candidate(_to_aioice(candidate))
        await conn.add_remote_candidate(None)
        self._remote_known = True
        self._replay_early()
        try:
            await asyncio.wait_for(conn.connect(), timeout)
        except (ConnectionError, TimeoutError) as exc:
            ours = " ".join(sorted({c.type for c in conn.local_candidates})) or "none"
            theirs = " ".join(sorted({c.type for c in remote.candidates})) or "none"
            why = str(exc) or f"no pair answered in {timeout:g} s"
            raise IceError(f"ICE found no working path ({why}; ours: {ours}; theirs: {theirs})") from None
        pair: CandidatePair = conn._nominated[1]
        self._select(pair.protocol, pair.remote_addr)
        self.path = path_of(pair.local_candidate.type, pair.remote_candidate.type)
        self._watch = asyncio.get_running_loop().create_task(self._watch_consent())
        return pair.remote_addr

    def _without_ice(self, peer: Addr) -> Addr:
        default = self._conn.get_default_candidate(1)
        if default is None:
            raise IceError("no local candidate to reach a peer without ICE")
        # The socket behind the default candidate: the relay's, or the host one a srflx candidate maps.
        sockets = {(default.host, default.port), (default.related_address, default.related_port)}
        protocol = next((p for p in self._conn._protocols if p.local_candidate.type == "relay"), None)
        if default.type != "relay":
            hosts = [p for p in self._conn._protocols if p.local_candidate.type == "host"]
            protocol = next((p for p in hosts if _address(p.local_candidate) in sockets), None)
        if protocol is None:
            raise IceError("no local candidate to reach a peer without ICE")
        self._select(protocol, peer)
        # Open the way in first: a NAT lets the peer's packets in, and a TURN server relays them, only once we
        # have sent to the peer (a permission). A STUN Binding indication does that and asks for no answer;
        # a peer that sends first (its DTLS ClientHello) would otherwise be dropped until we send.
        punch = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.INDICATION)
        protocol.transport.sendto(bytes(punch), peer)
        self._allowed = {peer}
        self._remote_known = True
        self._replay_early()
        self.path = path_of(default.type, "host")
        return peer

    def _select(self, protocol: StunProtocol, remote: Addr) -> None:
        self._selected = (protocol, remote)
        held, self._held = self._held or (), None
        for data in held:
            protocol.transport.sendto(data, remote)

    async def _watch_consent(self) -> None:
        """aioice closes the connection when consent expires: the call must stop sending and hear why."""
        with contextlib.suppress(asyncio.CancelledError):
            event = await self._conn.get_event()
            if isinstance(event, aioice.ConnectionClosed) and not self._closed:
                self._selected = None
                self._on_lost("ICE consent expired (the peer stopped answering on the media path)")

    # --- the media's port ---

    def sendto(self, data: bytes, addr: Any = None) -> None:
        """Out on the selected pair (the address is the pair's; a caller's is ignored)."""
        if self._selected is None:
            if self._held is not None and not self._closed:
                self._held.append(data)  # no pair yet: out as soon as one is selected
            else:
                self.drops["not-connected"] += 1
            return
        protocol, remote = self._selected
        protocol.transport.sendto(data, remote)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._selected = None
        self._drop_callbacks()
        if self._watch is not None:
            self._watch.cancel()
        with contextlib.suppress(RuntimeError):  # a closed loop: the sockets went with it
            asyncio.get_running_loop().create_task(self._conn.close())

    async def aclose(self) -> None:
        """Close and wait until the sockets are shut and the TURN allocation is deleted."""
        self._closed = True
        self._selected = None
        self._drop_callbacks()
        if self._watch is not None:
            self._watch.cancel()
        await self._conn.close()

    # --- receiving ---

    def _tap(self, protocol: StunProtocol) -> None:
        """Take the media out of aioice's socket before it reaches aioice's queue: STUN (first byte 0-3,
        RFC 7983) stays with aioice, the rest comes to the call with its source."""
        stun_received = protocol.datagram_received

        def received(data: bytes | str, addr: tuple[Any, ...]) -> None:
            if isinstance(data, bytes) and data and data[0] > 3:
                self._media_received(data, (str(addr[0]), int(addr[1])))
            else:
                stun_received(data, addr)

        protocol.datagram_received = received  # type: ignore[method-assign]

    def _media_received(self, data: bytes, source: Addr) -> None:
        if self._closed:
            return
        if not self._remote_known:
            if len(self._early) == self._early.maxlen:
                self.drops["early-overflow"] += 1
            self._early.append((data, source))
            return
        if source not in self._allowed:
            self._allowed = self._remote_addresses()  # a peer-reflexive candidate learned since
            if source not in self._allowed:
                self.drops["foreign-source"] += 1
                return
        self._on_datagram(data, source)

    def _drop_callbacks(self) -> None:
        # The owner's bound methods point back at it (a call): a closed agent hands nothing on, and letting
        # go of them lets refcounting free the ended call instead of leaving it to the cyclic gc.
        self._on_datagram = _ignore_datagram
        self._on_lost = _ignore_lost

    def _remote_addresses(self) -> set[Addr]:
        known = {(c.host, c.port) for c in self._conn._remote_candidates}
        if self._selected is not None:
            known.add(self._selected[1])
        return known

    def _replay_early(self) -> None:
        self._allowed |= self._remote_addresses()
        early, self._early = list(self._early), collections.deque(maxlen=_EARLY_PACKETS)
        for data, source in early:
            self._media_received(data, source)


def _ignore_datagram(data: bytes, addr: Addr) -> None:
    pass


def _ignore_lost(reason: str) -> None:
    pass
