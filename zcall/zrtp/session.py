"""One ZRTP endpoint (RFC 6189), DH mode, as a sans-I/O state machine.

Driven from outside: receive(data, now) / datagrams_to_send(now) / get_timer() / handle_timer(now) /
next_event(). It reads no clock and does no I/O; retained secrets come in through `secrets_lookup` and new
ones go out in SecureReady, so the engine owns the cache. Nothing a peer sends raises out of receive():
bad packets are dropped and counted in `drops`, protocol failures end in a Failed event.
"""

from __future__ import annotations

import collections
import enum
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

from zcall.zrtp import crypto, sas
from zcall.zrtp import messages as m

VERSION = m.VERSION
T1_INITIAL, T1_CAP, T1_RETRIES = 0.050, 0.200, 20
T2_INITIAL, T2_CAP, T2_RETRIES = 0.150, 1.200, 10
CACHE_NEVER_EXPIRES = 0xFFFFFFFF

# §5.9 error codes.
E_MALFORMED = 0x10
E_SOFTWARE = 0x20
E_VERSION = 0x30
E_HELLO_MISMATCH = 0x40
E_HASH = 0x51
E_CIPHER = 0x52
E_KEY_AGREEMENT = 0x53
E_AUTH = 0x54
E_SAS = 0x55
E_NO_SHARED_SECRET = 0x56
E_BAD_PV = 0x61
E_BAD_HVI = 0x62
E_UNTRUSTED_MITM = 0x63
E_CONFIRM_MAC = 0x70
E_NONCE_REUSE = 0x80
E_EQUAL_ZID = 0x90
E_SSRC_COLLISION = 0x91
E_UNAVAILABLE = 0xA0
E_TIMEOUT = 0xB0
E_GOCLEAR_NOT_ALLOWED = 0x100


# ------------------------------------------------------------------------------------------------ events


@dataclass(frozen=True)
class SecureReady:
    local_key: bytes
    local_salt: bytes
    remote_key: bytes
    remote_salt: bytes
    srtp_profile: str
    sas_value: bytes
    sas_type: str
    sas_text: str
    sas_words: tuple[str, ...]
    hash: str
    cipher: str
    auth: str
    key_agreement: str
    peer_zid: bytes
    cache: str
    peer_verified: bool
    new_rs1: bytes | None
    rs1_expires_in: int
    is_initiator: bool

    def __repr__(self) -> str:  # keys and secrets stay out of logs and test output
        return (
            f"SecureReady({self.srtp_profile}, {self.hash}/{self.cipher}/{self.auth}/{self.key_agreement}, "
            f"sas={self.sas_text!r}, cache={self.cache}, initiator={self.is_initiator})"
        )


@dataclass(frozen=True)
class CacheMismatch:
    peer_zid: bytes


@dataclass(frozen=True)
class HelloHashMismatch:
    pass


@dataclass(frozen=True)
class Failed:
    reason: str
    error_code: int | None


Event = SecureReady | CacheMismatch | HelloHashMismatch | Failed


class SecretsView(Protocol):
    """What the session needs of cache.RetainedSecrets (expired secrets already None)."""

    @property
    def rs1(self) -> bytes | None: ...

    @property
    def rs2(self) -> bytes | None: ...

    @property
    def verified(self) -> bool: ...


SecretsLookup = Callable[[bytes], SecretsView | None]


class State(enum.Enum):
    DISCOVERY = "discovery"  # Hello / HelloACK
    COMMIT_SENT = "commit_sent"  # initiator: waiting for DHPart1
    WAIT_DHPART2 = "wait_dhpart2"  # responder: DHPart1 sent
    WAIT_CONFIRM1 = "wait_confirm1"  # initiator: DHPart2 sent
    WAIT_CONFIRM2 = "wait_confirm2"  # responder: Confirm1 sent
    WAIT_CONF2ACK = "wait_conf2ack"  # initiator: Confirm2 sent
    SECURE = "secure"
    ERROR_SENT = "error_sent"  # waiting for ErrorACK
    FAILED = "failed"
    CLOSED = "closed"


_TERMINAL = (State.FAILED, State.CLOSED, State.ERROR_SENT)


class _Drop(Exception):
    """An input we ignore (counted under `reason`), as §9 says for failed hash-chain and MAC checks."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Abort(Exception):
    """A protocol failure that ends the session with a §5.9 Error message."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass
class _Retransmit:
    message: bytes
    interval: float
    cap: float
    left: int
    due: float


def _wire(name: str) -> bytes:
    return name.encode("ascii").ljust(4)


def _name(value: bytes) -> str:
    return value.decode("ascii", "replace").rstrip(" ")


_M = TypeVar("_M", m.Commit, m.DHPart)


def _sealed(message: _M, key: bytes) -> _M:
    """Our Hello-chain message with its MAC (implicit HMAC keyed by the next-lower hash image) and `raw`."""
    encoded = message.encode()
    raw = m.replace_mac(encoded, crypto.implicit_mac(key, encoded[:-8]))
    parsed = m.parse_message(raw)
    assert isinstance(parsed, type(message))
    return parsed


@dataclass(frozen=True)
class _Choice:
    hash: str
    cipher: str
    auth: str
    key_agreement: str
    sas: str


@dataclass
class _Exchange:
    """Everything one DH exchange accumulates; kept apart so the session fields stay few."""

    choice: _Choice
    is_initiator: bool
    keypair: crypto.KeyPair
    commit: m.Commit | None = None
    own_dhpart: m.DHPart | None = None
    peer_dhpart: m.DHPart | None = None
    keys: crypto.DerivedKeys | None = None
    cache: str = "new"
    zidi: bytes = b""
    zidr: bytes = b""
    own_confirm: bytes = b""
    peer_confirm: bytes = b""
    peer_body: m.ConfirmBody | None = None


class ZrtpSession:
    def __init__(
        self,
        zid: bytes,
        role_hint: Literal["initiator", "responder"] | None = None,
        *,
        ssrc: int,
        secrets_lookup: SecretsLookup,
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
        for given, known in (
            (key_agreements, crypto.KEY_AGREEMENTS),
            (hashes, tuple(crypto.HASHES)),
            (ciphers, tuple(crypto.CIPHER_KEY_LEN)),
            (auth_tags, crypto.AUTH_TAGS),
            (sas_types, crypto.SAS_TYPES),
        ):
            if not given or len(given) > m.MAX_ALGOS or not set(given) <= set(known):
                raise ValueError(f"algorithms {given} must be 1..7 of {known}")
        self.zid = zid
        self.role_hint = role_hint
        self.ssrc = ssrc & 0xFFFFFFFF
        self._lookup = secrets_lookup
        self._algos = {"hash": hashes, "cipher": ciphers, "auth": auth_tags, "ka": key_agreements}
        self._sas_types = sas_types
        self._cache_expiry = cache_expiry
        self._stall_timeout = stall_timeout
        self._chain = crypto.HashChain.generate()
        hello = m.Hello(
            version=VERSION,
            client_id=client_id.encode("ascii", "replace")[:16].ljust(16),
            h3=self._chain.h3,
            zid=zid,
            hashes=tuple(map(_wire, hashes)),
            ciphers=tuple(map(_wire, ciphers)),
            auths=tuple(map(_wire, auth_tags)),
            key_agreements=tuple(map(_wire, key_agreements)),
            sas_types=tuple(map(_wire, sas_types)),
        )
        encoded = hello.encode()
        self._hello_raw = m.replace_mac(encoded, crypto.implicit_mac(self._chain.h2, encoded[:-8]))
        self.state = State.DISCOVERY
        self.drops: collections.Counter[str] = collections.Counter()
        # Random start in the lower half: bzrtp drops any sequence number not above the last one, so a wrap
        # to 0 during the handshake would cost us packets.
        self._seq = int.from_bytes(os.urandom(2), "big") & 0x7FFF
        self._out: list[bytes] = []
        self._events: collections.deque[Event] = collections.deque()
        self._hello_retx: _Retransmit | None = None
        self._retx: _Retransmit | None = None
        self._retx_kind = ""
        self._last_progress = 0.0
        self._started = False
        self._peer_hello: m.Hello | None = None
        self._peer_ssrc: int | None = None
        self._hello_acked = False
        self._signaled_hash: str | None = None
        self._verified_override: bool | None = None
        self._secrets: SecretsView | None = None
        self._secrets_loaded = False
        self._x: _Exchange | None = None
        self._early_keypair: crypto.KeyPair | None = None

    # ------------------------------------------------------------------------------------- public API

    def start(self, now: float) -> None:
        if self._started or self.state is not State.DISCOVERY:
            return
        self._started = True
        self._last_progress = now
        self._hello_retx = self._start_retx(self._hello_raw, now, T1_INITIAL, T1_CAP, T1_RETRIES)

    def receive(self, data: bytes, now: float) -> None:
        if self.state is State.CLOSED:
            return
        try:
            packet = m.parse_packet(data)
            message = m.parse_message(packet.message)
        except m.ParseError as exc:
            self.drops[exc.reason] += 1
            return
        try:
            self._dispatch(message, packet, now)
        except _Drop as drop:
            self.drops[drop.reason] += 1
        except _Abort as abort:
            self._abort(abort.code, abort.reason, now)
        except Exception as exc:  # a bug must not take the caller down with it; report it as §5.9's 0x20
            self.drops["internal_error"] += 1
            self._abort(E_SOFTWARE, f"internal error: {type(exc).__name__}", now)

    def datagrams_to_send(self, now: float) -> list[bytes]:
        out, self._out = self._out, []
        return out

    def get_timer(self) -> float | None:
        if self.state in (State.FAILED, State.CLOSED, State.SECURE) and self._retx is None:
            return None
        times = [r.due for r in (self._hello_retx, self._retx) if r is not None]
        if self._stall_applies():
            times.append(self._last_progress + self._stall_timeout)
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        if self._hello_retx is not None and now >= self._hello_retx.due and self._tick(self._hello_retx, now):
            self._hello_retx = None
            self._fail("no answer to Hello", None)
        if self._retx is not None and now >= self._retx.due and self._tick(self._retx, now):
            self._retx = None
            if self.state is State.ERROR_SENT:
                self.state = State.FAILED  # Failed was reported when the Error went out
            elif self._retx_kind != "Error" and self.state not in _TERMINAL:
                self._send(m.Error(E_TIMEOUT).encode())
                self._fail(f"no answer to {self._retx_kind}", E_TIMEOUT)
        if self._stall_applies() and now >= self._last_progress + self._stall_timeout:
            self._send(m.Error(E_TIMEOUT).encode())
            self._fail(f"peer stalled in state {self.state.value}", E_TIMEOUT)

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def hello_hash(self) -> str:
        """Hex SHA-256 of our Hello message, for SDP a=zrtp-hash:1.10 <hex> (RFC 6189 §8)."""
        return crypto.implicit_hash(self._hello_raw).hex()

    def zrtp_hash_attribute(self) -> str:
        """The value of our SDP a=zrtp-hash attribute: version, space, hex hash."""
        return f"{VERSION.decode()} {self.hello_hash()}"

    def set_peer_hello_hash(self, value: str) -> None:
        """The peer's a=zrtp-hash (with or without the version prefix); checked against its Hello."""
        text = value.strip().split()[-1].lower() if value.strip() else ""
        self._signaled_hash = text
        if self._peer_hello is not None and self.state not in _TERMINAL:
            self._check_signaled_hash(self._peer_hello)

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
        self.state = State.CLOSED
        self._hello_retx = None
        self._retx = None
        self._x = None
        self._early_keypair = None
        self._out = []

    # ------------------------------------------------------------------------------------- machinery

    def _send(self, message: bytes) -> None:
        self._out.append(m.encode_packet(self._seq, self.ssrc, message))
        self._seq = (self._seq + 1) & 0xFFFF

    def _start_retx(self, message: bytes, now: float, first: float, cap: float, tries: int) -> _Retransmit:
        self._send(message)
        return _Retransmit(message, first, cap, tries, now + first)

    def _retransmit(self, kind: str, message: bytes, now: float) -> None:
        self._retx_kind = kind
        self._retx = self._start_retx(message, now, T2_INITIAL, T2_CAP, T2_RETRIES)

    def _tick(self, retx: _Retransmit, now: float) -> bool:
        """Resend a due message; True when the retry budget is used up."""
        if retx.left <= 0:
            return True
        self._send(retx.message)
        retx.left -= 1
        retx.interval = min(retx.interval * 2, retx.cap)
        retx.due = now + retx.interval
        return False

    def _stall_applies(self) -> bool:
        # Waiting on the peer with nothing of our own to retransmit: bound the wait.
        return (
            self._started
            and self.state not in (State.SECURE, *_TERMINAL)
            and self._retx is None
            and self._hello_retx is None
        )

    def _progress(self, state: State, now: float) -> None:
        self.state = state
        self._last_progress = now

    def _fail(self, reason: str, code: int | None) -> None:
        if self.state in (State.FAILED, State.CLOSED):
            return
        self.state = State.FAILED
        self._hello_retx = None
        self._retx = None
        self._events.append(Failed(reason, code))

    def _abort(self, code: int, reason: str, now: float) -> None:
        """Send Error(code) until ErrorACK (T2) and report the failure once."""
        if self.state in _TERMINAL:
            return
        self._events.append(Failed(reason, code))
        self._hello_retx = None
        self.state = State.ERROR_SENT
        self._retransmit("Error", m.Error(code).encode(), now)
        self._x = None

    # -------------------------------------------------------------------------------------- dispatch

    def _dispatch(self, msg: m.Message, packet: m.Packet, now: float) -> None:
        if isinstance(msg, m.Error):
            self._on_error(msg, now)
        elif isinstance(msg, m.ErrorAck):
            if self._retx is None or self._retx_kind != "Error":
                raise _Drop("unexpected")
            self._retx = None
            if self.state is State.ERROR_SENT:
                self.state = State.FAILED
        elif isinstance(msg, m.Ping):
            ack = m.PingAck(VERSION, self._endpoint_hash(), msg.endpoint_hash, packet.ssrc)
            self._send(ack.encode())
        elif self.state in _TERMINAL:
            raise _Drop("after_end")
        elif isinstance(msg, m.Hello):
            self._on_hello(msg, packet, now)
        elif isinstance(msg, m.HelloAck):
            self._on_hello_ack(now)
        elif isinstance(msg, m.Commit):
            self._on_commit(msg, now)
        elif isinstance(msg, m.DHPart):
            if msg.part == 1:
                self._on_dhpart1(msg, now)
            else:
                self._on_dhpart2(msg, now)
        elif isinstance(msg, m.Confirm):
            if msg.part == 1:
                self._on_confirm1(msg, now)
            else:
                self._on_confirm2(msg, now)
        elif isinstance(msg, m.Conf2Ack):
            if self.state is not State.WAIT_CONF2ACK:
                raise _Drop("unexpected")
            self._become_secure(now)
        elif isinstance(msg, m.GoClear):
            self._on_goclear(msg, now)
        elif isinstance(msg, m.SasRelay):
            self._refuse_in_secure(E_UNTRUSTED_MITM, now)
        else:  # ClearACK, RelayACK, PingACK: we never solicit them
            raise _Drop("unexpected")

    def _on_error(self, msg: m.Error, now: float) -> None:
        self._send(m.ErrorAck().encode())
        if self.state in _TERMINAL:
            return
        if self.state is State.SECURE:
            # Error is unauthenticated: once keys are agreed, an injected one must not tear the call down.
            self.drops["error_after_secure"] += 1
            return
        self._retx = None
        self._fail(f"peer sent Error 0x{msg.code:x}", msg.code)

    # --------------------------------------------------------------------------------------- discovery

    def _on_hello(self, hello: m.Hello, packet: m.Packet, now: float) -> None:
        if not self._started:
            self.start(now)  # the peer runs ZRTP: announce ourselves too
        if self._peer_hello is not None:
            if hello.raw != self._peer_hello.raw:
                raise _Abort(E_HELLO_MISMATCH, "peer Hello changed during the exchange")
            self._send(m.HelloAck().encode())
            return
        if hello.version[:3] != VERSION[:3]:
            if hello.version > VERSION:
                raise _Drop("newer_version")  # §4.1.1: the peer falls back to ours
            raise _Abort(E_VERSION, f"unsupported ZRTP version {hello.version!r}")
        if hello.zid == self.zid:
            raise _Abort(E_EQUAL_ZID, "peer uses our ZID")
        if packet.ssrc == self.ssrc:
            raise _Abort(E_SSRC_COLLISION, "peer uses our SSRC")
        self._peer_hello = hello
        self._peer_ssrc = packet.ssrc
        if self._signaled_hash is not None and not self._check_signaled_hash(hello):
            return
        choice = self._choose(hello)  # raises _Abort when nothing is in common
        # Both ends reach the same key agreement (§4.1.2), so the key pair can be made now and reused.
        self._early_keypair = crypto.KeyPair(choice.key_agreement)
        self._last_progress = now
        self._send(m.HelloAck().encode())
        self._maybe_commit(now)

    def _check_signaled_hash(self, hello: m.Hello) -> bool:
        if crypto.macs_equal(
            crypto.implicit_hash(hello.raw).hex().encode(), (self._signaled_hash or "").encode()
        ):
            return True
        self._events.append(HelloHashMismatch())
        self._fail("peer Hello does not match the signalled zrtp-hash", None)
        return False

    def _on_hello_ack(self, now: float) -> None:
        if self.state is not State.DISCOVERY:
            raise _Drop("unexpected")
        self._hello_acked = True
        self._hello_retx = None
        self._last_progress = now
        self._maybe_commit(now)

    def _endpoint_hash(self) -> bytes:
        return crypto.implicit_hash(self.zid)[:8]

    def _choose(self, hello: m.Hello) -> _Choice:
        def first(ours: tuple[str, ...], theirs: tuple[bytes, ...], code: int, what: str) -> str:
            names = {_name(v) for v in theirs}
            for name in ours:
                if name in names:
                    return name
            raise _Abort(code, f"no {what} in common")

        kas = tuple(_name(v) for v in hello.key_agreements)
        ka = crypto.choose_key_agreement(self._algos["ka"], kas)
        if ka is None:
            raise _Abort(E_KEY_AGREEMENT, "no key agreement in common")
        hash_order, cipher_order = self._algos["hash"], self._algos["cipher"]
        if ka == "EC38":  # §5.1.5: a 384-bit curve calls for SHA-384 and AES-256 when both have them
            hash_order = tuple(sorted(hash_order, key=lambda h: h != "S384"))
            cipher_order = tuple(sorted(cipher_order, key=lambda c: c != "AES3"))
        return _Choice(
            hash=first(hash_order, hello.hashes, E_HASH, "hash"),
            cipher=first(cipher_order, hello.ciphers, E_CIPHER, "cipher"),
            auth=first(self._algos["auth"], hello.auths, E_AUTH, "auth tag"),
            key_agreement=ka,
            sas=first(self._sas_types, hello.sas_types, E_SAS, "SAS type"),
        )

    def _lookup_secrets(self) -> SecretsView | None:
        if not self._secrets_loaded and self._peer_hello is not None:
            self._secrets = self._lookup(self._peer_hello.zid)
            self._secrets_loaded = True
        return self._secrets

    def _secret_ids(self, alg: str, label: bytes) -> tuple[bytes, bytes, bytes, bytes]:
        secrets = self._lookup_secrets()
        rs1 = secrets.rs1 if secrets else None
        rs2 = secrets.rs2 if secrets else None
        # No aux or PBX secrets here: random IDs that match nothing (§4.3.1).
        return (
            crypto.secret_id(alg, rs1, label),
            crypto.secret_id(alg, rs2, label),
            os.urandom(8),
            os.urandom(8),
        )

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
        ):
            return
        hello = self._peer_hello
        choice = self._choose(hello)
        x = _Exchange(choice, True, self._take_keypair(choice.key_agreement), zidi=self.zid, zidr=hello.zid)
        ids = self._secret_ids(choice.hash, b"Initiator")
        x.own_dhpart = _sealed(m.DHPart(2, self._chain.h1, *ids, pv=x.keypair.public), self._chain.h0)
        commit = m.Commit(
            h2=self._chain.h2,
            zid=self.zid,
            hash=_wire(choice.hash),
            cipher=_wire(choice.cipher),
            auth=_wire(choice.auth),
            key_agreement=_wire(choice.key_agreement),
            sas=_wire(choice.sas),
            hvi=crypto.hvi(choice.hash, x.own_dhpart.raw, hello.raw),
        )
        x.commit = _sealed(commit, self._chain.h1)
        self._x = x
        self._progress(State.COMMIT_SENT, now)
        self._retransmit("Commit", x.commit.raw, now)

    def _on_dhpart1(self, dh1: m.DHPart, now: float) -> None:
        x = self._x
        if self.state is not State.COMMIT_SENT or x is None or self._peer_hello is None:
            raise _Drop("unexpected")
        # H1 -> H2 -> H3 must reach the Hello's H3, and H2 now authenticates that Hello (§9).
        h2 = crypto.implicit_hash(dh1.h1)
        if not crypto.macs_equal(crypto.implicit_hash(h2), self._peer_hello.h3):
            raise _Drop("hash_chain")
        if not crypto.message_mac_ok(self._peer_hello.raw, h2):
            raise _Drop("bad_mac")
        dh_result = self._exchange(x, dh1.pv)
        assert x.commit is not None and x.own_dhpart is not None
        x.peer_dhpart = dh1
        self._derive(x, dh_result, self._peer_hello.raw, x.commit.raw, dh1.raw, x.own_dhpart.raw, dh1)
        self._progress(State.WAIT_CONFIRM1, now)
        self._retransmit("DHPart2", x.own_dhpart.raw, now)

    def _on_confirm1(self, confirm: m.Confirm, now: float) -> None:
        x = self._x
        if self.state is State.WAIT_CONF2ACK and x is not None and confirm.raw == x.peer_confirm:
            raise _Drop("duplicate")
        if self.state is not State.WAIT_CONFIRM1 or x is None or x.keys is None or x.peer_dhpart is None:
            raise _Drop("unexpected")
        body = self._open_confirm(confirm, x, x.keys.mac_key_r, x.keys.zrtp_key_r, x.peer_dhpart)
        x.peer_body = body
        x.peer_confirm = confirm.raw
        x.own_confirm = self._make_confirm(2, x, x.keys.mac_key_i, x.keys.zrtp_key_i)
        self._progress(State.WAIT_CONF2ACK, now)
        self._retransmit("Confirm2", x.own_confirm, now)

    # ---------------------------------------------------------------------------------------- responder

    def _on_commit(self, commit: m.Commit, now: float) -> None:
        x = self._x
        if self.state is State.WAIT_DHPART2 and x is not None and x.commit is not None:
            if commit.raw != x.commit.raw or x.own_dhpart is None:
                raise _Drop("unexpected")
            self._send(x.own_dhpart.raw)  # our DHPart1 was lost: the initiator resent its Commit
            return
        if self.state is State.COMMIT_SENT and x is not None and x.commit is not None:
            if commit.raw == x.commit.raw:
                raise _Drop("reflected")
            # §4.2 contention: between two DH Commits the larger hvi initiates; a DH Commit beats others.
            peer_is_dh = _name(commit.key_agreement) not in ("Mult", "Prsh")
            if not peer_is_dh or commit.hvi <= x.commit.hvi:
                raise _Drop("contention_won")
            self._respond(commit, now, lost_contention=x)
            return
        if self.state is not State.DISCOVERY:
            raise _Drop("unexpected")
        self._respond(commit, now)

    def _respond(self, commit: m.Commit, now: float, lost_contention: _Exchange | None = None) -> None:
        hello = self._peer_hello
        if hello is None:
            raise _Drop("commit_before_hello")
        if commit.zid != hello.zid:
            raise _Drop("zid_changed")
        if not crypto.macs_equal(crypto.implicit_hash(commit.h2), hello.h3):
            raise _Drop("hash_chain")
        if not crypto.message_mac_ok(hello.raw, commit.h2):
            raise _Drop("bad_mac")
        if _name(commit.key_agreement) in ("Prsh", "Mult"):
            # We never offer them; with no ZRTPSess or preshared key the peer must use DH (§5.9, 0x56).
            raise _Abort(E_NO_SHARED_SECRET, "preshared/multistream Commit: DH mode required")
        choice = _Choice(
            hash=self._accept(commit.hash, "hash", E_HASH),
            cipher=self._accept(commit.cipher, "cipher", E_CIPHER),
            auth=self._accept(commit.auth, "auth", E_AUTH),
            key_agreement=self._accept(commit.key_agreement, "ka", E_KEY_AGREEMENT),
            sas=_name(commit.sas),
        )
        if choice.sas not in self._sas_types:
            raise _Abort(E_SAS, f"SAS type {choice.sas!r} not offered")
        # Validated: only now give up our own Commit, reusing its DH work when the algorithms agree.
        if lost_contention is not None:
            self._early_keypair = lost_contention.keypair
            self._retx = None
        self._hello_retx = None  # a Commit is an implicit HelloACK
        x = _Exchange(choice, False, self._take_keypair(choice.key_agreement), zidi=hello.zid, zidr=self.zid)
        x.commit = commit
        ids = self._secret_ids(choice.hash, b"Responder")
        x.own_dhpart = _sealed(m.DHPart(1, self._chain.h1, *ids, pv=x.keypair.public), self._chain.h0)
        self._x = x
        self._progress(State.WAIT_DHPART2, now)
        self._send(x.own_dhpart.raw)

    def _accept(self, value: bytes, kind: str, code: int) -> str:
        name = _name(value)
        if name not in self._algos[kind]:
            raise _Abort(code, f"{kind} {name!r} not offered")
        return name

    def _on_dhpart2(self, dh2: m.DHPart, now: float) -> None:
        x = self._x
        if self.state is State.WAIT_CONFIRM2 and x is not None and x.peer_dhpart is not None:
            if dh2.raw != x.peer_dhpart.raw:
                raise _Drop("unexpected")
            self._send(x.own_confirm)  # Confirm1 was lost
            return
        if self.state is not State.WAIT_DHPART2 or x is None or x.commit is None or x.own_dhpart is None:
            raise _Drop("unexpected")
        commit = x.commit
        if not crypto.macs_equal(crypto.implicit_hash(dh2.h1), commit.h2):
            raise _Drop("hash_chain")
        if not crypto.message_mac_ok(commit.raw, dh2.h1):
            raise _Drop("bad_mac")
        if len(dh2.pv) != crypto.PV_LEN[x.choice.key_agreement]:
            raise _Abort(E_BAD_PV, "DHPart2 public value has the wrong size")
        expected = crypto.hvi(x.choice.hash, dh2.raw, self._hello_raw)
        if not crypto.macs_equal(expected, commit.hvi):
            raise _Abort(E_BAD_HVI, "hvi does not match DHPart2 (possible MiTM)")
        dh_result = self._exchange(x, dh2.pv)
        x.peer_dhpart = dh2
        self._derive(x, dh_result, self._hello_raw, commit.raw, x.own_dhpart.raw, dh2.raw, dh2)
        assert x.keys is not None
        x.own_confirm = self._make_confirm(1, x, x.keys.mac_key_r, x.keys.zrtp_key_r)
        self._progress(State.WAIT_CONFIRM2, now)
        self._send(x.own_confirm)

    def _on_confirm2(self, confirm: m.Confirm, now: float) -> None:
        x = self._x
        if self.state is State.SECURE and x is not None and confirm.raw == x.peer_confirm:
            self._send(m.Conf2Ack().encode())  # our Conf2ACK was lost
            return
        if self.state is not State.WAIT_CONFIRM2 or x is None or x.keys is None or x.peer_dhpart is None:
            raise _Drop("unexpected")
        x.peer_body = self._open_confirm(confirm, x, x.keys.mac_key_i, x.keys.zrtp_key_i, x.peer_dhpart)
        x.peer_confirm = confirm.raw
        self._send(m.Conf2Ack().encode())
        self._become_secure(now)

    # ------------------------------------------------------------------------------------ shared steps

    def _exchange(self, x: _Exchange, peer_pv: bytes) -> bytes:
        try:
            return x.keypair.exchange(peer_pv)
        except crypto.BadPublicValue as exc:
            raise _Abort(E_BAD_PV, str(exc)) from exc

    def _derive(
        self,
        x: _Exchange,
        dh_result: bytes,
        hello_r: bytes,
        commit: bytes,
        dh1: bytes,
        dh2: bytes,
        peer_dh: m.DHPart,
    ) -> None:
        alg = x.choice.hash
        thash = crypto.total_hash(alg, hello_r, commit, dh1, dh2)
        s1 = self._match_secret(x, peer_dh)
        s0 = crypto.s0(alg, dh_result, x.zidi, x.zidr, thash, s1)
        x.keys = crypto.derive_keys(alg, x.choice.cipher, s0, crypto.kdf_context(x.zidi, x.zidr, thash))

    def _match_secret(self, x: _Exchange, peer_dh: m.DHPart) -> bytes | None:
        """§4.3: find a retained secret both sides hold; report the cache state new/match/mismatch."""
        secrets = self._lookup_secrets()
        mine = {1: secrets.rs1 if secrets else None, 2: secrets.rs2 if secrets else None}
        theirs = {1: peer_dh.rs1_id, 2: peer_dh.rs2_id}
        peer_label = b"Responder" if x.is_initiator else b"Initiator"
        # Walk (initiator slot, responder slot) in the same order on both sides, so both pick one secret.
        for i_slot, r_slot in ((1, 1), (1, 2), (2, 1), (2, 2)):
            my_slot, their_slot = (i_slot, r_slot) if x.is_initiator else (r_slot, i_slot)
            secret = mine[my_slot]
            if secret is not None and crypto.macs_equal(
                crypto.mac64(x.choice.hash, secret, peer_label), theirs[their_slot]
            ):
                x.cache = "match"
                return secret
        x.cache = "mismatch" if (mine[1] or mine[2]) else "new"
        return None

    def _local_verified(self, x: _Exchange) -> bool:
        if self._verified_override is not None:
            return self._verified_override
        secrets = self._lookup_secrets()
        return bool(secrets and secrets.verified and x.cache == "match")

    def _make_confirm(self, part: int, x: _Exchange, mac_key: bytes, zrtp_key: bytes) -> bytes:
        body = m.ConfirmBody(
            h0=self._chain.h0, sas_verified=self._local_verified(x), cache_expiry=self._cache_expiry
        ).encode()
        iv = os.urandom(16)
        encrypted = crypto.cfb_encrypt(zrtp_key, iv, body)
        mac = crypto.mac64(x.choice.hash, mac_key, encrypted)
        return m.Confirm(part, mac, iv, encrypted).encode()

    def _open_confirm(
        self, confirm: m.Confirm, x: _Exchange, mac_key: bytes, zrtp_key: bytes, peer_dh: m.DHPart
    ) -> m.ConfirmBody:
        if not crypto.macs_equal(
            crypto.mac64(x.choice.hash, mac_key, confirm.encrypted), confirm.confirm_mac
        ):
            raise _Abort(E_CONFIRM_MAC, "bad Confirm MAC")
        try:
            body = m.parse_confirm_body(crypto.cfb_decrypt(zrtp_key, confirm.iv, confirm.encrypted))
        except m.ParseError as exc:
            raise _Abort(E_MALFORMED, "malformed Confirm body") from exc
        # H0 closes the chain and authenticates the peer's DHPart (§9).
        if not crypto.macs_equal(crypto.implicit_hash(body.h0), peer_dh.h1):
            raise _Drop("hash_chain")
        if not crypto.message_mac_ok(peer_dh.raw, body.h0):
            raise _Drop("bad_mac")
        return body

    def _become_secure(self, now: float) -> None:
        x = self._x
        assert (
            x is not None and x.keys is not None and x.peer_body is not None and self._peer_hello is not None
        )
        self._retx = None
        self._progress(State.SECURE, now)
        keys = x.keys
        expires_in = min(self._cache_expiry, x.peer_body.cache_expiry)
        text, words = sas.render(x.choice.sas, keys.sas_hash)
        if x.cache == "mismatch":
            self._events.append(CacheMismatch(self._peer_hello.zid))
        local = (keys.srtp_key_i, keys.srtp_salt_i) if x.is_initiator else (keys.srtp_key_r, keys.srtp_salt_r)
        remote = (
            (keys.srtp_key_r, keys.srtp_salt_r) if x.is_initiator else (keys.srtp_key_i, keys.srtp_salt_i)
        )
        self._events.append(
            SecureReady(
                local_key=local[0],
                local_salt=local[1],
                remote_key=remote[0],
                remote_salt=remote[1],
                srtp_profile=crypto.srtp_profile(x.choice.cipher, x.choice.auth),
                sas_value=keys.sas_hash,
                sas_type=x.choice.sas,
                sas_text=text,
                sas_words=tuple(words),
                hash=x.choice.hash,
                cipher=x.choice.cipher,
                auth=x.choice.auth,
                key_agreement=x.choice.key_agreement,
                peer_zid=self._peer_hello.zid,
                cache=x.cache,
                peer_verified=x.peer_body.sas_verified,
                new_rs1=keys.new_rs1 if expires_in != 0 else None,
                rs1_expires_in=expires_in,
                is_initiator=x.is_initiator,
            )
        )

    # --------------------------------------------------------------------------------- clear / relay

    def _on_goclear(self, msg: m.GoClear, now: float) -> None:
        x = self._x
        if self.state is not State.SECURE or x is None or x.keys is None:
            raise _Drop("unexpected")
        peer_key = x.keys.mac_key_r if x.is_initiator else x.keys.mac_key_i
        if not crypto.macs_equal(crypto.mac64(x.choice.hash, peer_key, m.GoClear.TYPE), msg.clear_mac):
            raise _Drop("bad_mac")
        self._refuse_in_secure(E_GOCLEAR_NOT_ALLOWED, now)

    def _refuse_in_secure(self, code: int, now: float) -> None:
        """We never go clear and trust no MiTM: answer with Error but keep our SRTP keys (§5.9)."""
        if self.state is not State.SECURE:
            raise _Drop("unexpected")
        if self._retx is None:
            self._retransmit("Error", m.Error(code).encode(), now)
