"""One ZRTP endpoint (RFC 6189), DH mode, as a sans-I/O state machine.

It reads no clock and does no I/O. The owner (the call's shell) drives it:

    start(now)                          send our Hello (receiving a Hello first also starts us)
    receive(data, now)                  one ZRTP packet from the media port; nothing a peer sends raises
    datagrams_to_send(now) -> [bytes]   what to send to the peer, after every call into the session
    get_timer() / handle_timer(now)     when to call back (None: no timer)
    next_event() -> Event | None        drained after every call into the session
    set_peer_hello_hash(value, now)     the peer's SDP a=zrtp-hash, whenever it arrives (before or after)
    provide_secrets(peer_zid, secrets, now)
                                        retained secrets (cache.RetainedSecrets or None) for one peer ZID
    set_sas_verified(flag)              the V flag we send (default: the cache's flag, only on a match)
    set_aux_secret(secret)              §4.3's auxiliary secret, before the exchange begins (a Commit
                                        sent or answered); SecureReady.aux_secret says if the peer's matched
    srtp_received(now)                  the first SRTP packet that authenticated with ReceiveKeysReady's
                                        keys arrived: an implicit Conf2ACK (§4.6)
    close()

Retained secrets never come from inside receive(): the owner reads its cache outside the session. Secrets
for the ZID it expects (the unit the user chose) can be handed in before start(); when the peer's Hello
names that ZID the exchange goes straight on. Otherwise the session emits PeerIdentified(zid,
needs_secrets=True) and waits (no Commit leaves, a received Commit is held) until provide_secrets() for that
ZID. PeerIdentified is emitted either way, so the owner can compare the ZID with the one it chose.

Forged packets: a Hello that does not match a=zrtp-hash, or differs from the one accepted, is dropped and
counted in `drops`, and so are a GoClear or SASrelay whose MAC fails (no answer); once SECURE an Error is
acknowledged and ignored. Protocol failures end in Failed.

This module holds the owner's API and the timers; the handshake itself (the states and what each message
does) is in handshake.py.
"""

from __future__ import annotations

from collections.abc import Callable

from zcall.zrtp import crypto
from zcall.zrtp import messages as m
from zcall.zrtp.errors import Abort, Drop, ZrtpErrorCode
from zcall.zrtp.events import Event, HelloHashMismatch
from zcall.zrtp.exchange import SecretsView
from zcall.zrtp.handshake import Handshake
from zcall.zrtp.packet import ParseError, parse_packet
from zcall.zrtp.states import TERMINAL, State


class ZrtpSession(Handshake):
    """One ZRTP endpoint as its owner drives it (see the module docstring)."""

    # ------------------------------------------------------------------------------------- public API

    def receive(self, data: bytes, now: float) -> None:
        if self.state is State.CLOSED:
            return
        try:
            packet = parse_packet(data)
            message = m.parse_message(packet.message)
        except ParseError as exc:
            self.drops[exc.reason] += 1
            return
        self._guarded(lambda: self._dispatch(message, packet, now), now)

    def _guarded(self, step: Callable[[], None], now: float) -> None:
        try:
            step()
        except Drop as drop:
            self.drops[drop.reason] += 1
        except Abort as abort:
            self._abort(abort.code, abort.reason, now)
        except Exception as exc:  # a bug must not take the caller down with it; report it as §5.9's 0x20
            self.drops["internal_error"] += 1
            self._abort(ZrtpErrorCode.SOFTWARE, f"internal error: {type(exc).__name__}", now)

    def datagrams_to_send(self, now: float) -> list[bytes]:
        return self._tx.take()

    def get_timer(self) -> float | None:
        if self.state in (State.FAILED, State.CLOSED, State.SECURE) and self._tx.retx is None:
            return None
        times = [r.due for r in (self._tx.hello, self._tx.retx) if r is not None]
        if self._signaled.alarm_at is not None and self.state not in TERMINAL:
            times.append(self._signaled.alarm_at)
        if self._stall_applies():
            times.append(self._last_progress + self._stall_timeout)
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        if self._signaled.alarm_at is not None and now >= self._signaled.alarm_at:
            self._hash_alarm()
        if self._tx.hello is not None and self._tx.expired(self._tx.hello, now):
            self._tx.hello = None
            if self._signaled.alarm_at is not None:
                self._hash_alarm()  # Hellos did come, only none that the signalling vouched for
            if self._peer_hello is not None:  # the peer runs ZRTP; only our Hellos do not reach it
                self._fail("peer's Hello arrived, but ours got no answer", None)
            self._fail("no answer to Hello", None)
        if self._tx.retx is not None and self._tx.expired(self._tx.retx, now):
            kind, self._tx.retx = self._tx.retx.kind, None
            if self.state is State.ERROR_SENT:
                self._move(State.FAILED)  # Failed was reported when the Error went out
            elif kind != "Error" and self.state not in TERMINAL:
                self._tx.send(m.Error(ZrtpErrorCode.TIMEOUT).encode())
                self._fail(f"no answer to {kind}", ZrtpErrorCode.TIMEOUT)
        if self._stall_applies() and now >= self._last_progress + self._stall_timeout:
            self._tx.send(m.Error(ZrtpErrorCode.TIMEOUT).encode())
            self._fail(f"peer stalled in state {self.state.value}", ZrtpErrorCode.TIMEOUT)

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def hello_hash(self) -> str:
        """Hex SHA-256 of our Hello message, for SDP a=zrtp-hash:1.10 <hex> (RFC 6189 §8)."""
        return crypto.implicit_hash(self._hello_raw).hex()

    def zrtp_hash_attribute(self) -> str:
        """The value of our SDP a=zrtp-hash attribute: version, space, hex hash."""
        return f"{m.VERSION.decode()} {self.hello_hash()}"

    def set_peer_hello_hash(self, value: str, now: float) -> None:
        """The peer's a=zrtp-hash (with or without the version prefix); checked against its Hello (§8.1)."""
        self._signaled.set(value)
        hello = self._peer_hello
        if hello is None or self.state in TERMINAL or self._signaled.vouches_for(hello):
            return
        if self.state is State.DISCOVERY and self._x is None:
            # Accepted before the SDP said which Hello to expect, and nothing built on it yet: unseat it
            # and wait for the one the signalling vouches for (bzrtp restarts the same way).
            self._peer_hello = None
            self._early_keypair = None
            self._held_commit = None
            self._mismatched_hello(now)
            return
        # The exchange already runs with a Hello the signalling does not vouch for.
        self._events.append(HelloHashMismatch())
        self._fail("peer Hello does not match the signalled zrtp-hash", None)

    def provide_secrets(self, peer_zid: bytes, secrets: SecretsView | None, now: float) -> None:
        """Retained secrets for `peer_zid` (None: never met), up front or after PeerIdentified."""
        if len(peer_zid) != m.ZID_LEN:
            raise ValueError("ZID must be 12 bytes")
        self._provided.give(peer_zid, secrets)
        hello = self._peer_hello
        if hello is None or hello.zid != peer_zid or self.state in TERMINAL:
            return
        held, self._held_commit = self._held_commit, None
        if held is not None:
            self._guarded(lambda: self._on_commit(held, now), now)
        else:
            self._guarded(lambda: self._maybe_commit(now), now)

    def set_aux_secret(self, secret: bytes) -> None:
        """The auxiliary secret both ends are meant to share (e.g. a DTLS exporter value binding ZRTP to
        that channel); it must come before the exchange begins."""
        if self._x is not None:
            raise RuntimeError("the auxiliary secret must be set before the exchange begins")
        self._aux_secret = secret

    def set_sas_verified(self, verified: bool) -> None:
        """The V flag we send in Confirm (§7.1); without a call it follows the cache's verified flag."""
        self._verified_override = verified

    def srtp_received(self, now: float) -> None:
        """SRTP from the responder is an implicit Conf2ACK (§4.6), for when every Conf2ACK is lost."""
        if self.state is State.WAIT_CONF2ACK:
            self._become_secure(now)

    @property
    def hello_message(self) -> bytes:
        return self._hello_raw

    def close(self) -> None:
        self._move(State.CLOSED)
        self._tx.clear()
        self._x = None
        self._early_keypair = None

    def _stall_applies(self) -> bool:
        # Waiting on the peer with nothing of our own to retransmit: bound the wait.
        return (
            self._started
            and self.state not in (State.SECURE, *TERMINAL)
            and self._tx.retx is None
            and self._tx.hello is None
        )

    def peer_gone(self) -> None:
        """The peer left (hung up): a Hello the signalling did not vouch for, with no vouched one since, is
        the alarm §9 waits to raise; no better Hello can come now."""
        if self._signaled.alarm_at is not None:
            self._hash_alarm()

    def _hash_alarm(self) -> None:
        self._signaled.alarm_at = None
        if self.state in TERMINAL or self._peer_hello is not None:
            return
        self._events.append(HelloHashMismatch())
        self._fail("no Hello matching the signalled zrtp-hash arrived", None)
