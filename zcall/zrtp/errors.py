"""How a ZRTP session says no: §5.9 Error codes, and the two internal outcomes of a refused message."""

from __future__ import annotations

from enum import IntEnum

from zcall.errors import ZcallError


class ZrtpErrorCode(IntEnum):
    """The §5.9 Error message codes."""

    MALFORMED = 0x10  # malformed packet (CRC OK, wrong structure)
    SOFTWARE = 0x20  # critical software error
    VERSION = 0x30  # unsupported ZRTP version
    HELLO_MISMATCH = 0x40  # Hello components mismatch
    HASH = 0x51  # hash type not supported
    CIPHER = 0x52  # cipher type not supported
    KEY_AGREEMENT = 0x53  # public key exchange not supported
    AUTH = 0x54  # SRTP auth tag not supported
    SAS = 0x55  # SAS rendering scheme not supported
    NO_SHARED_SECRET = 0x56  # no shared secret available, DH mode required
    BAD_PV = 0x61  # DH error: bad pvi or pvr (1, 0 or p-1)
    BAD_HVI = 0x62  # DH error: hvi does not match the hashed data
    UNTRUSTED_MITM = 0x63  # relayed SAS from an untrusted MiTM
    CONFIRM_MAC = 0x70  # bad Confirm packet MAC
    NONCE_REUSE = 0x80  # nonce reuse
    EQUAL_ZID = 0x90  # equal ZIDs in Hello
    SSRC_COLLISION = 0x91  # SSRC collision
    UNAVAILABLE = 0xA0  # service unavailable
    TIMEOUT = 0xB0  # protocol timeout
    GOCLEAR_NOT_ALLOWED = 0x100  # GoClear received but not allowed


class Drop(ZcallError):
    """An input we ignore (counted under `reason`), as §9 says for failed hash-chain and MAC checks."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Abort(ZcallError):
    """A protocol failure that ends the session with a §5.9 Error message."""

    def __init__(self, code: ZrtpErrorCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
