"""Who is the DTLS client: SDP a=setup negotiation (RFC 4145 §4, RFC 5763 §5)."""

from __future__ import annotations

from typing import Literal

from zcall.errors import ZcallError

Role = Literal["client", "server"]
_VALUES = ("active", "passive", "actpass", "holdconn")


class SetupError(ZcallError, ValueError):
    """The two a=setup values do not make one DTLS client and one server."""


def _check(value: str) -> str:
    value = value.strip().lower()
    if value not in _VALUES:
        raise SetupError(f"unknown a=setup value {value[:16]!r}")
    if value == "holdconn":
        raise SetupError("a=setup:holdconn has no DTLS role")
    return value


def answer_setup(offer_setup: str) -> str:
    """Our a=setup for an answer. RFC 5763 §5: an actpass offer is answered active (we send first)."""
    offer = _check(offer_setup)
    return "passive" if offer == "active" else "active"


def role_for(local_setup: str, remote_setup: str, is_offerer: bool) -> Role:
    """Our DTLS role once both a=setup values are known: active connects (client), passive accepts."""
    local, remote = _check(local_setup), _check(remote_setup)
    answer = remote if is_offerer else local
    if answer == "actpass":
        raise SetupError("an answer must say active or passive, not actpass")
    if local == "actpass":
        local = "passive" if remote == "active" else "active"
    elif remote == "actpass":
        remote = "passive" if local == "active" else "active"
    if local == remote:
        raise SetupError(f"both sides say a=setup:{local}")
    return "client" if local == "active" else "server"
