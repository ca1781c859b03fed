"""Client side of HTTP Digest for SIP 401/407 challenges (RFC 2617, RFC 7616, RFC 8760).

MD5 and SHA-256 (and their -sess forms, SHA-256 preferred), qop=auth required, nc counting up per request
for a nonce, a fresh cnonce per request, one answer per challenge and stale=true handling (a stale nonce is
retried, twice at most; a plain second refusal is not). Only the account's own realm is answered.
The password never leaves this module except as a hash inside the response value.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field

from zcall.sip.errors import SipParseError
from zcall.sip.model import Response

MAX_CHALLENGE = 4096
MAX_PARAMS = 24
MAX_VALUE = 1024

_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
# RFC 8760: prefer the strongest algorithm offered.
_PREFERENCE = ("SHA-256", "SHA-256-sess", "MD5", "MD5-sess")


class DigestParseError(SipParseError):
    """A challenge we cannot parse or cannot answer."""


@dataclass(frozen=True)
class Challenge:
    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False
    proxy: bool = False  # from Proxy-Authenticate (407)

    @property
    def header_name(self) -> str:
        return "Proxy-Authorization" if self.proxy else "Authorization"


def _params(text: str) -> dict[str, str]:
    """auth-param list: name=token or name="quoted", separated by commas."""
    params: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t,":
            i += 1
        if i >= n:
            break
        m = _TOKEN.match(text, i)
        if not m:
            raise DigestParseError("bad auth-param name")
        name = m.group(0).lower()
        i = m.end()
        while i < n and text[i] in " \t":
            i += 1
        if i >= n or text[i] != "=":
            raise DigestParseError(f"auth-param {name[:20]} without a value")
        i += 1
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] == '"':
            out: list[str] = []
            i += 1
            while True:
                if i >= n:
                    raise DigestParseError("unterminated quoted string")
                ch = text[i]
                if ch == "\\" and i + 1 < n:
                    out.append(text[i + 1])
                    i += 2
                    continue
                if ch == '"':
                    i += 1
                    break
                out.append(ch)
                i += 1
            value = "".join(out)
        else:
            m = _TOKEN.match(text, i)
            if not m:
                raise DigestParseError(f"bad value for {name[:20]}")
            value = m.group(0)
            i = m.end()
        if len(value) > MAX_VALUE:
            raise DigestParseError("auth-param value too long")
        if name in params:
            raise DigestParseError(f"duplicate auth-param {name[:20]}")
        params[name] = value
        if len(params) > MAX_PARAMS:
            raise DigestParseError("too many auth-params")
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] != ",":
            raise DigestParseError("auth-params must be separated by commas")
    return params


def parse_challenge(value: str, *, proxy: bool = False) -> Challenge:
    if len(value) > MAX_CHALLENGE:
        raise DigestParseError("challenge too long")
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise DigestParseError(f"unsupported auth scheme {scheme[:20]!r}")
    params = _params(rest)
    if "realm" not in params or "nonce" not in params:
        raise DigestParseError("challenge needs realm and nonce")
    algorithm = params.get("algorithm", "MD5")
    canonical = {a.lower(): a for a in _PREFERENCE}.get(algorithm.lower())
    if canonical is None:
        raise DigestParseError(f"unsupported algorithm {algorithm[:20]!r}")
    qop = tuple(q.strip().lower() for q in params["qop"].split(",") if q.strip()) if "qop" in params else ()
    if qop and not {"auth", "auth-int"} & set(qop):
        raise DigestParseError("no supported qop offered")
    return Challenge(
        realm=params["realm"],
        nonce=params["nonce"],
        algorithm=canonical,
        qop=qop,
        opaque=params.get("opaque"),
        stale=params.get("stale", "false").lower() == "true",
        proxy=proxy,
    )


def challenges(response: Response) -> list[Challenge]:
    """Every Digest challenge we can answer in a 401/407, strongest algorithm first."""
    proxy = response.status == 407
    name = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
    out: list[Challenge] = []
    for value in response.headers.get_all(name)[:8]:
        try:
            out.append(parse_challenge(value, proxy=proxy))
        except DigestParseError:
            continue  # another challenge in the same response may still be usable
    return sorted(out, key=lambda c: _PREFERENCE.index(c.algorithm))


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def compute_response(
    challenge: Challenge,
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    cnonce: str,
    nc: int,
    qop: str | None,
    body: bytes = b"",
) -> str:
    base = challenge.algorithm.removesuffix("-sess")
    hash_fn = _HASHES[base]

    def h(text: str | bytes) -> str:
        return hash_fn(text.encode() if isinstance(text, str) else text).hexdigest()

    ha1 = h(f"{username}:{challenge.realm}:{password}")
    if challenge.algorithm.endswith("-sess"):
        ha1 = h(f"{ha1}:{challenge.nonce}:{cnonce}")
    ha2 = h(f"{method}:{uri}:{h(body)}") if qop == "auth-int" else h(f"{method}:{uri}")
    if qop:
        return h(f"{ha1}:{challenge.nonce}:{nc:08x}:{cnonce}:{qop}:{ha2}")
    return h(f"{ha1}:{challenge.nonce}:{ha2}")


MAX_STALE_RETRIES = 2  # fresh nonces accepted in a row for one request before we call it a refusal
MAX_TRACKED = 64  # exchanges (and nonces) remembered; the oldest are forgotten first


@dataclass
class _Round:
    nonce: str
    stale_retries: int


@dataclass
class DigestClient:
    """Answers challenges for one account: only in its server's realm, only with qop=auth, once per challenge.

    `realm` is the server's realm when configured; otherwise the first challenge to a REGISTER pins it
    (`learn_realm=True`), and until then nothing is answered. A callee reached through the proxy can send its
    own 401 with a realm and nonce of its choosing; answering it would hand over a crackable hash.
    """

    username: str
    password: str = field(repr=False)
    realm: str | None = None
    _nc: dict[str, int] = field(default_factory=dict, repr=False)
    _rounds: dict[tuple[str, str], _Round] = field(default_factory=dict, repr=False)

    def choose(self, response: Response, *, learn_realm: bool = False) -> Challenge | None:
        """The challenge in a 401/407 to answer, or None: none in our realm with qop=auth, or this exchange
        (Call-ID and method) was refused already and the new challenge does not call the nonce stale."""
        usable = [c for c in challenges(response) if "auth" in c.qop and self._realm_ok(c, learn_realm)]
        if not usable:
            return None
        challenge = usable[0]
        key = (response.call_id, response.cseq.method)
        last = self._rounds.pop(key, None)
        retries = 0
        if last is not None:
            fresh = challenge.stale and challenge.nonce != last.nonce
            if not fresh or last.stale_retries >= MAX_STALE_RETRIES:
                return None
            retries = last.stale_retries + 1
        self._rounds[key] = _Round(challenge.nonce, retries)
        while len(self._rounds) > MAX_TRACKED:
            del self._rounds[next(iter(self._rounds))]
        if self.realm is None:
            self.realm = challenge.realm
        return challenge

    def _realm_ok(self, challenge: Challenge, learn_realm: bool) -> bool:
        return challenge.realm == self.realm if self.realm is not None else learn_realm

    def authorize(
        self, response: Response, *, method: str, uri: str, body: bytes = b"", cnonce: str | None = None,
        learn_realm: bool = False,
    ) -> tuple[str, str] | None:
        """(header name, value) answering a 401/407, or None when we must not (see choose())."""
        challenge = self.choose(response, learn_realm=learn_realm)
        if challenge is None:
            return None
        value = self.header_value(challenge, method=method, uri=uri, body=body, cnonce=cnonce)
        return challenge.header_name, value

    def succeeded(self, response: Response) -> None:
        """A 2xx to a request that carried our credentials: a later challenge in that exchange is new."""
        self._rounds.pop((response.call_id, response.cseq.method), None)

    def header_value(
        self, challenge: Challenge, *, method: str, uri: str, body: bytes = b"", cnonce: str | None = None
    ) -> str:
        qop: str | None = None
        if challenge.qop:
            qop = "auth" if "auth" in challenge.qop else "auth-int"
        nc = self._nc.pop(challenge.nonce, 0) + 1  # every request with this nonce counts up (RFC 7616 §3.4)
        self._nc[challenge.nonce] = nc
        while len(self._nc) > MAX_TRACKED:
            del self._nc[next(iter(self._nc))]
        cnonce = cnonce or secrets.token_hex(16)
        digest = compute_response(
            challenge, method=method, uri=uri, username=self.username, password=self.password,
            cnonce=cnonce, nc=nc, qop=qop, body=body,
        )  # fmt: skip
        parts = [
            f"username={_quote(self.username)}",
            f"realm={_quote(challenge.realm)}",
            f"nonce={_quote(challenge.nonce)}",
            f"uri={_quote(uri)}",
            f"response={_quote(digest)}",
            f"algorithm={challenge.algorithm}",
        ]
        if qop:
            parts += [f"cnonce={_quote(cnonce)}", f"qop={qop}", f"nc={nc:08x}"]
        if challenge.opaque is not None:
            parts.append(f"opaque={_quote(challenge.opaque)}")
        return "Digest " + ", ".join(parts)
