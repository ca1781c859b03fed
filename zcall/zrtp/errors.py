"""How a ZRTP session says no: §5.9 Error codes, and the two internal outcomes of a refused message."""

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


class Drop(Exception):
    """An input we ignore (counted under `reason`), as §9 says for failed hash-chain and MAC checks."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Abort(Exception):
    """A protocol failure that ends the session with a §5.9 Error message."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
