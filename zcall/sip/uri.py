"""SIP URIs and name-addr values (RFC 3261 §19.1, §25.1), parsed strictly with size limits."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from zcall.sip.errors import ParseReason, SipParseError, ascii_number

MAX_URI = 1024

_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+\Z")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*\Z")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"(?:{_LABEL}\.)*[A-Za-z](?:[A-Za-z0-9\-]{{0,61}}[A-Za-z0-9])?\.?\Z")
_IPV4 = re.compile(r"([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\Z")
_IPV6 = re.compile(r"\[[0-9A-Fa-f:.]{2,45}\]\Z")
# Characters allowed (besides %HH escapes) in each URI part.
_UNRESERVED = "A-Za-z0-9\\-_.!~*'()"
_USER = re.compile(rf"(?:[{_UNRESERVED}&=+$,;?/]|%[0-9A-Fa-f]{{2}})+\Z")
_PASSWORD = re.compile(rf"(?:[{_UNRESERVED}&=+$,]|%[0-9A-Fa-f]{{2}})*\Z")
_PCHAR = re.compile(rf"(?:[{_UNRESERVED}\[\]/:&+$]|%[0-9A-Fa-f]{{2}})+\Z")
_HCHAR = re.compile(rf"(?:[{_UNRESERVED}\[\]/?:+$]|%[0-9A-Fa-f]{{2}})*\Z")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")


def is_token(text: str) -> bool:
    return bool(_TOKEN.match(text))


def unescape(text: str) -> str:
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)


def valid_host(host: str) -> bool:
    if _IPV6.match(host):
        return True
    m = _IPV4.match(host)
    if m:
        return all(int(part) <= 255 for part in m.groups())
    return len(host) <= 255 and bool(_HOSTNAME.match(host))


def split_host_port(text: str) -> tuple[str, int | None]:
    """'host', 'host:port' or '[v6]:port' -> (host, port); raises on anything else."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise SipParseError("unterminated IPv6 reference", kind=ParseReason.URI)
        host, rest = text[: end + 1], text[end + 1 :]
    else:
        host, _, port_text = text.partition(":")
        rest = ":" + port_text if _ else ""
    port: int | None = None
    if rest:
        port = ascii_number(rest[1:], 5) if rest.startswith(":") else None
        if port is None:
            raise SipParseError(f"bad port in {text[:40]!r}", kind=ParseReason.URI)
        if not 0 < port <= 65535:
            raise SipParseError("port out of range", kind=ParseReason.URI)
    if not valid_host(host):
        raise SipParseError(f"bad host {host[:40]!r}", kind=ParseReason.URI)
    return host, port


def parse_params(text: str, pattern: re.Pattern[str] = _PCHAR) -> dict[str, str | None]:
    """';a=b;c' (leading ';' already removed) -> {'a': 'b', 'c': None}; names are lower-cased."""
    params: dict[str, str | None] = {}
    if text == "":
        return params
    for item in text.split(";"):
        name, eq, value = item.partition("=")
        if not name or not pattern.match(name) or (eq and not pattern.match(value)):
            raise SipParseError(f"bad URI parameter {item[:40]!r}", kind=ParseReason.URI)
        params[name.lower()] = value if eq else None
    return params


@dataclass(frozen=True)
class SipUri:
    """A sip:/sips: URI. Other schemes keep their text in `opaque` (e.g. tel: in a From)."""

    scheme: str
    host: str = ""
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: str = ""
    opaque: str = ""

    @property
    def is_sip(self) -> bool:
        return self.scheme in ("sip", "sips")

    @property
    def transport(self) -> str:
        value = self.params.get("transport")
        if value:
            return value.upper()
        return "TLS" if self.scheme == "sips" else "UDP"

    def without_headers(self) -> SipUri:
        return replace(self, headers="")

    def __str__(self) -> str:
        if not self.is_sip:
            return f"{self.scheme}:{self.opaque}"
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out += [":", self.password]
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out.append(f":{self.port}")
        for name, value in self.params.items():
            out.append(f";{name}" if value is None else f";{name}={value}")
        if self.headers:
            out.append("?" + self.headers)
        return "".join(out)

    def same_as(self, other: SipUri) -> bool:
        """Equality in the spirit of RFC 3261 §19.1.4 (escapes decoded, host and scheme case-insensitive)."""
        if self.scheme != other.scheme or not self.is_sip:
            return self.scheme == other.scheme and self.opaque == other.opaque
        if (self.user is None) != (other.user is None):
            return False
        if self.user is not None and other.user is not None and unescape(self.user) != unescape(other.user):
            return False
        if self.host.lower() != other.host.lower() or self.port != other.port:
            return False
        for key in ("transport", "user", "ttl", "method", "maddr"):
            a, b = self.params.get(key), other.params.get(key)
            if (a or "").lower() != (b or "").lower():
                return False
        return True


def parse_uri(text: str) -> SipUri:
    if len(text) > MAX_URI:
        raise SipParseError("URI too long", 414, kind=ParseReason.URI)
    scheme, colon, rest = text.partition(":")
    if not colon or not _SCHEME.match(scheme):
        raise SipParseError(f"bad URI {text[:40]!r}", kind=ParseReason.URI)
    scheme = scheme.lower()
    if scheme not in ("sip", "sips"):
        if not rest or any(c.isspace() or c in "<>\"" for c in rest):
            raise SipParseError(f"bad URI {text[:40]!r}", kind=ParseReason.URI)
        return SipUri(scheme=scheme, opaque=rest)
    headers = ""
    if "?" in rest:
        # '?' may legally appear in the user part, so split headers only after the '@'.
        at = rest.rfind("@")
        q = rest.find("?", at + 1)
        if q >= 0:
            rest, headers = rest[:q], rest[q + 1 :]
            if not headers or not _HCHAR.match(headers.replace("=", "").replace("&", "")):
                raise SipParseError("bad URI headers", kind=ParseReason.URI)
    user = password = None
    if "@" in rest:
        userinfo, _, rest = rest.rpartition("@")
        user, colon, pw = userinfo.partition(":")
        if not _USER.match(user):
            raise SipParseError(f"bad user part {user[:40]!r}", kind=ParseReason.URI)
        if colon:
            if not _PASSWORD.match(pw):
                raise SipParseError("bad password part", kind=ParseReason.URI)
            password = pw
    hostport, _, param_text = rest.partition(";")
    host, port = split_host_port(hostport)
    params = parse_params(param_text)
    return SipUri(scheme, host.lower(), user, password, port, params, headers)


_GEN_VALUE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~:\[\]]+\Z")


def parse_header_params(text: str) -> dict[str, str | None]:
    """Generic header params ';name[=token|host|"quoted"]' (leading ';' included or not)."""
    params: dict[str, str | None] = {}
    parts = split_outside_quotes(text, ";")
    for raw in parts:
        item = raw.strip()
        if not item:
            if raw is parts[0]:
                continue
            raise SipParseError("empty header parameter", kind=ParseReason.URI)
        name, eq, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not is_token(name):
            raise SipParseError(f"bad header parameter name {name[:40]!r}", kind=ParseReason.URI)
        if eq:
            if value.startswith('"'):
                value = "\"" + unquote(value) + "\""
            elif not _GEN_VALUE.match(value):
                raise SipParseError(f"bad header parameter value {value[:40]!r}", kind=ParseReason.URI)
        params[name.lower()] = value if eq else None
    return params


_SPECIALS = {sep: re.compile(r'[\\"<>' + re.escape(sep) + "]") for sep in ",;"}


def split_outside_quotes(text: str, sep: str) -> list[str]:
    """Split on `sep` where it is outside "quoted strings" and <angle brackets>."""
    out: list[str] = []
    depth = 0
    in_quote = False
    skip = -1  # inside quotes a backslash escapes the next character, whatever it is
    start = 0
    # Only the special characters matter, so jump from one to the next.
    for m in _SPECIALS[sep].finditer(text):
        i, ch = m.start(), m.group()
        if i < skip:
            continue
        if in_quote:
            if ch == "\\":
                skip = i + 2
            elif ch == '"':
                in_quote = False
        elif ch == '"':
            in_quote = True
        elif ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
            if depth < 0:
                raise SipParseError("unbalanced '>'", kind=ParseReason.ADDRESS)
        elif ch == sep and depth == 0:
            out.append(text[start:i])
            start = i + 1
    if in_quote:
        raise SipParseError("unterminated quoted string", kind=ParseReason.ADDRESS)
    if depth:
        raise SipParseError("unbalanced '<'", kind=ParseReason.ADDRESS)
    out.append(text[start:])
    return out


def unquote(text: str) -> str:
    """'"a \\"b\\""' -> 'a "b"'. The whole text must be exactly one quoted string."""
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        raise SipParseError("bad quoted string", kind=ParseReason.ADDRESS)
    out: list[str] = []
    i = 1
    while i < len(text) - 1:
        ch = text[i]
        if ch == "\\":
            if i + 1 >= len(text) - 1:
                raise SipParseError("dangling escape in quoted string", kind=ParseReason.ADDRESS)
            out.append(text[i + 1])
            i += 2
            continue
        if ch == '"':
            raise SipParseError("stray quote in quoted string", kind=ParseReason.ADDRESS)
        out.append(ch)
        i += 1
    return "".join(out)


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class NameAddr:
    """From/To/Contact/Route value: optional display name, a URI, header parameters (tag, expires, lr…)."""

    uri: SipUri
    display: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def with_tag(self, tag: str) -> NameAddr:
        return replace(self, params={**self.params, "tag": tag})

    def __str__(self) -> str:
        head = f"{quote(self.display)} " if self.display else ""
        tail = "".join(f";{k}" if v is None else f";{k}={v}" for k, v in self.params.items())
        return f"{head}<{self.uri}>{tail}"


_DISPLAY_TOKENS = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+(?:[ \t]+[A-Za-z0-9\-.!%*_+`'~]+)*\Z")


def parse_name_addr(text: str) -> NameAddr:
    text = text.strip()
    if not text:
        raise SipParseError("empty address", kind=ParseReason.ADDRESS)
    display: str | None = None
    if text.startswith('"') or "<" in text:
        if text.startswith('"'):
            end = _closing_quote(text)
            display = unquote(text[: end + 1])
            text = text[end + 1 :].lstrip()
            if not text.startswith("<"):
                raise SipParseError("quoted display name not followed by <URI>", kind=ParseReason.ADDRESS)
        else:
            lt = text.index("<")
            name = text[:lt].strip()
            if name:
                if not _DISPLAY_TOKENS.match(name):
                    raise SipParseError(f"bad display name {name[:40]!r}", kind=ParseReason.ADDRESS)
                display = name
            text = text[lt:]
        gt = text.find(">")
        if gt < 0:
            raise SipParseError("missing '>'", kind=ParseReason.ADDRESS)
        uri = parse_uri(text[1:gt])
        rest = text[gt + 1 :].strip()
        if rest and not rest.startswith(";"):
            raise SipParseError("junk after '>'", kind=ParseReason.ADDRESS)
    else:
        # addr-spec form: everything after the first ';' is header parameters, not URI parameters.
        raw_uri, _, rest = text.partition(";")
        raw_uri = raw_uri.strip()
        if any(c in raw_uri for c in " \t,?"):
            raise SipParseError("addr-spec needs <> around it", kind=ParseReason.ADDRESS)
        uri = parse_uri(raw_uri)
        rest = ";" + rest if rest else ""
    return NameAddr(uri, display, parse_header_params(rest[1:]) if rest else {})


def _closing_quote(text: str) -> int:
    i = 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return i
        i += 1
    raise SipParseError("unterminated quoted string", kind=ParseReason.ADDRESS)
