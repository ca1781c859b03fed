"""What a ZRTP session reports to its owner through next_event().

PeerIdentified, ReceiveKeysReady (initiator), CacheMismatch (before its SecureReady), SecureReady (keys, SAS,
the new rs1 to store, both V flags: `.verified` is true only when both ends set V), HelloHashMismatch (no
Hello matching a=zrtp-hash arrived within the peer's Hello retries; the session then fails), Failed. New
retained secrets leave only in SecureReady, so the owner owns the cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from zcall.media.srtpkeys import SrtpKeys, SrtpProfile

CacheState = Literal["new", "match", "mismatch"]  # of the retained secrets (§4.3)
SasType = Literal["B256", "B32"]


@dataclass(frozen=True)
class SecureReady:
    """The exchange is done: SRTP keys both ways, the SAS to compare, what the owner's cache should keep."""

    local_key: bytes  # SRTP master key and salt we send with (§4.5.3: the initiator's or the responder's)
    local_salt: bytes
    remote_key: bytes  # ... and the peer's, to receive with
    remote_salt: bytes
    srtp_profile: str  # the SRTP protection profile name for the negotiated cipher and auth tag
    sas_value: bytes  # sashash, whose leading bits are rendered (§4.5.2)
    sas_type: SasType
    sas_text: str  # as shown: four base-32 characters, or two PGP words
    sas_words: tuple[str, ...]
    hash: str  # the negotiated algorithms (§5.1), by their ZRTP names
    cipher: str
    auth: str
    key_agreement: str
    peer_zid: bytes
    cache: CacheState  # whether a retained secret of ours matched one of the peer's
    peer_verified: bool  # the V flag in the peer's Confirm: it has compared the words with us before
    local_verified: bool  # the V flag we sent
    new_rs1: bytes | None  # the new retained secret (§4.6.1), for the owner to store for this peer
    rs1_expires_in: int  # seconds, the lesser of both Confirms' cache intervals (0xFFFFFFFF: never)
    is_initiator: bool
    # The auxiliary secret (§4.3): "none" (we had none), "match" (the peer holds the same; it went into s0)
    # or "mismatch" (it does not: left out of s0, which then still agrees when neither used it).
    aux_secret: str = "none"

    def sender_keys(self) -> SrtpKeys:
        return SrtpKeys(SrtpProfile(self.srtp_profile), self.local_key, self.local_salt)

    def receiver_keys(self) -> SrtpKeys:
        return SrtpKeys(SrtpProfile(self.srtp_profile), self.remote_key, self.remote_salt)

    @property
    def verified(self) -> bool:
        """Both ends say the words were compared on this secret chain (bzrtp reports the same pair)."""
        return self.local_verified and self.peer_verified

    def __repr__(self) -> str:  # keys and secrets stay out of logs and test output
        return (
            f"SecureReady({self.srtp_profile}, {self.hash}/{self.cipher}/{self.auth}/{self.key_agreement}, "
            f"sas={self.sas_text!r}, cache={self.cache}, initiator={self.is_initiator})"
        )


@dataclass(frozen=True)
class PeerIdentified:
    """The peer's Hello was accepted: this is the ZID the exchange runs with.

    needs_secrets: the session waits (no Commit sent, a received Commit held) until the owner calls
    provide_secrets() for this ZID. False when secrets for it were handed in up front.
    """

    peer_zid: bytes
    needs_secrets: bool
    client_id: bytes = field(default=b"", compare=False)  # the peer's Hello: which implementation it is


@dataclass(frozen=True)
class ReceiveKeysReady:
    """Initiator only, after a valid Confirm1: SRTP from the responder can be checked from now on.

    The owner installs these receive keys and calls srtp_received() on the first packet that authenticates
    with them: RFC 6189 §4.6 makes that packet count as Conf2ACK when every Conf2ACK is lost.
    """

    srtp_profile: str
    remote_key: bytes
    remote_salt: bytes

    def receiver_keys(self) -> SrtpKeys:
        return SrtpKeys(SrtpProfile(self.srtp_profile), self.remote_key, self.remote_salt)

    def __repr__(self) -> str:
        return f"ReceiveKeysReady({self.srtp_profile})"


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
    """The §5.9 code sent or received: a ZrtpErrorCode, or a bare int for a code we do not know."""


Event = PeerIdentified | ReceiveKeysReady | SecureReady | CacheMismatch | HelloHashMismatch | Failed
