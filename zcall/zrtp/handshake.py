"""The ZRTP handshake (RFC 6189 §4, DH mode): the state of one endpoint and what each message it receives
does to it. session.py wraps it in the owner's API and the timers.

The states are in states.py, the checks of a first Hello in hellocheck.py, the hash-chain checks in chain.py,
the key exchange computations in exchange.py, algorithm choice in negotiation.py, retransmission in
retransmit.py, the events it reports in events.py and error codes in errors.py.
"""

from __future__ import annotations

import collections
import contextlib
from typing import Any, Literal

from zcall.zrtp import crypto
from zcall.zrtp import messages as m
from zcall.zrtp.chain import check_commit, check_dhpart2, check_hello_by_dhpart1
from zcall.zrtp.dispatch import Route
from zcall.zrtp.errors import Drop, ZrtpErrorCode
from zcall.zrtp.events import CacheMismatch, Event, Failed, PeerIdentified
from zcall.zrtp.exchange import Exchange, SecretsByZid, mac_sealed
from zcall.zrtp.hellocheck import SignaledHash, check_first_hello
from zcall.zrtp.negotiation import NON_DH_MODES, Offer, name
from zcall.zrtp.packet import Packet
from zcall.zrtp.retransmit import Outbox
from zcall.zrtp.states import ACCEPTED_IN, TERMINAL, TRANSITIONS, State

VERSION = m.VERSION
CACHE_NEVER_EXPIRES = 0xFFFFFFFF


class Handshake:
    """One endpoint's handshake state; each received message moves it through states.TRANSITIONS."""

    def __init__(
        self,
        zid: bytes,
        role_hint: Literal["initiator", "responder"] | None = None,
        *,
        ssrc: int,
        client_id: str = "zcall 0.1",
        key_agreements: tuple[str, ...] = ("X255", "DH3k", "EC25", "EC38", "DH2k"),
        hashes: tuple[str, ...] = ("S256", "S384"),
        ciphers: tuple[str, ...] = ("AES1", "AES3"),
        auth_tags: tuple[str, ...] = ("HS80", "HS32"),
        sas_types: tuple[str, ...] = ("B256", "B32"),
        cache_expiry: int = CACHE_NEVER_EXPIRES,
        stall_timeout: float = 15.0,
    ) -> None:
        if len(zid) != m.ZID_LEN:
            raise ValueError("ZID must be 12 bytes")
        self._offer = Offer(hashes, ciphers, auth_tags, key_agreements, sas_types)
        self.zid = zid
        self.role_hint = role_hint
        self.ssrc = ssrc & 0xFFFFFFFF
        self._cache_expiry = cache_expiry
        self._stall_timeout = stall_timeout
        self._chain = crypto.HashChain.generate()
        hello = self._offer.hello(client_id, self._chain.h3, zid)
        self._hello_raw = mac_sealed(hello.encode(), self._chain.h2)
        self.state = State.DISCOVERY
        self.drops: collections.Counter[str] = collections.Counter()
        self._tx = Outbox(self.ssrc)
        self._events: collections.deque[Event] = collections.deque()
        self._last_progress = 0.0
        self._started = False
        self._peer_hello: m.Hello | None = None
        self._hello_acked = False
        self._signaled = SignaledHash()
        self._verified_override: bool | None = None
        self._provided = SecretsByZid()
        self._held_commit: m.Commit | None = None  # arrived while waiting for secrets
        self._aux_secret: bytes | None = None
        self._x: Exchange | None = None
        self._early_keypair: crypto.KeyPair | None = None

    def start(self, now: float) -> None:
        if self._started or self.state is not State.DISCOVERY:
            return
        self._started = True
        self._last_progress = now
        self._tx.start_hello(self._hello_raw, now)

    # ------------------------------------------------------------------------------------- machinery

    def _move(self, state: State) -> None:
        """The one place the state changes, checked against TRANSITIONS."""
        if state is not self.state and state not in TRANSITIONS[self.state]:
            raise RuntimeError(f"ZRTP {self.state.value} -> {state.value} is no transition")
        self.state = state

    def _progress(self, state: State, now: float) -> None:
        self._move(state)
        self._last_progress = now

    def _fail(self, reason: str, code: int | None) -> None:
        if self.state in (State.FAILED, State.CLOSED):
            return
        self._move(State.FAILED)
        self._tx.hello = None
        self._tx.retx = None
        self._events.append(Failed(reason, code))

    def _abort(self, code: ZrtpErrorCode, reason: str, now: float) -> None:
        """Send Error(code) until ErrorACK (T2) and report the failure once."""
        if self.state in TERMINAL:
            return
        self._events.append(Failed(reason, code))
        self._tx.hello = None
        self._move(State.ERROR_SENT)
        self._tx.start("Error", m.Error(code).encode(), now)
        self._x = None

    # -------------------------------------------------------------------------------------- dispatch

    def _dispatch(self, msg: m.Message, packet: Packet, now: float) -> None:
        """Route by wire type; a message its route does not allow in this state is dropped here, once."""
        wire_type = msg.raw[4:12]  # every parsed message keeps its exact bytes
        route = _ROUTES.get(wire_type)
        if route is None or self.state not in ACCEPTED_IN.get(wire_type, ()):
            raise Drop("after_end" if self.state in TERMINAL else "unexpected")
        route.run(self, msg, packet, now)

    def _on_error_ack(self) -> None:
        if self._tx.retx is None or self._tx.retx.kind != "Error":
            raise Drop("unexpected")
        self._tx.retx = None
        if self.state is State.ERROR_SENT:
            self._move(State.FAILED)

    def _on_ping(self, ping: m.Ping, packet: Packet) -> None:
        endpoint_hash = crypto.implicit_hash(self.zid)[:8]
        self._tx.send(m.PingAck(VERSION, endpoint_hash, ping.endpoint_hash, packet.ssrc).encode())

    def _on_error(self, msg: m.Error, now: float) -> None:
        self._tx.send(m.ErrorAck().encode())
        if self.state in TERMINAL:
            return
        if self.state is State.SECURE:
            # Error is unauthenticated: once keys are agreed, an injected one must not tear the call down.
            self.drops["error_after_secure"] += 1
            return
        self._tx.retx = None
        code: int = msg.code
        with contextlib.suppress(ValueError):
            code = ZrtpErrorCode(msg.code)
        self._fail(f"peer sent Error 0x{msg.code:x}", code)

    # --------------------------------------------------------------------------------------- discovery

    def _on_hello(self, hello: m.Hello, packet: Packet, now: float) -> None:
        if not self._started:
            self.start(now)  # the peer runs ZRTP: announce ourselves too
        if self._peer_hello is not None:
            if hello.raw != self._peer_hello.raw:
                # Unauthenticated: a third host can send one at any time. The accepted Hello stays
                # (GNU ZRTP and bzrtp ignore Hello once committed or secure).
                raise Drop("hello_changed")
            self._tx.send(m.HelloAck().encode())
            return
        if not self._signaled.vouches_for(hello):
            self._mismatched_hello(now)
            return
        check_first_hello(hello, packet, own_zid=self.zid, own_ssrc=self.ssrc)
        choice = self._offer.choose(hello)  # raises Abort when nothing is in common
        self._peer_hello = hello
        self._signaled.alarm_at = None
        # Both ends reach the same key agreement (§4.1.2), so the key pair can be made now and reused.
        self._early_keypair = crypto.KeyPair(choice.key_agreement)
        self._last_progress = now
        self._tx.send(m.HelloAck().encode())
        needs = hello.zid not in self._provided
        self._events.append(PeerIdentified(hello.zid, needs_secrets=needs, client_id=hello.client_id))
        self._maybe_commit(now)

    def _mismatched_hello(self, now: float) -> None:
        self.drops["hello_hash_mismatch"] += 1
        self._signaled.rejected(now)

    def _on_hello_ack(self, now: float) -> None:
        self._hello_acked = True
        self._tx.hello = None
        self._last_progress = now
        self._maybe_commit(now)

    def _secrets_ready(self) -> bool:
        return self._peer_hello is not None and self._peer_hello.zid in self._provided

    def _take_keypair(self, ka: str) -> crypto.KeyPair:
        pair = self._early_keypair
        self._early_keypair = None
        return pair if pair is not None and pair.ka == ka else crypto.KeyPair(ka)

    # ---------------------------------------------------------------------------------------- initiator

    def _maybe_commit(self, now: float) -> None:
        if (
            self.state is not State.DISCOVERY
            or self._peer_hello is None
            or not self._hello_acked
            or self.role_hint == "responder"
            or not self._secrets_ready()
        ):
            return
        hello = self._peer_hello
        choice = self._offer.choose(hello)
        keypair = self._take_keypair(choice.key_agreement)
        x = Exchange(
            choice, True, keypair, self._chain, self._provided.take(hello.zid), zidi=self.zid, zidr=hello.zid,
            peer_h3=hello.h3, aux_secret=self._aux_secret,
        )  # fmt: skip
        commit = x.make_commit(hello)
        self._x = x
        self._progress(State.COMMIT_SENT, now)
        self._tx.start("Commit", commit.raw, now)

    def _on_dhpart1(self, dh1: m.DHPart, now: float) -> None:
        x = self._x
        if x is None or self._peer_hello is None:
            raise Drop("unexpected")
        check_hello_by_dhpart1(self._peer_hello, dh1)
        x.complete(dh1, self._peer_hello.raw)
        self._progress(State.WAIT_CONFIRM1, now)
        self._tx.start("DHPart2", x.own_dhpart.raw, now)

    def _on_confirm1(self, confirm: m.Confirm, now: float) -> None:
        x = self._x
        if self.state is State.WAIT_CONF2ACK and x is not None and confirm.raw == x.peer_confirm:
            raise Drop("duplicate")
        if self.state is not State.WAIT_CONFIRM1 or x is None or x.keys is None or x.peer_dhpart is None:
            raise Drop("unexpected")
        x.accept_confirm(confirm)
        own_confirm = x.make_confirm(self._verified_override, self._cache_expiry)
        self._events.append(x.receive_keys())
        self._progress(State.WAIT_CONF2ACK, now)
        self._tx.start("Confirm2", own_confirm, now)

    # ---------------------------------------------------------------------------------------- responder

    def _on_commit(self, commit: m.Commit, now: float) -> None:
        x = self._x
        if self.state is State.WAIT_DHPART2 and x is not None and x.commit is not None:
            if commit.raw != x.commit.raw:
                raise Drop("unexpected")
            self._tx.send(x.own_dhpart.raw)  # our DHPart1 was lost: the initiator resent its Commit
            return
        if self.state is State.COMMIT_SENT and x is not None and x.commit is not None:
            if commit.raw == x.commit.raw:
                raise Drop("reflected")
            # §4.2 contention: between two DH Commits the larger hvi initiates; a DH Commit beats others.
            peer_is_dh = name(commit.key_agreement) not in NON_DH_MODES
            if not peer_is_dh or commit.hvi <= x.commit.hvi:
                raise Drop("contention_won")
            self._respond(commit, now, lost_contention=x)
            return
        if self.state is not State.DISCOVERY:
            raise Drop("unexpected")
        if self._peer_hello is not None and not self._secrets_ready():
            self._held_commit = commit  # answered once the owner has looked up this peer's secrets
            return
        self._respond(commit, now)

    def _respond(self, commit: m.Commit, now: float, lost_contention: Exchange | None = None) -> None:
        hello = self._peer_hello
        if hello is None:
            raise Drop("commit_before_hello")
        check_commit(commit, hello)
        choice = self._offer.accept(commit)
        # Validated: only now give up our own Commit, reusing its DH work when the algorithms agree.
        if lost_contention is not None:
            self._early_keypair = lost_contention.keypair
            self._tx.retx = None
        self._tx.hello = None  # a Commit is an implicit HelloACK
        keypair = self._take_keypair(choice.key_agreement)
        secrets = self._provided.take(hello.zid)
        x = Exchange(
            choice, False, keypair, self._chain, secrets, zidi=hello.zid, zidr=self.zid, commit=commit,
            peer_h3=hello.h3, aux_secret=self._aux_secret,
        )  # fmt: skip
        self._x = x
        self._progress(State.WAIT_DHPART2, now)
        self._tx.send(x.own_dhpart.raw)

    def _on_dhpart2(self, dh2: m.DHPart, now: float) -> None:
        x = self._x
        if self.state is State.WAIT_CONFIRM2 and x is not None and x.peer_dhpart is not None:
            if dh2.raw != x.peer_dhpart.raw:
                raise Drop("unexpected")
            self._tx.send(x.own_confirm)  # Confirm1 was lost
            return
        if self.state is not State.WAIT_DHPART2 or x is None or x.commit is None:
            raise Drop("unexpected")
        check_dhpart2(dh2, x.commit, x.choice, self._hello_raw)
        x.complete(dh2, self._hello_raw)
        own_confirm = x.make_confirm(self._verified_override, self._cache_expiry)
        self._progress(State.WAIT_CONFIRM2, now)
        self._tx.send(own_confirm)

    def _on_confirm2(self, confirm: m.Confirm, now: float) -> None:
        x = self._x
        if self.state is State.SECURE and x is not None and confirm.raw == x.peer_confirm:
            self._tx.send(m.Conf2Ack().encode())  # our Conf2ACK was lost
            return
        if self.state is not State.WAIT_CONFIRM2 or x is None or x.keys is None or x.peer_dhpart is None:
            raise Drop("unexpected")
        x.accept_confirm(confirm)
        self._tx.send(m.Conf2Ack().encode())
        self._become_secure(now)

    # ------------------------------------------------------------------------------------ shared steps

    def _become_secure(self, now: float) -> None:
        x, hello = self._x, self._peer_hello
        assert x is not None and hello is not None
        self._tx.retx = None
        self._progress(State.SECURE, now)
        ready = x.secure_ready(hello.zid, self._cache_expiry)
        if x.cache == "mismatch":
            self._events.append(CacheMismatch(hello.zid))
        self._events.append(ready)

    # --------------------------------------------------------------------------------- clear / relay

    def _on_goclear(self, msg: m.GoClear, now: float) -> None:
        x = self._x
        if x is None or x.keys is None:
            raise Drop("unexpected")
        x.check_goclear(msg)
        self._refuse_in_secure(ZrtpErrorCode.GOCLEAR_NOT_ALLOWED, now)

    def _on_sasrelay(self, msg: m.SasRelay, now: float) -> None:
        x, hello = self._x, self._peer_hello
        if x is None or x.keys is None or hello is None:
            raise Drop("unexpected")
        x.check_sasrelay(msg)  # a forged one gets no answer: an Error could end the call at the peer
        if hello.mitm:
            self._refuse_in_secure(ZrtpErrorCode.UNTRUSTED_MITM, now)  # we enrol no trusted MiTM (§7.3)
        else:
            self._tx.send(m.RelayAck().encode())  # §5.13: from a non-MiTM it is acknowledged, not rendered

    def _refuse_in_secure(self, code: ZrtpErrorCode, now: float) -> None:
        """We never go clear and trust no MiTM: answer with Error but keep our SRTP keys (§5.9)."""
        if self._tx.retx is None:
            self._tx.start("Error", m.Error(code).encode(), now)


# The handler of each message; states.ACCEPTED_IN says in which states it may arrive.
_ROUTES: dict[bytes, Route[Handshake, Any]] = {
    b"Error   ": Route(m.Error, lambda z, msg, _, now: z._on_error(msg, now)),
    b"ErrorACK": Route(m.ErrorAck, lambda z, _msg, _, _now: z._on_error_ack()),
    b"Ping    ": Route(m.Ping, lambda z, msg, packet, _: z._on_ping(msg, packet)),
    b"Hello   ": Route(m.Hello, lambda z, msg, packet, now: z._on_hello(msg, packet, now)),
    b"HelloACK": Route(m.HelloAck, lambda z, _msg, _, now: z._on_hello_ack(now)),
    b"Commit  ": Route(m.Commit, lambda z, msg, _, now: z._on_commit(msg, now)),
    b"DHPart1 ": Route(m.DHPart, lambda z, msg, _, now: z._on_dhpart1(msg, now)),
    b"DHPart2 ": Route(m.DHPart, lambda z, msg, _, now: z._on_dhpart2(msg, now)),
    b"Confirm1": Route(m.Confirm, lambda z, msg, _, now: z._on_confirm1(msg, now)),
    b"Confirm2": Route(m.Confirm, lambda z, msg, _, now: z._on_confirm2(msg, now)),
    b"Conf2ACK": Route(m.Conf2Ack, lambda z, _m, _, now: z._become_secure(now)),
    b"GoClear ": Route(m.GoClear, lambda z, msg, _, now: z._on_goclear(msg, now)),
    b"SASrelay": Route(m.SasRelay, lambda z, msg, _, now: z._on_sasrelay(msg, now)),
}
