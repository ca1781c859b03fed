"""SRTP/SRTCP (RFC 3711, RFC 6188, RFC 7714) through libsrtp, via pylibsrtp.

One libsrtp session per SrtpSender / SrtpReceiver. pylibsrtp keeps one fixed buffer per Session, so an object
refuses calls from any thread but the first one that used it.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pylibsrtp

# pylibsrtp 1.0 has no AES-256-CM profile constant; its cffi module lets us fill the crypto policy directly.
from pylibsrtp._binding import ffi

from zcall.errors import ZcallError
from zcall.media.srtpkeys import SrtpKeys, SrtpProfile, tag_length

# Smallest packets libsrtp could accept: an RTP fixed header / an RTCP header plus SSRC.
_MIN_RTP = 12
_MIN_RTCP = 8


_LIBSRTP_PROFILE: dict[SrtpProfile, int] = {
    SrtpProfile.AES_CM_128_HMAC_SHA1_80: pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    SrtpProfile.AES_CM_128_HMAC_SHA1_32: pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
    SrtpProfile.AEAD_AES_128_GCM: pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
    SrtpProfile.AEAD_AES_256_GCM: pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_256_GCM,
}

# libsrtp 2.x srtp_crypto_policy_t is six 32-bit fields:
# cipher_type, cipher_key_len (key + salt), auth_type, auth_key_len, auth_tag_len, sec_serv.
_SRTP_AES_ICM_128 = 1
_SRTP_AES_ICM_256 = 5
_SRTP_HMAC_SHA1 = 3
_SEC_SERV_CONF_AND_AUTH = 3
_AES128_CM_80_LAYOUT = [_SRTP_AES_ICM_128, 30, _SRTP_HMAC_SHA1, 20, 10, _SEC_SERV_CONF_AND_AUTH]


class SrtpError(ZcallError):
    """A packet libsrtp refused; `.reason` is a counter key: auth, replay, malformed, too_large, ..."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


# libsrtp's error texts (as pylibsrtp reports them) -> our reasons.
_REASONS = {
    "authentication failure": "auth",
    "replay check failed (bad index)": "replay",
    "replay check failed (index too old)": "replay",
    "packet index is too old to consider": "replay",
    "can't process as much data as requested": "malformed",
    "error parsing data": "malformed",
    "unsupported parameter": "malformed",
    "cipher failure": "cipher",
    "no appropriate context found": "no_context",
    "can't use key any more": "key_exhausted",
}


def _reason(error: pylibsrtp.Error) -> str:
    return _REASONS.get(str(error), "error")


def _set_aes256_cm(crypto_policy: Any, tag_len: int) -> None:
    fields = ffi.cast("uint32_t *", crypto_policy)
    fields[0] = _SRTP_AES_ICM_256
    fields[1] = 32 + 14
    fields[2] = _SRTP_HMAC_SHA1
    fields[3] = 20
    fields[4] = tag_len
    fields[5] = _SEC_SERV_CONF_AND_AUTH


def _check_policy_layout(policy: pylibsrtp.Policy) -> None:
    """Refuse to poke memory if libsrtp's struct no longer looks like what _set_aes256_cm writes."""
    fields = ffi.cast("uint32_t *", ffi.addressof(policy._policy.rtp))
    if [fields[i] for i in range(6)] != _AES128_CM_80_LAYOUT:
        raise RuntimeError("unexpected libsrtp crypto policy layout; AES-256-CM unavailable")


def _make_policy(keys: SrtpKeys, ssrc_type: int, ssrc: int, window: int) -> pylibsrtp.Policy:
    if not 64 <= window < 0x8000:
        raise ValueError("libsrtp's replay window must be 64..32767 packets")
    material = keys.master_key + keys.master_salt
    if keys.profile in _LIBSRTP_PROFILE:
        policy = pylibsrtp.Policy(key=material, ssrc_type=ssrc_type, ssrc_value=ssrc,
                                  srtp_profile=_LIBSRTP_PROFILE[keys.profile])
    else:
        # Start from the AES-128 profile (its 30-octet key check passes our 46 octets), then switch ciphers.
        policy = pylibsrtp.Policy(key=material, ssrc_type=ssrc_type, ssrc_value=ssrc)
        _check_policy_layout(policy)
        _set_aes256_cm(ffi.addressof(policy._policy.rtp), tag_length(keys.profile))
        # RFC 6188 §4: SRTCP keeps the 80-bit tag even for the _32 suite.
        _set_aes256_cm(ffi.addressof(policy._policy.rtcp), 10)
    policy.window_size = window
    policy.allow_repeat_tx = False
    return policy


class _SessionOwner:
    """One libsrtp session, usable only from the thread that first touched it."""

    def __init__(self, policy: pylibsrtp.Policy) -> None:
        self._session = pylibsrtp.Session(policy=policy)
        self._thread: int | None = None

    def _claim(self) -> pylibsrtp.Session:
        me = threading.get_ident()
        if self._thread is None:
            self._thread = me
        elif self._thread != me:
            raise RuntimeError("an SRTP session is bound to one thread")
        return self._session


class SrtpSender(_SessionOwner):
    """Protects outgoing RTP and RTCP. With `ssrc`, only that SSRC is accepted; otherwise any outbound one."""

    def __init__(self, keys: SrtpKeys, ssrc: int | None = None, window: int = 128) -> None:
        if ssrc is None:
            policy = _make_policy(keys, pylibsrtp.Policy.SSRC_ANY_OUTBOUND, 0, window)
        else:
            policy = _make_policy(keys, pylibsrtp.Policy.SSRC_SPECIFIC, ssrc, window)
        super().__init__(policy)
        self.profile = keys.profile

    def protect(self, rtp: bytes) -> bytes:
        return self._run(rtp, _MIN_RTP, rtcp=False)

    def protect_rtcp(self, rtcp: bytes) -> bytes:
        return self._run(rtcp, _MIN_RTCP, rtcp=True)

    def _run(self, data: bytes, minimum: int, rtcp: bool) -> bytes:
        session = self._claim()
        if len(data) < minimum:
            raise SrtpError("malformed", "shorter than a header")
        try:
            return bytes(session.protect_rtcp(bytes(data)) if rtcp else session.protect(bytes(data)))
        except ValueError as exc:
            raise SrtpError("too_large", str(exc)) from exc
        except pylibsrtp.Error as exc:
            raise SrtpError(_reason(exc), str(exc)) from exc


class SrtpReceiver(_SessionOwner):
    """Verifies and decrypts incoming SRTP/SRTCP from any SSRC; counts what it rejects, by reason."""

    def __init__(self, keys: SrtpKeys, window: int = 128) -> None:
        super().__init__(_make_policy(keys, pylibsrtp.Policy.SSRC_ANY_INBOUND, 0, window))
        self.profile = keys.profile
        self.accepted = 0
        self.rejects: Counter[str] = Counter()

    def unprotect(self, srtp: bytes) -> bytes:
        return self._run(srtp, _MIN_RTP + tag_length(self.profile), rtcp=False)

    def unprotect_rtcp(self, srtcp: bytes) -> bytes:
        return self._run(srtcp, _MIN_RTCP + 4 + min(tag_length(self.profile), 10), rtcp=True)

    def _run(self, data: bytes, minimum: int, rtcp: bool) -> bytes:
        session = self._claim()
        try:
            if len(data) < minimum:
                raise SrtpError("malformed", "shorter than header and tag")
            if data[0] >> 6 != 2:
                raise SrtpError("malformed", "not version 2")
            try:
                plain = session.unprotect_rtcp(bytes(data)) if rtcp else session.unprotect(bytes(data))
            except ValueError as exc:
                raise SrtpError("too_large", str(exc)) from exc
            except pylibsrtp.Error as exc:
                raise SrtpError(_reason(exc), str(exc)) from exc
        except SrtpError as exc:
            self.rejects[exc.reason] += 1
            raise
        self.accepted += 1
        return bytes(plain)
