"""SRTP protection profiles for DTLS-SRTP's use_srtp extension (RFC 5764 §4.1.2, RFC 7714 §14.2)."""

from __future__ import annotations

from zcall.media.srtpkeys import SrtpProfile, key_length, salt_length

# Our names (zcall.media.srtp.SrtpProfile values) <-> the names OpenSSL's set_tlsext_use_srtp takes.
OPENSSL_NAMES: dict[str, str] = {
    SrtpProfile.AES_CM_128_HMAC_SHA1_80.value: "SRTP_AES128_CM_SHA1_80",
    SrtpProfile.AES_CM_128_HMAC_SHA1_32.value: "SRTP_AES128_CM_SHA1_32",
    SrtpProfile.AEAD_AES_128_GCM.value: "SRTP_AEAD_AES_128_GCM",
    SrtpProfile.AEAD_AES_256_GCM.value: "SRTP_AEAD_AES_256_GCM",
}
_FROM_OPENSSL = {openssl: ours for ours, openssl in OPENSSL_NAMES.items()}

# Preference order when we are the server (OpenSSL's server picks by its own list): AEAD first, then the
# RFC 5764 mandatory AES_CM_128_HMAC_SHA1_80 that every peer has.
DEFAULT_PROFILES: tuple[str, ...] = (
    SrtpProfile.AEAD_AES_128_GCM.value,
    SrtpProfile.AEAD_AES_256_GCM.value,
    SrtpProfile.AES_CM_128_HMAC_SHA1_80.value,
    SrtpProfile.AES_CM_128_HMAC_SHA1_32.value,
)

EXPORTER_LABEL = b"EXTRACTOR-dtls_srtp"
# RFC 5705 exporter label for our own use (private labels start "EXPERIMENTAL"): the value ZRTP takes as its
# auxiliary secret on the server path, binding the words to this DTLS session.
CHANNEL_BINDING_LABEL = b"EXPERIMENTAL-zcall-zrtp-auxsecret"
CHANNEL_BINDING_LEN = 32


def openssl_profile_list(profiles: tuple[str, ...]) -> bytes:
    if not profiles:
        raise ValueError("at least one SRTP profile is needed")
    unknown = [name for name in profiles if name not in OPENSSL_NAMES]
    if unknown:
        raise ValueError(f"no DTLS-SRTP profile for {unknown[0]!r}")
    return ":".join(OPENSSL_NAMES[name] for name in profiles).encode()


def from_openssl(name: bytes) -> str | None:
    return _FROM_OPENSSL.get(name.decode("ascii", "replace"))


def material_length(profile: str) -> int:
    """Octets to export: two keys and two salts (RFC 5764 §4.2)."""
    srtp = SrtpProfile(profile)
    return 2 * (key_length(srtp) + salt_length(srtp))


def split_material(profile: str, material: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """client_write_key, server_write_key, client_write_salt, server_write_salt, in the exporter's order."""
    srtp = SrtpProfile(profile)
    key, salt = key_length(srtp), salt_length(srtp)
    if len(material) != 2 * (key + salt):
        raise ValueError("keying material has the wrong length")
    return (
        material[:key],
        material[key : 2 * key],
        material[2 * key : 2 * key + salt],
        material[2 * key + salt :],
    )
