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
        ours, theirs = self.supported(), _supported_by(hello)
        kas_ours, kas_theirs = ours.key_agreements, theirs.key_agreements
        if not ("S384" in ours.hashes and "S384" in theirs.hashes):
            # §5.1.5: EC38 MUST use SHA-384. Both ends drop it by the same rule, so they still agree (§4.1.2).
            kas_ours, kas_theirs = _without_ec38(kas_ours), _without_ec38(kas_theirs)
        ka = crypto.choose_key_agreement(kas_ours, kas_theirs)
        if ka is None:
            raise Abort(ZrtpErrorCode.KEY_AGREEMENT, "no key agreement in common")
        hash_order, cipher_order = ours.hashes, ours.ciphers
        if ka == "EC38":  # a 384-bit curve takes SHA-384, and AES-256 when both have it (§5.1.5)
            hash_order = ("S384",)
            cipher_order = tuple(sorted(cipher_order, key=lambda c: c != "AES3"))
        return Choice(
            hash=_first(hash_order, theirs.hashes, ZrtpErrorCode.HASH, "hash"),
            cipher=_first(cipher_order, theirs.ciphers, ZrtpErrorCode.CIPHER, "cipher"),
            auth=_first(ours.auths, theirs.auths, ZrtpErrorCode.AUTH, "auth tag"),
            key_agreement=ka,
            sas=_first(ours.sas_types, theirs.sas_types, ZrtpErrorCode.SAS, "SAS type"),
        )

    def accept(self, commit: m.Commit) -> Choice:
        """The responder's check of a Commit: every algorithm must be one we offered (or a mandatory one)."""
        if name(commit.key_agreement) in NON_DH_MODES:
            # We never offer them; with no ZRTPSess or preshared key the peer must use DH (§5.9, 0x56).
            raise Abort(ZrtpErrorCode.NO_SHARED_SECRET, "preshared/multistream Commit: DH mode required")
        ours = self.supported()
        choice = Choice(
            hash=_offered(commit.hash, ours.hashes, "hash", ZrtpErrorCode.HASH),
            cipher=_offered(commit.cipher, ours.ciphers, "cipher", ZrtpErrorCode.CIPHER),
            auth=_offered(commit.auth, ours.auths, "auth", ZrtpErrorCode.AUTH),
            key_agreement=_offered(
                commit.key_agreement, ours.key_agreements, "ka", ZrtpErrorCode.KEY_AGREEMENT
            ),
            sas=_offered(commit.sas, ours.sas_types, "SAS type", ZrtpErrorCode.SAS),
        )
        if choice.key_agreement == "EC38" and choice.hash != "S384":
            raise Abort(ZrtpErrorCode.HASH, "EC38 needs the S384 hash (RFC 6189 §5.1.5)")
        return choice

    def supported(self) -> Supported:
        """What we accept: our lists, then the mandatory algorithms they leave out (§5.2)."""
        return _supported(self.hashes, self.ciphers, self.auths, self.key_agreements, self.sas_types)


@dataclass(frozen=True)
class Supported:
    """One side's algorithms of each kind, preferred first, with the mandatory ones (§5.1) at the end."""

    hashes: tuple[str, ...]
    ciphers: tuple[str, ...]
    auths: tuple[str, ...]
    key_agreements: tuple[str, ...]
    sas_types: tuple[str, ...]


def _supported(
    hashes: tuple[str, ...],
    ciphers: tuple[str, ...],
    auths: tuple[str, ...],
    key_agreements: tuple[str, ...],
    sas_types: tuple[str, ...],
) -> Supported:
    # Every endpoint implements these (§5.1.2-§5.1.6); a Hello that leaves one out has it implicitly at the
    # end of its list (§5.2), so a peer that lists only S384, say, still takes S256.
    return Supported(
        _plus(hashes, ("S256",)),
        _plus(ciphers, ("AES1",)),
        _plus(auths, ("HS80", "HS32")),
        _plus(key_agreements, ("DH3k",)),
        _plus(sas_types, ("B32",)),
    )


def _supported_by(hello: m.Hello) -> Supported:
    lists = (hello.hashes, hello.ciphers, hello.auths, hello.key_agreements, hello.sas_types)
    return _supported(*(tuple(map(name, values)) for values in lists))


def _plus(listed: tuple[str, ...], mandatory: tuple[str, ...]) -> tuple[str, ...]:
    return listed + tuple(alg for alg in mandatory if alg not in listed)


def _without_ec38(kas: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(ka for ka in kas if ka != "EC38")


def _first(ours: tuple[str, ...], theirs: tuple[str, ...], code: ZrtpErrorCode, what: str) -> str:
    for alg in ours:
        if alg in theirs:
            return alg
    raise Abort(code, f"no {what} in common")


def _offered(value: bytes, ours: tuple[str, ...], kind: str, code: ZrtpErrorCode) -> str:
    chosen = name(value)
    if chosen not in ours:
        raise Abort(code, f"{kind} {chosen!r} not offered")
    return chosen
