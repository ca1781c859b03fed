"""What a ZRTP session reports to its owner through next_event()."""

from __future__ import annotations

from dataclasses import dataclass


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
    """The §5.9 code sent or received: a ZrtpErrorCode, or a bare int for a code we do not know."""


Event = SecureReady | CacheMismatch | HelloHashMismatch | Failed
