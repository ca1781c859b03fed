"""Kamailio as the test bench's SIP server: a TLS (and UDP) registrar and record-routing proxy.

No database: users and passwords come from the constructor and are put into an htable when Kamailio starts;
registrations live in memory (usrloc db_mode 0). Config and tls.cfg are generated per run into a private
directory, Kamailio runs in the foreground of one namespace with its own runtime dir and pid file, and its
stderr log stays in that directory for debugging.

Routing keeps every request on the connection the user registered or called from (nathelper's contact alias),
so user agents never need to accept incoming TLS connections.

`sdp_edits` makes it a tampering server: textops substitutions ("/regex/replacement/flags") applied to the
SDP of new INVITEs (`offer`) and of their replies (`answer`), e.g. to point media at a man in the middle.

`own_users_only=True` makes it a stricter, common PBX setup: a new request must come From the domain itself
(sip:user@realm, else 403), and every INVITE is challenged and logged ("zcall-challenge"/"zcall-accepted").
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from tests.support.netns import Host
from tests.support.pki import CertificateAuthority, Issued
from tests.support.prereq import require_binary

_MODULES = (
    "tls", "tm", "tmx", "sl", "rr", "pv", "maxfwd", "textops", "siputils", "xlog", "sanity",
    "usrloc", "registrar", "auth", "htable", "nathelper",
)
# User names and passwords go into the generated config verbatim: only characters that need no quoting.
_SAFE = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True)
class SdpEdits:
    """textops subst expressions for offers (new INVITEs) and answers (their replies)."""

    offer: tuple[str, ...] = ()
    answer: tuple[str, ...] = ()

    def lines(self, which: str) -> str:
        edits = self.offer if which == "offer" else self.answer
        if not edits:
            return ""
        calls = "".join(f"        subst_body('{edit}');\n" for edit in edits)
        return f'    if (has_body("application/sdp")) {{\n{calls}    }}\n'


class KamailioError(RuntimeError):
    """Kamailio did not start, or stopped unexpectedly."""


def _config(
    host: Host, users: dict[str, str], udp_port: int, tls_port: int, realm: str, rundir: Path,
    own_users_only: bool = False, sdp_edits: SdpEdits | None = None,
) -> str:  # fmt: skip
    edits = sdp_edits or SdpEdits()
    for name, password in users.items():
        if not _SAFE.fullmatch(name) or not _SAFE.fullmatch(password):
            raise ValueError(f"user {name!r}: names and passwords must match {_SAFE.pattern}")
    loads = "\n".join(f'loadmodule "{name}.so"' for name in _MODULES)
    fill = "\n".join(f'    $sht(users=>{name}) = "{password}";' for name, password in users.items())
    own_domain = (
        '    if (!from_uri==myself) {\n'
        '        xlog("L_NOTICE", "zcall-foreign $rm from $fu\\n");\n'
        '        sl_send_reply("403", "Not from this domain");\n'
        '        exit;\n'
        '    }\n'
        if own_users_only else ""
    )  # fmt: skip
    # From URIs carry no port: the domain is ours on any port (an alias with a port matches only that one).
    any_port = f"alias={realm}\n" if own_users_only else ""
    return f"""#!KAMAILIO
debug=2
log_stderror=yes
memdbg=5
memlog=5
children=2
tcp_children=2
auto_aliases=no
listen=udp:{host.ip}:{udp_port}
listen=tls:{host.ip}:{tls_port}
alias={host.ip}:{udp_port}
alias={host.ip}:{tls_port}
alias={realm}:{tls_port}
{any_port}enable_tls=yes
tcp_connection_lifetime=3605
tcp_accept_no_cl=yes
dns=no
rev_dns=no
use_dns_cache=no

mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
{loads}

modparam("tls", "config", "{rundir}/tls.cfg")
modparam("htable", "htable", "users=>size=4;autoexpire=0;")
modparam("usrloc", "db_mode", 0)
modparam("registrar", "received_avp", "$avp(RECEIVED)")
modparam("nathelper", "received_avp", "$avp(RECEIVED)")
modparam("rr", "enable_full_lr", 1)
modparam("rr", "append_fromtag", 1)

event_route[htable:mod-init] {{
{fill}
}}

request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (!sanity_check("1511", "7")) {{ exit; }}
    if (is_method("CANCEL")) {{
        if (t_check_trans()) {{ t_relay(); }}
        exit;
    }}
    if (has_totag()) {{ route(WITHINDLG); exit; }}
    t_check_trans();
    if (is_method("REGISTER")) {{ route(REGISTRAR); exit; }}
    # Everything else out of dialog must come from a known user.
{own_domain}    if (!pv_auth_check("{realm}", "$sht(users=>$fU)", "0", "1")) {{
        xlog("L_NOTICE", "zcall-challenge $rm from $fu\n");
        auth_challenge("{realm}", "1");  # 1: qop=auth, which zcall requires
        exit;
    }}
    xlog("L_NOTICE", "zcall-accepted $rm from $fu\n");
    consume_credentials();
    if (is_method("INVITE|SUBSCRIBE|REFER")) {{ record_route(); }}
    # Replies and in-dialog requests must find the caller on the connection it used.
    set_contact_alias();
    if (!lookup("location")) {{ sl_send_reply("404", "Not Found"); exit; }}
{edits.lines("offer")}    route(RELAY);
}}

route[REGISTRAR] {{
    if (!pv_auth_check("{realm}", "$sht(users=>$tU)", "0", "1")) {{
        auth_challenge("{realm}", "1");  # 1: qop=auth, which zcall requires
        exit;
    }}
    consume_credentials();
    # Reach the user later on the connection it registered from, whatever its Contact says.
    fix_nated_register();
    if (!save("location")) {{ sl_reply_error(); }}
    exit;
}}

route[WITHINDLG] {{
    if (loose_route()) {{
        handle_ruri_alias();
        if (is_method("INVITE|UPDATE")) {{ set_contact_alias(); }}
        route(RELAY);
        exit;
    }}
    if (is_method("ACK")) {{
        if (t_check_trans()) {{ t_relay(); }}
        exit;
    }}
    sl_send_reply("404", "Not here");
    exit;
}}

route[RELAY] {{
    if (is_method("INVITE|UPDATE")) {{ t_on_reply("NATREPLY"); }}
    if (!t_relay()) {{ sl_reply_error(); }}
    exit;
}}

onreply_route[NATREPLY] {{
    if (is_present_hf("Contact")) {{ set_contact_alias(); }}
{edits.lines("answer")}}}
"""


def _tls_config(cert: Path, key: Path, ca: Path) -> str:
    # The bench tests clients that check the server; Kamailio itself does not ask for client certificates.
    return f"""[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
private_key = {key}
certificate = {cert}
ca_list = {ca}

[client:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
"""


class Kamailio:
    """Run Kamailio in `host`'s namespace; use as a context manager."""

    def __init__(
        self,
        host: Host,
        users: dict[str, str],
        *,
        cert: Path,
        key: Path,
        ca: Path,
        udp_port: int = 5060,
        tls_port: int = 5061,
        realm: str = "zcall.test",
        workdir: Path | None = None,
        start_timeout: float = 10.0,
        quickack: bool = False,
        own_users_only: bool = False,
        sdp_edits: SdpEdits | None = None,
    ) -> None:
        require_binary("kamailio")
        self.host = host
        self.users = dict(users)
        self.udp_port = udp_port
        self.tls_port = tls_port
        self.realm = realm
        self.ca = ca
        self.start_timeout = start_timeout
        self.quickack = quickack
        self._own_dir = workdir is None
        self.dir = Path(tempfile.mkdtemp(prefix="kamailio-")) if workdir is None else workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.dir / "kamailio.cfg"
        self.log_path = self.dir / "kamailio.log"
        self.pid_path = self.dir / "kamailio.pid"
        (self.dir / "tls.cfg").write_text(_tls_config(cert, key, ca))
        config = _config(host, self.users, udp_port, tls_port, realm, self.dir, own_users_only, sdp_edits)
        self.config_path.write_text(config)
        self._proc: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None  # set by stop(); 0 is a clean shutdown

    # URIs a user agent needs.
    @property
    def tls_uri(self) -> str:
        return f"sip:{self.host.ip}:{self.tls_port};transport=tls"

    @property
    def udp_uri(self) -> str:
        return f"sip:{self.host.ip}:{self.udp_port}"

    def aor(self, user: str, transport: str = "tls") -> str:
        port = self.tls_port if transport == "tls" else self.udp_port
        return f"sip:{user}@{self.host.ip}:{port};transport={transport}"

    @property
    def pid(self) -> int | None:
        """Kamailio's main process (the namespace wrapper execs it, so it is the Popen's pid)."""
        return self._proc.pid if self._proc is not None else None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> Kamailio:
        check = self.host.run(["kamailio", "-c", "-f", str(self.config_path)])
        if check.returncode != 0:
            raise KamailioError(f"config rejected:\n{check.stderr[-3000:]}")
        with self.log_path.open("wb") as log:
            self._proc = self.host.popen(
                ["kamailio", "-DD", "-E", "-f", str(self.config_path), "-P", str(self.pid_path),
                 "-Y", str(self.dir), "-m", "32", "-M", "8"],
                stdout=log, stderr=subprocess.STDOUT,
            )
        self._wait_listening()
        if self.quickack:
            self._set_quickack(True)
        return self

    def _set_quickack(self, on: bool) -> None:
        """Turn delayed ACKs off (or back on) for the LAN route of Kamailio's namespace.

        baresip writes a SIP message over TLS in several segments with Nagle on, so against a peer that delays
        its ACKs each INVITE waits ~40 ms; quick ACKs here take that baresip artifact out of the figures.
        """
        net = ipaddress.ip_interface(f"{self.host.ip}/{self.host.prefix_len}").network
        argv = ["ip", "route", "change", str(net), "dev", self.host.iface, "proto", "kernel", "scope", "link",
                "src", self.host.ip] + (["quickack", "1"] if on else [])
        result = self.host.run(argv)
        if result.returncode != 0:
            raise KamailioError(f"ip route change failed: {result.stderr.strip()}")

    def _listening(self) -> bool:
        tcp = self.host.run(["ss", "-Hltn", f"sport = :{self.tls_port}"]).stdout
        udp = self.host.run(["ss", "-Hlun", f"sport = :{self.udp_port}"]).stdout
        return self.host.ip in tcp and self.host.ip in udp

    def _accepts_tls(self) -> bool:
        """A full TLS handshake with the served certificate verified: the TCP worker that will serve a unit
        answers (a listening socket alone is the kernel's backlog, answered before any worker runs)."""
        probe = self.host.run(
            ["openssl", "s_client", "-connect", f"{self.host.ip}:{self.tls_port}", "-CAfile", str(self.ca),
             "-verify_return_error", "-brief"],
            input="", timeout=10,
        )  # fmt: skip
        return probe.returncode == 0

    def state(self) -> str:
        """For a failure message: whether Kamailio still runs, and what it logged as critical."""
        proc = self._proc
        code = None if proc is None else proc.poll()
        alive = "stopped" if proc is None else "running" if code is None else f"exited {code}"
        alarms = [line for line in self.log().splitlines() if re.search(r"CRITICAL|ALERT|BUG|ERROR", line)]
        return f"kamailio {alive}; critical log lines: {alarms[-8:]}"

    def _children(self) -> int:
        """How many processes the main process has forked so far (workers, timers, TCP main)."""
        assert self._proc is not None
        parent = str(self._proc.pid)
        count = 0
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    # /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces, so split after ')'.
                    if (entry / "stat").read_text().rsplit(")", 1)[1].split()[1] == parent:
                        count += 1
        return count

    def _all_forked(self) -> bool:
        # Kamailio logs how many processes it will run; until all are forked it does not act on SIGTERM
        # (a stop during that window hangs), and requests may wait for a worker.
        match = re.search(r"processes \(at least\): (\d+)", self.log())
        return match is not None and self._children() >= int(match.group(1)) - 1

    def _wait_listening(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise KamailioError(f"kamailio exited with {self._proc.returncode}:\n{self.log()[-3000:]}")
            if self.pid_path.exists() and self._all_forked() and self._listening() and self._accepts_tls():
                return
            time.sleep(0.05)
        self.stop()
        raise KamailioError(f"kamailio not ready after {self.start_timeout}s:\n{self.log()[-3000:]}")

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the main process (it takes its children down); SIGKILL only if that hangs."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if self.quickack:
            self._set_quickack(False)
        if proc.poll() is None:
            # The namespace wrapper execs kamailio, so this pid is Kamailio's main process.
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.exit_code = proc.returncode
        return proc.returncode

    def __enter__(self) -> Kamailio:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@dataclass
class SipServer:
    """Kamailio with the per-run PKI it serves: what a test needs to point user agents at it."""

    kamailio: Kamailio
    ca: CertificateAuthority
    server_cert: Issued
    dns_name: str


@contextlib.contextmanager
def sip_server(
    host: Host, users: dict[str, str], workdir: Path, dns_name: str = "sip.zcall.test", *,
    quickack: bool = False, own_users_only: bool = False, sdp_edits: SdpEdits | None = None,
) -> Iterator[SipServer]:  # fmt: skip
    """A fresh CA, a server certificate for `host`'s IP and `dns_name`, and Kamailio serving it."""
    ca = CertificateAuthority(workdir / "pki")
    cert = ca.server_cert(host.ip, dns_name)
    kam = Kamailio(
        host, users, cert=cert.cert_path, key=cert.key_path, ca=ca.cert_path, workdir=workdir / "kamailio",
        quickack=quickack, own_users_only=own_users_only, sdp_edits=sdp_edits,
    )
    with kam:
        yield SipServer(kam, ca, cert, dns_name)
