"""One DH-mode key exchange (RFC 6189 §4.3-§4.6): the messages it builds and the keys it derives.

The session decides when each step runs; this module does the computing: our DHPart and Commit (with hvi),
the DH result, retained-secret matching, total_hash, s0 and the KDF, and the Confirm messages that prove both
ends derived the same keys. Keys stay in here and leave only in the SecureReady event.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from zcall.zrtp import crypto, sas
from zcall.zrtp import messages as m
from zcall.zrtp.chain import check_dhpart_by_h0
from zcall.zrtp.errors import Abort, Drop, ZrtpErrorCode
from zcall.zrtp.events import CacheState, ReceiveKeysReady, SecureReady
from zcall.zrtp.negotiation import Choice, wire
from zcall.zrtp.packet import ParseError


class SecretsView(Protocol):
    """What the session needs of cache.RetainedSecrets (expired secrets already None)."""

    @property
    def rs1(self) -> bytes | None: ...

    @property
    def rs2(self) -> bytes | None: ...

    @property
    def verified(self) -> bool: ...


class SecretsByZid:
    """Retained secrets the owner handed in, by peer ZID (None: never met). The peer's are taken once per
    session, even when contention replaces the exchange."""

    def __init__(self) -> None:
        self._given: dict[bytes, SecretsView | None] = {}
        self._taken: tuple[SecretsView | None] | None = None

    def give(self, peer_zid: bytes, secrets: SecretsView | None) -> None:
        self._given[peer_zid] = secrets

    def __contains__(self, peer_zid: bytes) -> bool:
        return peer_zid in self._given

    def take(self, peer_zid: bytes) -> SecretsView | None:
        if self._taken is None:
            self._taken = (self._given.get(peer_zid),)
        return self._taken[0]


_M = TypeVar("_M", m.Commit, m.DHPart)


def sealed(message: _M, key: bytes) -> _M:
    """Our Hello-chain message with its MAC (implicit HMAC keyed by the next-lower hash image) and `raw`."""
    parsed = m.parse_message(mac_sealed(message.encode(), key))
    assert isinstance(parsed, type(message))
    return parsed


def mac_sealed(encoded: bytes, key: bytes) -> bytes:
    """An encoded Hello, Commit or DHPart with its MAC over everything before it."""
    return m.replace_mac(encoded, crypto.implicit_mac(key, encoded[: -m.MAC_LEN]))


@dataclass(repr=False)  # it holds the hash chain and keys: nothing of it belongs in a log
class Exchange:
    """Everything one DH exchange accumulates; kept apart so the session fields stay few."""

    choice: Choice
    is_initiator: bool
    keypair: crypto.KeyPair
    chain: crypto.HashChain
    secrets: SecretsView | None
    zidi: bytes
    zidr: bytes
    peer_h3: bytes  # from the peer's Hello: its auxsecret ID is keyed to it (§4.3.1)
    aux_secret: bytes | None = None  # §4.3's auxsecret (s2), e.g. a value bound to the DTLS channel
    commit: m.Commit | None = None  # the initiator's own, or the one the responder accepted
    peer_dhpart: m.DHPart | None = None
    keys: crypto.DerivedKeys | None = None
    cache: CacheState = "new"
    aux: str = "none"  # the auxiliary secret: "none" (we have none), "match" or "mismatch" (the peer's ID)
    own_confirm: bytes = b""
    peer_confirm: bytes = b""
    peer_body: m.ConfirmBody | None = None
    sent_verified: bool = False
    own_dhpart: m.DHPart = field(init=False)  # DHPart2 (initiator) or DHPart1 (responder)

    def __post_init__(self) -> None:
        self.own_dhpart = self._make_dhpart()

    def make_commit(self, peer_hello: m.Hello) -> m.Commit:
        """The initiator's Commit; its hvi covers our DHPart2 and the responder's Hello (§4.4.1.1)."""
        commit = m.Commit(
            h2=self.chain.h2,
            zid=self.zidi,
            hash=wire(self.choice.hash),
            cipher=wire(self.choice.cipher),
            auth=wire(self.choice.auth),
            key_agreement=wire(self.choice.key_agreement),
            sas=wire(self.choice.sas),
            hvi=crypto.hvi(self.choice.hash, self.own_dhpart.raw, peer_hello.raw),
        )
        self.commit = sealed(commit, self.chain.h1)
        return self.commit

    def _make_dhpart(self) -> m.DHPart:
        part, label = (2, b"Initiator") if self.is_initiator else (1, b"Responder")
        rs1, rs2 = (self.secrets.rs1, self.secrets.rs2) if self.secrets else (None, None)
        alg = self.choice.hash
        # auxsecretID is keyed by our own H3; no PBX secret here: a random ID that matches nothing (§4.3.1).
        ids = (
            crypto.secret_id(alg, rs1, label),
            crypto.secret_id(alg, rs2, label),
            crypto.secret_id(alg, self.aux_secret, self.chain.h3),
            os.urandom(8),
        )
        return sealed(m.DHPart(part, self.chain.h1, *ids, pv=self.keypair.public), self.chain.h0)

    def complete(self, peer_dh: m.DHPart, responder_hello: bytes) -> None:
        """Agree the DH result with the peer's DHPart and derive s0 and every key from it (§4.4.1.4, §4.5)."""
        try:
            dh_result = self.keypair.exchange(peer_dh.pv)
        except crypto.BadPublicValue as exc:
            raise Abort(ZrtpErrorCode.BAD_PV, str(exc)) from exc
        assert self.commit is not None
        self.peer_dhpart = peer_dh
        dh1, dh2 = (peer_dh, self.own_dhpart) if self.is_initiator else (self.own_dhpart, peer_dh)
        alg = self.choice.hash
        thash = crypto.total_hash(alg, responder_hello, self.commit.raw, dh1.raw, dh2.raw)
        s1, s2 = self._match_secret(peer_dh), self._match_aux(peer_dh)
        s0 = crypto.s0(alg, dh_result, self.zidi, self.zidr, thash, s1, s2)
        context = crypto.kdf_context(self.zidi, self.zidr, thash)
        self.keys = crypto.derive_keys(alg, self.choice.cipher, s0, context)

    def _match_secret(self, peer_dh: m.DHPart) -> bytes | None:
        """§4.3: find a retained secret both sides hold; note the cache state new/match/mismatch."""
        mine = {1: self.secrets.rs1, 2: self.secrets.rs2} if self.secrets else {1: None, 2: None}
        theirs = {1: peer_dh.rs1_id, 2: peer_dh.rs2_id}
        peer_label = b"Responder" if self.is_initiator else b"Initiator"
        # Walk (initiator slot, responder slot) in the same order on both sides, so both pick one secret.
        for i_slot, r_slot in ((1, 1), (1, 2), (2, 1), (2, 2)):
            my_slot, their_slot = (i_slot, r_slot) if self.is_initiator else (r_slot, i_slot)
            secret = mine[my_slot]
            if secret is not None and crypto.macs_equal(
                crypto.mac64(self.choice.hash, secret, peer_label), theirs[their_slot]
            ):
                self.cache = "match"
                return secret
        self.cache = "mismatch" if (mine[1] or mine[2]) else "new"
        return None

    def _match_aux(self, peer_dh: m.DHPart) -> bytes | None:
        """§4.3: the auxsecret is s2 when the peer's auxsecretID (keyed by its H3) says it holds the same."""
        if self.aux_secret is None:
            return None
        expected = crypto.mac64(self.choice.hash, self.aux_secret, self.peer_h3)
        self.aux = "match" if crypto.macs_equal(expected, peer_dh.aux_id) else "mismatch"
        return self.aux_secret if self.aux == "match" else None

    @property
    def peer_mac_key(self) -> bytes:
        assert self.keys is not None
        return self.keys.mac_key_r if self.is_initiator else self.keys.mac_key_i

    def check_goclear(self, msg: m.GoClear) -> None:
        """GoClear's clear_mac is keyed with the peer's HMAC key (§5.11): a forged one is dropped."""
        expected = crypto.mac64(self.choice.hash, self.peer_mac_key, m.GoClear.TYPE)
        if not crypto.macs_equal(expected, msg.clear_mac):
            raise Drop("bad_mac")

    def check_sasrelay(self, msg: m.SasRelay) -> None:
        """SASrelay's MAC is keyed like the peer's confirm_mac, over its encrypted part (§5.13)."""
        expected = crypto.mac64(self.choice.hash, self.peer_mac_key, msg.encrypted)
        if not crypto.macs_equal(expected, msg.mac):
            raise Drop("bad_mac")

    def make_confirm(self, verified_override: bool | None, cache_expiry: int) -> bytes:
        """Our Confirm (1 from the responder, 2 from the initiator), kept for retransmission."""
        keys = self.keys
        assert keys is not None
        if self.is_initiator:
            part, mac_key, zrtp_key = 2, keys.mac_key_i, keys.zrtp_key_i
        else:
            part, mac_key, zrtp_key = 1, keys.mac_key_r, keys.zrtp_key_r
        verified = verified_override
        if verified is None:
            verified = bool(self.secrets and self.secrets.verified and self.cache == "match")
        self.sent_verified = verified
        body = m.ConfirmBody(h0=self.chain.h0, sas_verified=verified, cache_expiry=cache_expiry).encode()
        iv = os.urandom(16)
        encrypted = crypto.cfb_encrypt(zrtp_key, iv, body)
        mac = crypto.mac64(self.choice.hash, mac_key, encrypted)
        self.own_confirm = m.Confirm(part, mac, iv, encrypted).encode()
        return self.own_confirm

    def accept_confirm(self, confirm: m.Confirm) -> None:
        """Check the peer's Confirm MAC, decrypt it, and let its H0 close the peer's hash chain (§9)."""
        keys, peer_dh = self.keys, self.peer_dhpart
        assert keys is not None and peer_dh is not None
        zrtp_key = keys.zrtp_key_r if self.is_initiator else keys.zrtp_key_i
        if not crypto.macs_equal(
            crypto.mac64(self.choice.hash, self.peer_mac_key, confirm.encrypted), confirm.confirm_mac
        ):
            raise Abort(ZrtpErrorCode.CONFIRM_MAC, "bad Confirm MAC")
        try:
            body = m.parse_confirm_body(crypto.cfb_decrypt(zrtp_key, confirm.iv, confirm.encrypted))
        except ParseError as exc:
            raise Abort(ZrtpErrorCode.MALFORMED, "malformed Confirm body") from exc
        check_dhpart_by_h0(peer_dh, body.h0)
        self.peer_body = body
        self.peer_confirm = confirm.raw

    def receive_keys(self) -> ReceiveKeysReady:
        """The keys of the peer's SRTP, for an initiator that has checked Confirm1 (§4.6)."""
        keys = self.keys
        assert keys is not None and self.is_initiator
        profile = crypto.srtp_profile(self.choice.cipher, self.choice.auth)
        return ReceiveKeysReady(profile, keys.srtp_key_r, keys.srtp_salt_r)

    def secure_ready(self, peer_zid: bytes, cache_expiry: int) -> SecureReady:
        """The event that hands SRTP keys, SAS and the new retained secret to the owner."""
        keys, body = self.keys, self.peer_body
        assert keys is not None and body is not None
        expires_in = min(cache_expiry, body.cache_expiry)
        text, words = sas.render(self.choice.sas, keys.sas_hash)
        initiator = (keys.srtp_key_i, keys.srtp_salt_i)
        responder = (keys.srtp_key_r, keys.srtp_salt_r)
        local, remote = (initiator, responder) if self.is_initiator else (responder, initiator)
        return SecureReady(
            local_key=local[0],
            local_salt=local[1],
            remote_key=remote[0],
            remote_salt=remote[1],
            srtp_profile=crypto.srtp_profile(self.choice.cipher, self.choice.auth),
            sas_value=keys.sas_hash,
            sas_type="B256" if self.choice.sas == "B256" else "B32",  # negotiation offers no other
            sas_text=text,
            sas_words=tuple(words),
            hash=self.choice.hash,
            cipher=self.choice.cipher,
            auth=self.choice.auth,
            key_agreement=self.choice.key_agreement,
            peer_zid=peer_zid,
            cache=self.cache,
            aux_secret=self.aux,
            peer_verified=body.sas_verified,
            local_verified=self.sent_verified,
            new_rs1=keys.new_rs1,
            rs1_expires_in=expires_in,
            is_initiator=self.is_initiator,
        )
