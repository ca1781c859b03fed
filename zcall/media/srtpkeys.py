"""SRTP key material and profiles (RFC 3711, RFC 6188, RFC 7714), apart from libsrtp.

The key-agreement cores (ZRTP, DTLS-SRTP) produce these; only zcall.media.srtp needs libsrtp to use them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class SrtpProfile(enum.Enum):
    AES_CM_128_HMAC_SHA1_80 = "AES_CM_128_HMAC_SHA1_80"
    AES_CM_128_HMAC_SHA1_32 = "AES_CM_128_HMAC_SHA1_32"
    AES_256_CM_HMAC_SHA1_80 = "AES_256_CM_HMAC_SHA1_80"
    AES_256_CM_HMAC_SHA1_32 = "AES_256_CM_HMAC_SHA1_32"
    AEAD_AES_128_GCM = "AEAD_AES_128_GCM"
    AEAD_AES_256_GCM = "AEAD_AES_256_GCM"


# profile -> (master key octets, master salt octets, SRTP tag octets)
_SIZES: dict[SrtpProfile, tuple[int, int, int]] = {
    SrtpProfile.AES_CM_128_HMAC_SHA1_80: (16, 14, 10),
    SrtpProfile.AES_CM_128_HMAC_SHA1_32: (16, 14, 4),
    SrtpProfile.AES_256_CM_HMAC_SHA1_80: (32, 14, 10),
    SrtpProfile.AES_256_CM_HMAC_SHA1_32: (32, 14, 4),
    SrtpProfile.AEAD_AES_128_GCM: (16, 12, 16),
    SrtpProfile.AEAD_AES_256_GCM: (32, 12, 16),
}

def key_length(profile: SrtpProfile) -> int:
    return _SIZES[profile][0]


def salt_length(profile: SrtpProfile) -> int:
    return _SIZES[profile][1]


def tag_length(profile: SrtpProfile) -> int:
    """Octets SRTP adds to each RTP packet (SRTCP adds 4 more for the index)."""
    return _SIZES[profile][2]


@dataclass(frozen=True)
class SrtpKeys:
    profile: SrtpProfile
    # repr=False: these objects end up in logs and tracebacks; the key material must not.
    master_key: bytes = field(repr=False)
    master_salt: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.master_key) != key_length(self.profile):
            raise ValueError(f"{self.profile.value} needs a {key_length(self.profile)}-octet master key")
        if len(self.master_salt) != salt_length(self.profile):
            raise ValueError(f"{self.profile.value} needs a {salt_length(self.profile)}-octet master salt")
