"""What a zcall unit says about itself over mDNS: the service types, the TXT record, and the peer events.

TXT (RFC 6763 §6) carries txtvers=1, zid=<24 hex>, sip=<port>, name=<display name>, ver=<zcall version>, and
aor=<user@server> when the unit has a server account (the way to reach it when the LAN path fails).
Anything from the network is untrusted: the raw record is parsed with hard limits and every field validated; a
record that fails raises TxtError (with a short reason the browser counts) and is ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from zcall.errors import ZcallError

ZCALL_SERVICE = "_zcall._udp.local."
SIP_SERVICE = "_sip._udp.local."
TXT_VERSION = "1"

ZID_LEN = 12
MAX_TXT_RECORD = 1300  # RFC 6763 §6.2: keep the whole record within one Ethernet-sized packet
MAX_TXT_ENTRIES = 32
MAX_NAME_BYTES = 63  # the instance name is one DNS label
MAX_VERSION_LEN = 32
MAX_AOR_LEN = 128

_KEY_RE = re.compile(r"[\x20-\x3c\x3e-\x7e]{1,9}")  # printable ASCII except '='; our keys are short
_VERSION_RE = re.compile(r"[0-9A-Za-z.+~_-]{1,32}")
_ZID_RE = re.compile(r"[0-9a-f]{24}")
_PORT_RE = re.compile(r"[1-9][0-9]{0,4}")
_AOR_RE = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=%-]{1,64}@[A-Za-z0-9.-]{1,63}")


class TxtError(ZcallError, ValueError):
    """A TXT record we will not use. `reason` is a short fixed token for drop counters."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class PeerUp:
    """Another zcall unit appeared (or changed address/port). name is its unique instance name on the LAN."""

    name: str
    zid: bytes
    address: str
    port: int
    sip_port: int
    aor: str | None = None  # user@server of its server account, if it has one


@dataclass(frozen=True)
class PeerDown:
    """A unit we announced with PeerUp said goodbye or its records expired."""

    name: str
    zid: bytes


@dataclass(frozen=True)
class Announcement:
    """The validated content of a zcall TXT record."""

    zid: bytes
    sip_port: int
    name: str
    version: str
    aor: str | None = None


def check_name(name: str) -> str:
    """A display name usable as an mDNS instance label: 1..63 UTF-8 bytes, no control characters."""
    if not name or len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise TxtError("bad-name", f"name must be 1..{MAX_NAME_BYTES} UTF-8 bytes")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name) or name != name.strip():
        raise TxtError("bad-name", "name has control characters or surrounding spaces")
    return name


def encode_txt(zid: bytes, sip_port: int, name: str, version: str, aor: str | None = None) -> dict[str, str]:
    """The TXT properties we advertise (zeroconf does the wire encoding)."""
    if len(zid) != ZID_LEN:
        raise ValueError(f"a ZID is {ZID_LEN} bytes")
    if not 1 <= sip_port <= 65535:
        raise ValueError("sip_port must be 1..65535")
    if not _VERSION_RE.fullmatch(version):
        raise ValueError("version must be 1..32 characters of [0-9A-Za-z.+~_-]")
    check_name(name)
    props = {"txtvers": TXT_VERSION, "zid": zid.hex(), "sip": str(sip_port), "name": name, "ver": version}
    if aor is not None:
        if not _AOR_RE.fullmatch(aor):
            raise ValueError("aor must be user@host")
        props["aor"] = aor
    return props


def parse_txt_record(raw: bytes) -> dict[str, bytes | None]:
    """RFC 6763 §6 wire form: length-prefixed strings of key[=value]. Keys are case-insensitive; the first
    occurrence of a key wins; a value-less key maps to None."""
    if len(raw) > MAX_TXT_RECORD:
        raise TxtError("too-long", f"{len(raw)} bytes")
    props: dict[str, bytes | None] = {}
    offset = 0
    entries = 0
    while offset < len(raw):
        length = raw[offset]
        offset += 1
        if offset + length > len(raw):
            raise TxtError("truncated", "string runs past the record")
        item = raw[offset : offset + length]
        offset += length
        if length == 0:  # an empty record is sent as a single zero byte
            continue
        entries += 1
        if entries > MAX_TXT_ENTRIES:
            raise TxtError("too-many-entries")
        key_bytes, eq, value = item.partition(b"=")
        try:
            key = key_bytes.decode("ascii").lower()
        except UnicodeDecodeError as exc:
            raise TxtError("bad-key", "non-ASCII key") from exc
        if not key:
            continue  # §6.4: a string starting with '=' is silently ignored
        if not _KEY_RE.fullmatch(key):
            raise TxtError("bad-key", repr(key))
        if key not in props:
            props[key] = value if eq else None
    return props


def decode_announcement(props: dict[str, bytes | None]) -> Announcement:
    """Validate the zcall fields of parsed TXT properties."""

    def text(key: str, limit: int) -> str:
        value = props.get(key)
        if value is None:
            raise TxtError(f"missing-{key}")
        if len(value) > limit:
            raise TxtError(f"bad-{key}", "too long")
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TxtError(f"bad-{key}", "not UTF-8") from exc

    if text("txtvers", 8) != TXT_VERSION:
        raise TxtError("bad-txtvers")
    zid_hex = text("zid", 2 * ZID_LEN)
    if not _ZID_RE.fullmatch(zid_hex):
        raise TxtError("bad-zid")
    port_text = text("sip", 5)
    if not _PORT_RE.fullmatch(port_text) or int(port_text) > 65535:
        raise TxtError("bad-sip")
    name = check_name(text("name", MAX_NAME_BYTES))
    version = text("ver", MAX_VERSION_LEN)
    if not _VERSION_RE.fullmatch(version):
        raise TxtError("bad-ver")
    aor = text("aor", MAX_AOR_LEN) if props.get("aor") is not None else None
    if aor is not None and not _AOR_RE.fullmatch(aor):
        raise TxtError("bad-aor")
    return Announcement(
        zid=bytes.fromhex(zid_hex), sip_port=int(port_text), name=name, version=version, aor=aor
    )


def decode_txt(raw: bytes) -> Announcement:
    """Raw TXT rdata -> Announcement, or TxtError."""
    return decode_announcement(parse_txt_record(raw))
