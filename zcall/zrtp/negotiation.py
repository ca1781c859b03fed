"""Algorithm negotiation (RFC 6189 §4.1.2, §5.1): what we offer in Hello, what we pick, what we accept."""

from __future__ import annotations

from dataclasses import dataclass

from zcall.zrtp import crypto
from zcall.zrtp import messages as m
from zcall.zrtp.errors import Abort, ZrtpErrorCode

NON_DH_MODES = ("Prsh", "Mult")


def wire(name: str) -> bytes:
    """An algorithm name as the 4-byte, space-padded wire word."""
    return name.encode("ascii").ljust(4)


def name(value: bytes) -> str:
    return value.decode("ascii", "replace").rstrip(" ")


@dataclass(frozen=True)
class Choice:
    hash: str
    cipher: str
    auth: str
    key_agreement: str
    sas: str


@dataclass(frozen=True)
class Offer:
    """Our algorithms of each kind, most preferred first."""

    hashes: tuple[str, ...]
    ciphers: tuple[str, ...]
    auths: tuple[str, ...]
    key_agreements: tuple[str, ...]
    sas_types: tuple[str, ...]

    def __post_init__(self) -> None:
        for given, known in (
            (self.key_agreements, crypto.KEY_AGREEMENTS),
            (self.hashes, tuple(crypto.HASHES)),
            (self.ciphers, tuple(crypto.CIPHER_KEY_LEN)),
            (self.auths, crypto.AUTH_TAGS),
            (self.sas_types, crypto.SAS_TYPES),
        ):
            if not given or len(given) > m.MAX_ALGOS or not set(given) <= set(known):
                raise ValueError(f"algorithms {given} must be 1..7 of {known}")

    def hello(self, client_id: str, h3: bytes, zid: bytes) -> m.Hello:
        """Our Hello, still without its MAC."""
        return m.Hello(
            version=m.VERSION,
            client_id=client_id.encode("ascii", "replace")[:16].ljust(16),
            h3=h3,
            zid=zid,
            hashes=tuple(map(wire, self.hashes)),
            ciphers=tuple(map(wire, self.ciphers)),
            auths=tuple(map(wire, self.auths)),
            key_agreements=tuple(map(wire, self.key_agreements)),
            sas_types=tuple(map(wire, self.sas_types)),
        )

    def choose(self, hello: m.Hello) -> Choice:
        """The initiator's pick from the peer's Hello; Abort when a kind has nothing in common."""
        ours, theirs = self.key_agreements, tuple(name(v) for v in hello.key_agreements)
        if not ("S384" in self.hashes and wire("S384") in hello.hashes):
            # §5.1.5: EC38 MUST use SHA-384. Both ends drop it by the same rule, so they still agree (§4.1.2).
            ours, theirs = _without_ec38(ours), _without_ec38(theirs)
        ka = crypto.choose_key_agreement(ours, theirs)
        if ka is None:
            raise Abort(ZrtpErrorCode.KEY_AGREEMENT, "no key agreement in common")
        hash_order, cipher_order = self.hashes, self.ciphers
        if ka == "EC38":  # a 384-bit curve takes SHA-384, and AES-256 when both have it (§5.1.5)
            hash_order = ("S384",)
            cipher_order = tuple(sorted(cipher_order, key=lambda c: c != "AES3"))
        return Choice(
            hash=_first(hash_order, hello.hashes, ZrtpErrorCode.HASH, "hash"),
            cipher=_first(cipher_order, hello.ciphers, ZrtpErrorCode.CIPHER, "cipher"),
            auth=_first(self.auths, hello.auths, ZrtpErrorCode.AUTH, "auth tag"),
            key_agreement=ka,
            sas=_first(self.sas_types, hello.sas_types, ZrtpErrorCode.SAS, "SAS type"),
        )

    def accept(self, commit: m.Commit) -> Choice:
        """The responder's check of a Commit: every algorithm must be one we offered."""
        if name(commit.key_agreement) in NON_DH_MODES:
            # We never offer them; with no ZRTPSess or preshared key the peer must use DH (§5.9, 0x56).
            raise Abort(ZrtpErrorCode.NO_SHARED_SECRET, "preshared/multistream Commit: DH mode required")
        choice = Choice(
            hash=_offered(commit.hash, self.hashes, "hash", ZrtpErrorCode.HASH),
            cipher=_offered(commit.cipher, self.ciphers, "cipher", ZrtpErrorCode.CIPHER),
            auth=_offered(commit.auth, self.auths, "auth", ZrtpErrorCode.AUTH),
            key_agreement=_offered(
                commit.key_agreement, self.key_agreements, "ka", ZrtpErrorCode.KEY_AGREEMENT
            ),
            sas=name(commit.sas),
        )
        if choice.sas not in self.sas_types:
            raise Abort(ZrtpErrorCode.SAS, f"SAS type {choice.sas!r} not offered")
        if choice.key_agreement == "EC38" and choice.hash != "S384":
            raise Abort(ZrtpErrorCode.HASH, "EC38 needs the S384 hash (RFC 6189 §5.1.5)")
        return choice


def _without_ec38(kas: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(ka for ka in kas if ka != "EC38")


def _first(ours: tuple[str, ...], theirs: tuple[bytes, ...], code: ZrtpErrorCode, what: str) -> str:
    names = {name(v) for v in theirs}
    for ours_name in ours:
        if ours_name in names:
            return ours_name
    raise Abort(code, f"no {what} in common")


def _offered(value: bytes, ours: tuple[str, ...], kind: str, code: ZrtpErrorCode) -> str:
    chosen = name(value)
    if chosen not in ours:
        raise Abort(code, f"{kind} {chosen!r} not offered")
    return chosen
