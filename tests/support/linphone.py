"""linphonec (Debian linphone-cli 5.1.65, Belledonne's bzrtp) as an independent ZRTP peer for the test bench.

One `Linphonec` is one headless linphonec process in a network namespace, driven over its stdin, reporting
from its console (stdout) and its debug log (`-l FILE -d 6`). Typical use::

    with Linphonec(lan[0], tmp_path / "a", play_wav=tone_a, record_wav=rec_a) as a, \\
         Linphonec(lan[1], tmp_path / "b", play_wav=tone_b, record_wav=rec_b) as b:
        since_b = b.mark()
        a.call(b.uri)
        sas_a, sas_b = a.wait_for_sas(), b.wait_for_sas(since=since_b)
        a.terminate()

Facts this module works around (all checked on this machine):
- linphonec needs `$HOME/.local/share/linphone` to exist and its config file to exist before it starts; each
  instance gets its own HOME, config (`-c`) and database paths, so instances never share state.
- Its real ZRTP cache is `$HOME/.linphone-zidcache` (sqlite; linphonec sets it over the `[storage]` default).
- With no default route in a namespace, liblinphone guesses 127.0.0.1 for SDP and Contact, and after ~5 s its
  network monitor declares the network DOWN and resets transports. So `[rtp] bind_address` and
  `[sip] bind_address` are set to the host's address and `[sip] auto_net_state_mon=0` (we never touch the
  namespace's routes).
- No sound card: `soundcard use files`, then `play X.wav` / `record Y.wav` before the call. The player takes
  16-bit PCM WAV at any rate and resamples; the recording is 16-bit mono at the codec's rate (48 kHz for Opus)
  and starts when the call's media starts (so it begins with silence until ZRTP is up). The WAV header is only
  final once the call has ended.
- ZRTP suites: `[sip] zrtp_key_agreements_suites`, `zrtp_sas_suites`, `zrtp_cipher_suites`,
  `zrtp_hash_suites`, `zrtp_auth_suites`, each a comma list of mediastreamer names
  (MS_ZRTP_KEY_AGREEMENT_X255, MS_ZRTP_SAS_B256...); the debug log confirms them with "Configured zrtp key
  agreement: '...'" when a call starts. An empty value breaks ZRTP (only Hellos are exchanged), so unset lists
  are left out of the config entirely.
  This build offers DH3k DH2k X255 X448 / AES1 AES3 / S256 S384 / HS32 HS80 / B32 B256 (no EC25/EC38).
- SAS on the console: "Call N is fully encrypted and auth token is 1gmz." (B32) or "...is Aztec:direction."
  (B256). The verified state is only in the debug log: "ZRTP secrets on: SAS is 1gmz previously verified yes
  on session" and "Authentication token is 1gmz(verified)", once per call when the secrets come up.
  `zrtp-set-verified` writes the cache (pvs) at once but is only reported from the next call on. A retained
  secret mismatch logs "Zrtp Event dispatched : cache mismatch" on both sides and clears the verified flag.
- It cannot accept incoming TLS; SIP here is UDP (or TCP with transport="tcp").
- media_encryption="none" does not make a plain-RTP peer: linphonec still joins ZRTP when the other side
  starts it in-band (checked: none <-> zrtp-mandatory ends with both showing the same SAS).
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, TypeVar

from tests.support.netns import Host
from tests.support.prereq import require_binary

MAX_LINE_CHARS = 8192  # linphonec's longest lines (codec lists) are ~300 chars; longer means a broken stream
MAX_LINES = 500_000  # per source; a 60 s call at -d 6 writes ~10k log lines
DEFAULT_TIMEOUT = 20.0

MediaEncryption = Literal["zrtp", "srtp", "dtls", "none"]
Source = Literal["console", "log"]
_T = TypeVar("_T")

# Short (RFC 6189) names this build of bzrtp offers, and the mediastreamer enum prefix for each config key.
KEY_AGREEMENTS = ("DH3k", "DH2k", "X255", "X448")
SAS_TYPES = ("B32", "B256")
CIPHERS = ("AES1", "AES3")
HASHES = ("S256", "S384")
AUTH_TAGS = ("HS32", "HS80")
_SUITE_KEYS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "key_agreements": ("zrtp_key_agreements_suites", "MS_ZRTP_KEY_AGREEMENT_", KEY_AGREEMENTS),
    "sas_types": ("zrtp_sas_suites", "MS_ZRTP_SAS_", SAS_TYPES),
    "ciphers": ("zrtp_cipher_suites", "MS_ZRTP_CIPHER_", CIPHERS),
    "hashes": ("zrtp_hash_suites", "MS_ZRTP_HASH_", HASHES),
    "auth_tags": ("zrtp_auth_suites", "MS_ZRTP_AUTHTAG_", AUTH_TAGS),
}

# bzrtp's display names (in "ZRTP algo used during negotiation") -> RFC 6189 short names.
_ALGO_NAMES = {
    "AES-128": "AES1", "AES-192": "AES2", "AES-256": "AES3",
    "DHM-2048": "DH2k", "DHM-3072": "DH3k", "ECDH-255": "X255", "ECDH-448": "X448",
    "ECDH-256": "EC25", "ECDH-384": "EC38", "ECDH-521": "EC52", "MultiStream": "Mult", "Prsh": "Prsh",
    "SHA-256": "S256", "SHA-384": "S384", "SHA3-256": "N256", "SHA3-384": "N384",
    "HMAC-SHA1-32": "HS32", "HMAC-SHA1-80": "HS80",
    "Base32": "B32", "PGP-WordList": "B256",
}  # fmt: skip


class LinphoneError(RuntimeError):
    """linphonec did not start, died, or an expected report never came."""


class LinphoneParseError(ValueError):
    """A line that claims to be a linphonec report is malformed or over the size limit."""


# ----------------------------------------------------------------------------------------------------------
# Parsers: pure functions over one line. Each returns None when the line is not its kind of report and raises
# LinphoneParseError when it is one but malformed.

# B32 (bzrtp's lowercase alphabet) or B256 (two PGP words).
_SAS_RE = re.compile(r"^(?:[a-z0-9]{4}|[A-Za-z]{2,12}:[A-Za-z]{2,12})$")
_CONSOLE_SAS_RE = re.compile(r"Call (\d{1,6}) is (fully|not fully) encrypted and auth token is (.*)\.\s*$")
_LOG_SECRETS_RE = re.compile(r"ZRTP secrets on: SAS is (.*) previously verified (\S*) on session")
_LOG_TOKEN_RE = re.compile(r"liblinphone-message-Authentication token is (.*)\((\w*)\)\s*$")
_LOG_ALGO_RE = re.compile(
    r"ZRTP algo used during negotiation: Cipher: (.*) - KeyAgreement: (.*) - Hash: (.*) - AuthTag: (.*)"
    r" - Sas Rendering: (.*?)\s*$"
)
_LOG_TIME_RE = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}):(\d{3}) ")


def _check_len(line: str) -> None:
    if len(line) > MAX_LINE_CHARS:
        raise LinphoneParseError(f"line of {len(line)} chars is over the {MAX_LINE_CHARS} limit")


def _check_sas(sas: str) -> str:
    if not _SAS_RE.match(sas):
        raise LinphoneParseError(f"not a B32 or B256 SAS: {sas[:40]!r}")
    return sas


@dataclass(frozen=True)
class ConsoleSas:
    """'Call N is [not ]fully encrypted and auth token is SAS.' from linphonec's console."""

    call_id: int
    sas: str
    fully_encrypted: bool


def parse_console_sas(line: str) -> ConsoleSas | None:
    _check_len(line)
    m = _CONSOLE_SAS_RE.search(line)
    if m is None:
        return None
    return ConsoleSas(int(m.group(1)), _check_sas(m.group(3)), m.group(2) == "fully")


@dataclass(frozen=True)
class LogSecrets:
    """'ZRTP secrets on: SAS is X previously verified yes|no' from the debug log (once per call)."""

    sas: str
    previously_verified: bool


def parse_log_secrets(line: str) -> LogSecrets | None:
    _check_len(line)
    m = _LOG_SECRETS_RE.search(line)
    if m is None:
        return None
    if m.group(2) not in ("yes", "no"):
        raise LinphoneParseError(f"previously verified is neither yes nor no: {m.group(2)[:20]!r}")
    return LogSecrets(_check_sas(m.group(1)), m.group(2) == "yes")


@dataclass(frozen=True)
class LogToken:
    """'Authentication token is X(verified|unverified)' from the debug log (once per call)."""

    sas: str
    verified: bool


def parse_log_token(line: str) -> LogToken | None:
    _check_len(line)
    m = _LOG_TOKEN_RE.search(line)
    if m is None:
        return None
    if m.group(2) not in ("verified", "unverified"):
        raise LinphoneParseError(f"unknown verification state {m.group(2)[:20]!r}")
    return LogToken(_check_sas(m.group(1)), m.group(2) == "verified")


@dataclass(frozen=True)
class Negotiated:
    """The algorithms bzrtp chose, as RFC 6189 short names (e.g. key_agreement='X255', sas_type='B256')."""

    cipher: str
    key_agreement: str
    hash: str
    auth_tag: str
    sas_type: str


def parse_log_algorithms(line: str) -> Negotiated | None:
    _check_len(line)
    m = _LOG_ALGO_RE.search(line)
    if m is None:
        return None
    names: list[str] = []
    for raw in m.groups():
        short = _ALGO_NAMES.get(raw)
        if short is None:
            raise LinphoneParseError(f"unknown ZRTP algorithm name {raw[:40]!r}")
        names.append(short)
    return Negotiated(*names)


def parse_log_time(line: str) -> datetime | None:
    """The wall-clock time at the start of a debug-log line ('2026-11-23 17:45:04:321 ...'), in local time."""
    _check_len(line)
    m = _LOG_TIME_RE.match(line)
    if m is None:
        return None
    try:
        stamp = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")
    except ValueError as exc:
        raise LinphoneParseError(f"bad log timestamp {m.group(0)!r}") from exc
    return stamp.replace(microsecond=int(m.group(2)) * 1000)


# ----------------------------------------------------------------------------------------------------------
# Configuration


def suite_values(kind: str, names: Sequence[str]) -> str:
    """The linphonerc value of one ZRTP suite list: ('X255', 'DH3k') -> 'MS_ZRTP_KEY_AGREEMENT_X255, ...'."""
    _, prefix, allowed = _SUITE_KEYS[kind]
    if not names:
        raise ValueError(f"{kind}: an empty list would disable ZRTP; pass None for linphone's default")
    for name in names:
        if name not in allowed:
            raise ValueError(f"{kind}: {name!r} is not offered by this linphonec (has {', '.join(allowed)})")
    return ", ".join(prefix + name.upper() for name in names)


@dataclass(frozen=True)
class LinphoneConfig:
    """Everything that goes into one instance's linphonerc."""

    home: Path
    ip: str
    user: str = "linphone"
    sip_port: int = 5060
    transport: Literal["udp", "tcp"] = "udp"
    rtp_port: int | tuple[int, int] = 7078
    media_encryption: MediaEncryption = "zrtp"
    encryption_mandatory: bool = True
    key_agreements: Sequence[str] | None = None
    sas_types: Sequence[str] | None = None
    ciphers: Sequence[str] | None = None
    hashes: Sequence[str] | None = None
    auth_tags: Sequence[str] | None = None
    display_name: str | None = None
    # A server account: REGISTER through `proxy` (a SIP URI; transport=tls verifies it against `root_ca`).
    proxy: str | None = None
    domain: str | None = None  # of its identity, sip:user@domain
    password: str | None = None
    realm: str | None = None
    root_ca: Path | None = None

    def render(self) -> str:
        if self.display_name is not None and not re.fullmatch(r"[\w .'-]{1,64}", self.display_name):
            raise ValueError(f"display name {self.display_name[:70]!r}: 1-64 letters, digits, space . ' -")
        udp, tcp = (self.sip_port, 0) if self.transport == "udp" else (0, self.sip_port)
        rtp = self.rtp_port if isinstance(self.rtp_port, int) else f"{self.rtp_port[0]}-{self.rtp_port[1]}"
        sip = [
            f"contact={self.identity}",
            "guess_hostname=0",
            f"bind_address={self.ip}",
            "auto_net_state_mon=0",
            f"sip_port={udp}",
            f"sip_tcp_port={tcp}",
            "sip_tls_port=0",
            f"media_encryption={self.media_encryption}",
            f"media_encryption_mandatory={int(self.encryption_mandatory)}",
            "inc_timeout=60",
        ]
        if self.proxy is not None:
            if "transport=tls" in self.proxy.lower():
                sip[sip.index("sip_tls_port=0")] = "sip_tls_port=-1"  # a random local port: TLS client only
            # Without network monitoring it never thinks the network is up, so it would never register.
            sip += ["register_only_when_network_is_up=0", "default_proxy=0", "verify_server_certs=1",
                    "verify_server_cn=1"]  # fmt: skip
            if self.root_ca is not None:
                sip.append(f"root_ca={self.root_ca}")
        for kind, (key, _, _) in _SUITE_KEYS.items():
            names: Sequence[str] | None = getattr(self, kind)
            if names is not None:
                sip.append(f"{key}={suite_values(kind, names)}")
        sections = {
            "sip": sip,
            "rtp": [f"audio_rtp_port={rtp}", f"bind_address={self.ip}"],
            "sound": ["echocancellation=0"],
            "video": ["capture=0", "display=0"],
            "storage": [
                f"uri={self.home / 'linphone.db'}",
                f"call_logs_db_uri={self.home / 'call-history.db'}",
                f"zrtp_secrets_db_uri={self.home / 'zrtp-secrets.db'}",
            ],
        }
        if self.proxy is not None:
            sections["proxy_0"] = [f"reg_proxy=<{self.proxy}>", f"reg_identity=sip:{self.user}@{self.domain}",
                                   "reg_expires=600", "reg_sendregister=1", "publish=0"]  # fmt: skip
            sections["auth_info_0"] = [
                f"username={self.user}", f"passwd={self.password}", f"realm={self.realm}"
            ]  # fmt: skip
        return "".join(f"[{name}]\n" + "".join(f"{line}\n" for line in lines) + "\n"
                       for name, lines in sections.items())

    @property
    def identity(self) -> str:
        """Its SIP identity (From), e.g. '"Alice" <sip:alice@10.0.0.1>' or 'sip:alice@10.0.0.1'."""
        address = f"sip:{self.user}@{self.ip}"
        return address if self.display_name is None else f'"{self.display_name}" <{address}>'


# ----------------------------------------------------------------------------------------------------------
# The ZRTP cache, read-only


@dataclass(frozen=True)
class CachePeer:
    """One peer in linphonec's ZRTP cache. Secrets themselves are never read out, only whether they exist."""

    zid: str  # 24 hex digits
    self_uri: str
    peer_uri: str
    verified: bool  # the pvs flag, set by zrtp-set-verified
    has_rs1: bool
    has_rs2: bool


def read_zid_cache(path: Path) -> tuple[str | None, list[CachePeer]]:
    """(own ZID, peers) from a bzrtp sqlite cache; (None, []) if it does not exist yet."""
    if not path.exists():
        return None, []
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
        rows = db.execute(
            "SELECT z.zid, z.selfuri, z.peeruri, s.pvs, s.rs1 IS NOT NULL, s.rs2 IS NOT NULL"
            " FROM ziduri z LEFT JOIN zrtp s ON s.zuid = z.zuid"
        ).fetchall()
    own: str | None = None
    peers: list[CachePeer] = []
    for zid, self_uri, peer_uri, pvs, rs1, rs2 in rows:
        if peer_uri == "self":
            own = bytes(zid).hex()
        else:
            peers.append(CachePeer(bytes(zid).hex(), self_uri, peer_uri, bool(pvs and pvs[0] == 1),
                                   bool(rs1), bool(rs2)))
    return own, peers


def corrupt_retained_secrets(path: Path, peer_zid: str) -> None:
    """Replace rs1 with random bytes and drop rs2 for one peer in a bzrtp cache.

    The next call to that peer then finds no shared retained secret, as with a peer that lost sync or an
    impostor that knows the ZID: bzrtp logs a cache mismatch and clears the verified flag. Safe while
    linphonec runs (bzrtp reads the cache when a call's ZRTP starts).
    """
    with contextlib.closing(sqlite3.connect(path, timeout=5)) as db, db:
        changed = db.execute(
            "UPDATE zrtp SET rs1 = ?, rs2 = NULL WHERE zuid IN (SELECT zuid FROM ziduri WHERE zid = ?)",
            (os.urandom(32), bytes.fromhex(peer_zid)),
        ).rowcount
    if changed != 1:
        raise LinphoneError(f"no retained secrets for ZID {peer_zid} in {path}")


# ----------------------------------------------------------------------------------------------------------
# Line sources


class _Lines:
    """Lines from one source, appended by a reader thread; waiters block on a condition."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._cond = threading.Condition()
        self.truncated = 0
        self.dropped = 0

    def append(self, line: str) -> None:
        if len(line) > MAX_LINE_CHARS:
            line = line[:MAX_LINE_CHARS]
            self.truncated += 1
        with self._cond:
            if len(self._lines) >= MAX_LINES:
                self.dropped += 1
                return
            self._lines.append(line)
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._lines)

    def snapshot(self, start: int = 0) -> list[str]:
        with self._cond:
            return self._lines[start:]

    def wait_new(self, seen: int, timeout: float) -> None:
        with self._cond:
            if len(self._lines) <= seen:
                self._cond.wait(timeout)


@dataclass(frozen=True)
class Mark:
    """A position in both sources: wait_for(..., since=mark) only looks at lines that came after it."""

    console: int
    log: int


_CALL_START_RE = re.compile(
    r"(?:Establishing call id to|Receiving new incoming call from) .+, assigned id \d+"
)
# Peers are printed as linphone shows them, which may be '"Display Name" <sip:...>': match them with .+
_CALL_FAILED_RE = re.compile(r"Call \d+ (?:with|to) .+? (?:error\.|ended \()")
_CALL_CONNECTED_RE = re.compile(r"Call \d+ with .+ connected\.")
_CALL_ENDED_RE = re.compile(r"Call \d+ with .+ ended \((.*)\)\.")
_ZRTP_START_RE = re.compile(r"Creating ZRTP engine on rtp session")
LOG_CACHE_MISMATCH = re.compile(r"Zrtp Event dispatched : cache mismatch")  # bzrtp: rs1/rs2 did not match
LOG_HELLO_HASH_MISMATCH = re.compile(r"ZRTP hash mismatch")  # Hello vs the SDP's a=zrtp-hash
_LISTENING_RE = re.compile(r"Creating listening point \S+ on \[sip:\S+;transport=(?:UDP|TCP)\]")


class _CallFailure:
    """Predicate over console lines: has the call that started after the mark failed or ended?

    An end line before any start line belongs to the previous call (its "ended" can trail the mark), so it
    does not count.
    """

    def __init__(self) -> None:
        self.started = False

    def __call__(self, line: str) -> bool:
        if _CALL_START_RE.search(line) or _CALL_CONNECTED_RE.search(line):
            self.started = True
            return False
        return self.started and _CALL_FAILED_RE.search(line) is not None


class Linphonec:
    """One linphonec in a namespace. A context manager: stop() always runs and always cleans up.

    Arguments: `host` (a netns Host; linphonec binds its address), `home_dir` (created; holds HOME,
    linphonerc, databases, the ZRTP cache and the debug log), `sip_port`, `transport` ("udp" or "tcp"),
    `rtp_port` (a port or an inclusive (min, max) range, so captures can filter on it), `media_encryption`
    ("zrtp", "srtp", "dtls", "none"; mandatory unless encryption_mandatory=False), ZRTP suite lists by
    RFC 6189 short names (`key_agreements` e.g. ["X255", "DH3k"], `sas_types` ["B256"], `ciphers`, `hashes`,
    `auth_tags`; None keeps linphone's default: S256 / AES1 AES3 / HS80 HS32 / DH3k Mult / B32), `play_wav`
    (what it sends), `record_wav` (what it receives), `auto_answer`, `user` (the user part of its identity and
    of `uri`), `display_name` (shown by the far end; other linphonecs print it as '"Name" <sip:...>').
    """

    def __init__(
        self,
        host: Host,
        home_dir: Path,
        sip_port: int = 5060,
        *,
        user: str = "linphone",
        display_name: str | None = None,
        transport: Literal["udp", "tcp"] = "udp",
        rtp_port: int | tuple[int, int] = 7078,
        media_encryption: MediaEncryption = "zrtp",
        encryption_mandatory: bool = True,
        key_agreements: Sequence[str] | None = None,
        sas_types: Sequence[str] | None = None,
        ciphers: Sequence[str] | None = None,
        hashes: Sequence[str] | None = None,
        auth_tags: Sequence[str] | None = None,
        play_wav: Path | None = None,
        record_wav: Path | None = None,
        auto_answer: bool = True,
        debug_level: int = 6,
        proxy: str | None = None,
        domain: str | None = None,
        password: str | None = None,
        realm: str | None = None,
        root_ca: Path | None = None,
    ) -> None:
        self.host = host
        self.home = Path(home_dir).resolve()
        self.config = LinphoneConfig(
            self.home, host.ip, user, sip_port, transport, rtp_port, media_encryption, encryption_mandatory,
            key_agreements, sas_types, ciphers, hashes, auth_tags, display_name,
            proxy=proxy, domain=domain, password=password, realm=realm, root_ca=root_ca,
        )
        self.config.render()  # reject bad suite names now, not in a half-started process
        self.play_wav = play_wav
        self.record_wav = record_wav
        self.auto_answer = auto_answer
        self.debug_level = debug_level
        self.console = _Lines()
        self.log = _Lines()
        self._proc: subprocess.Popen[str] | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._write_lock = threading.Lock()
        self._auto_mark = Mark(0, 0)

    # -- where things are ------------------------------------------------------------------------------------

    @property
    def uri(self) -> str:
        """The SIP URI that reaches this instance."""
        c = self.config
        suffix = ";transport=tcp" if c.transport == "tcp" else ""
        return f"sip:{c.user}@{c.ip}:{c.sip_port}{suffix}"

    @property
    def config_path(self) -> Path:
        return self.home / "linphonerc"

    @property
    def log_path(self) -> Path:
        """linphonec's debug log: read it when a test fails."""
        return self.home / "linphonec.log"

    @property
    def zid_cache_path(self) -> Path:
        return self.home / ".linphone-zidcache"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self, timeout: float = DEFAULT_TIMEOUT) -> Linphonec:
        """Write the config, start linphonec, switch to WAV files, set auto-answer, wait until SIP listens."""
        require_binary("linphonec", "ip")
        if self._proc is not None:
            raise LinphoneError("already started")
        # linphonec takes any path silently and only fails inside the call: check here, loudly.
        if self.play_wav is not None and not Path(self.play_wav).is_file():
            raise LinphoneError(f"play_wav {self.play_wav} does not exist")
        if self.record_wav is not None and not Path(self.record_wav).parent.is_dir():
            raise LinphoneError(f"record_wav {self.record_wav}: its folder does not exist")
        (self.home / ".local" / "share" / "linphone").mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config.render())
        self.log_path.write_text("")  # a reused home must not replay an old log
        env = {
            "HOME": str(self.home),
            "XDG_DATA_HOME": str(self.home / ".local" / "share"),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            # Files replace the sound card; keep it from finding anyone's PulseAudio server.
            "PULSE_SERVER": f"unix:{self.home / 'no-pulse'}",
        }
        argv = ["linphonec", "-c", str(self.config_path), "-d", str(self.debug_level),
                "-l", str(self.log_path)]
        self._proc = self.host.popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1, env=env,
                                     cwd=self.home, errors="replace")
        assert self._proc.stdout is not None
        self._spawn(self._read_console, self._proc.stdout)
        self._spawn(self._tail_log)
        try:
            self.wait_for(_LISTENING_RE, timeout, source="log")
            self.command("soundcard use files", expect=r"Using wav files instead of soundcard",
                         timeout=timeout)
            if self.play_wav is not None:
                self.command(f"play {Path(self.play_wav).resolve()}")
            if self.record_wav is not None:
                self.command(f"record {Path(self.record_wav).resolve()}")
            state = "enable" if self.auto_answer else "disable"
            self.command(f"autoanswer {state}", expect=rf"Auto answer {state}d", timeout=timeout)
        except BaseException:
            self.stop()
            raise
        self._auto_mark = self.mark()
        return self

    def stop(self, timeout: float = 5.0) -> int | None:
        """Quit linphonec (politely, then SIGTERM, then SIGKILL); join the readers. Safe to call twice."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(OSError, ValueError, LinphoneError):
                self._write("quit")
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(2)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        self._stopping.set()
        for t in self._threads:
            t.join(5)
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        if proc.stdout is not None:
            proc.stdout.close()
        return proc.returncode

    def __enter__(self) -> Linphonec:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- commands --------------------------------------------------------------------------------------------

    def command(self, text: str, expect: str | re.Pattern[str] | None = None,
                timeout: float = DEFAULT_TIMEOUT) -> re.Match[str] | None:
        """Send one console command; if `expect` is given, wait for it on the console after the command."""
        since = self.mark()
        self._write(text)
        return None if expect is None else self.wait_for(expect, timeout, since=since)

    def call(self, uri: str, timeout: float = DEFAULT_TIMEOUT) -> int:
        """Place a call; return linphonec's call id once it has accepted the command."""
        self._auto_mark = self.mark()
        m = self.command(f"call {uri}", expect=r"Establishing call id to .+, assigned id (\d+)",
                         timeout=timeout)
        assert m is not None
        return int(m.group(1))

    def answer(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        """Answer the ringing call (waits for it to arrive first); return its call id."""
        m = self.wait_for(r"Receiving new incoming call from .+, assigned id (\d+)", timeout,
                          since=self._auto_mark)
        self._auto_mark = self.mark()
        self.command("answer", expect=rf"Call {m.group(1)} with .+ connected\.", timeout=timeout)
        return int(m.group(1))

    def wait_registered(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """The account given by `proxy` is registered (liblinphone's account state, from the log)."""
        self.wait_for(r"to \[LinphoneRegistrationOk\]", timeout, source="log")

    def terminate(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Hang up the current call and wait until linphonec reports it ended."""
        self.command("terminate", expect=_CALL_ENDED_RE, timeout=timeout)
        self._auto_mark = self.mark()

    def wait_for_end(self, timeout: float = DEFAULT_TIMEOUT, since: Mark | None = None) -> str:
        """Wait until a call ends (the far end hung up); return linphonec's reason ("No error"...)."""
        m = self.wait_for(_CALL_ENDED_RE, timeout, since=since or self._auto_mark)
        self._auto_mark = self.mark()
        return m.group(1)

    def set_sas_verified(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Mark the current call's SAS verified in linphone's cache (reported so from the next call on)."""
        self.command("zrtp-set-verified", expect=_CONSOLE_SAS_RE, timeout=timeout)

    def set_sas_unverified(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.command("zrtp-set-unverified", expect=_CONSOLE_SAS_RE, timeout=timeout)

    # -- observing -------------------------------------------------------------------------------------------

    def mark(self) -> Mark:
        return Mark(len(self.console), len(self.log))

    def wait_for(self, pattern: str | re.Pattern[str], timeout: float = DEFAULT_TIMEOUT, *,
                 source: Source = "console", since: Mark | None = None,
                 fail_on: str | re.Pattern[str] | Callable[[str], bool] | None = None) -> re.Match[str]:
        """Wait for a line matching `pattern` in `source` after `since` (default: from the start).

        Raises LinphoneError when the time runs out, when linphonec exits first, or when a line matching
        `fail_on` (a regex, or a predicate called on each line in order) comes first; the message carries the
        console tail and the log path.
        """
        regex = re.compile(pattern)
        bad = re.compile(fail_on).search if isinstance(fail_on, str | re.Pattern) else fail_on
        lines = self.console if source == "console" else self.log
        pos = 0 if since is None else (since.console if source == "console" else since.log)
        deadline = time.monotonic() + timeout
        while True:
            # Decided before the scan, so the lines a dying process wrote last are still looked at.
            exited = not self.running and self._readers_done()
            for line in lines.snapshot(pos):
                pos += 1
                m = regex.search(line)
                if m is not None:
                    return m
                if bad is not None and bad(line):
                    raise self._error(f"{line.strip()!r} came before {regex.pattern!r}")
            if exited:
                raise self._error(f"linphonec exited (rc={self._rc()}) before {regex.pattern!r}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._error(f"no {regex.pattern!r} on the {source} within {timeout:.1f} s")
            lines.wait_new(pos, min(left, 0.1))

    def wait_for_sas(self, timeout: float = DEFAULT_TIMEOUT, since: Mark | None = None) -> str:
        """Wait for the console's SAS report and return the SAS ('1gmz' or 'Aztec:direction').

        `since` defaults to the last call()/answer()/terminate()/start(). On the side that auto-answers, take
        a mark() before the other side calls and pass it, so a previous call's SAS can never be returned.
        Also waits for the debug log's matching report, so negotiated(), verified() and cache_mismatch() are
        ready when this returns (the log is tailed separately and can trail the console).
        """
        since = since or self._auto_mark
        deadline = time.monotonic() + timeout
        m = self.wait_for(_CONSOLE_SAS_RE, timeout, since=since, fail_on=_CallFailure())
        report = parse_console_sas(m.string)
        assert report is not None
        self.wait_for(_LOG_TOKEN_RE, max(deadline - time.monotonic(), 5.0), source="log", since=since)
        return report.sas

    def wait_for_secure(self, timeout: float = DEFAULT_TIMEOUT, since: Mark | None = None) -> LogToken:
        """Wait until the debug log reports this call's SAS and its verified state."""
        m = self.wait_for(_LOG_TOKEN_RE, timeout, source="log", since=since or self._auto_mark)
        token = parse_log_token(m.string)
        assert token is not None
        return token

    def sas(self) -> str | None:
        """The SAS the console reported for the newest call, or None if that call has none (yet)."""
        found: str | None = None
        for line in self.console.snapshot():
            if _CALL_START_RE.search(line):
                found = None
            report = parse_console_sas(line)
            if report is not None:
                found = report.sas
        return found

    def verified(self) -> bool | None:
        """Whether linphone's cache had this peer's SAS verified when the newest call went secure.

        From the debug log ("Authentication token is X(verified)"); None until the newest call is secure.
        set_sas_verified() shows here from the next call on; read cache_peers() to see it at once.
        """
        token = self._newest_call_log(parse_log_token)
        return None if token is None else token.verified

    def negotiated(self) -> Negotiated | None:
        """The ZRTP algorithms of the newest call, e.g. key_agreement='X255' (ready after wait_for_sas())."""
        return self._newest_call_log(parse_log_algorithms)

    def previously_verified(self) -> bool | None:
        secrets = self._newest_call_log(parse_log_secrets)
        return None if secrets is None else secrets.previously_verified

    def cache_mismatch(self) -> bool:
        """Whether bzrtp reported a retained-secret mismatch in the newest call (verified is then cleared)."""
        return self._newest_call_log(lambda line: True if LOG_CACHE_MISMATCH.search(line) else None) is True

    def corrupt_retained_secrets(self, peer_zid: str) -> None:
        """Make this instance hold secrets `peer_zid` does not have (see corrupt_retained_secrets())."""
        corrupt_retained_secrets(self.zid_cache_path, peer_zid)

    def zid(self) -> str | None:
        """This instance's own ZID (hex) from its cache, once it has made one."""
        return read_zid_cache(self.zid_cache_path)[0]

    def cache_peers(self) -> list[CachePeer]:
        return read_zid_cache(self.zid_cache_path)[1]

    def log_time(self, pattern: str | re.Pattern[str], since: Mark | None = None,
                 timeout: float = 5.0) -> datetime:
        """The debug-log time (linphone's clock, ms) of the first line matching `pattern` after `since`.

        For timings: the log is written when things happen, while the console may lag behind a pipe.
        """
        m = self.wait_for(pattern, timeout, source="log", since=since)
        stamp = parse_log_time(m.string)
        if stamp is None:
            raise self._error(f"log line has no timestamp: {m.string[:80]!r}")
        return stamp

    # -- internals -------------------------------------------------------------------------------------------

    def _newest_call_log(self, parse: Callable[[str], _T | None]) -> _T | None:
        found: _T | None = None
        for line in self.log.snapshot():
            if _ZRTP_START_RE.search(line):
                found = None
            elif (value := parse(line)) is not None:
                found = value
        return found

    def _write(self, text: str) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.poll() is not None:
            raise LinphoneError(f"linphonec is not running (command {text!r})")
        with self._write_lock:
            proc.stdin.write(text + "\n")
            proc.stdin.flush()

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        t = threading.Thread(target=target, args=args, daemon=True, name=f"linphonec-{self.host.netns}")
        t.start()
        self._threads.append(t)

    def _read_console(self, stream: IO[str]) -> None:
        with contextlib.suppress(ValueError, OSError):
            for line in stream:
                self.console.append(line.rstrip("\n"))

    def _tail_log(self) -> None:
        # linphonec writes its log unbuffered enough to follow by polling; a partial last line waits for more.
        partial = ""
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            while True:
                chunk = f.read(65536)
                if chunk:
                    partial += chunk
                    *complete, partial = partial.split("\n")
                    for line in complete:
                        self.log.append(line)
                    if len(partial) > MAX_LINE_CHARS:
                        self.log.append(partial)
                        partial = ""
                    continue
                if self._stopping.is_set():
                    break
                time.sleep(0.02)
        if partial:
            self.log.append(partial)

    def _readers_done(self) -> bool:
        # The console reader ends at EOF; give the log tail a moment to catch the last lines.
        return not self._threads[0].is_alive() if self._threads else True

    def _rc(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def _error(self, what: str) -> LinphoneError:
        tail = "\n".join(self.console.snapshot()[-15:])
        where = f"linphonec on {self.host.netns}"
        return LinphoneError(f"{where}: {what}\nlog: {self.log_path}\nconsole tail:\n{tail}")


class LinphonecFactory:
    """Makes Linphonec instances under one base directory and stops them all at close (the pytest fixture)."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.instances: list[Linphonec] = []

    def __call__(self, host: Host, name: str, **kw: Any) -> Linphonec:
        """Start a Linphonec named `name` (its home is base_dir/name); kw as for Linphonec."""
        lp = Linphonec(host, self.base_dir / name, **kw)
        self.instances.append(lp)
        return lp.start()

    def close(self) -> None:
        for lp in reversed(self.instances):
            with contextlib.suppress(Exception):
                lp.stop()


@contextlib.contextmanager
def linphonec_factory(base_dir: Path) -> Iterator[LinphonecFactory]:
    factory = LinphonecFactory(base_dir)
    try:
        yield factory
    finally:
        factory.close()
