"""REGISTER with digest retry and refresh, and INVITE retried after 407, against a small challenging server.

The server checks digests with hashlib on its own (not through zcall.sip.digest), so a wrong hash fails here.
(Checked by hand against Kamailio 5.6 over UDP and TLS as well; the namespace bench owns that test.)
"""

from __future__ import annotations

import hashlib
import re

from tests.unit.sip.uanet import Net
from zcall.net import Addr
from zcall.sip.dialog import UaConfig
from zcall.sip.digest import DigestClient
from zcall.sip.events import CallAnswered, CallFailed, IncomingCall, Registered, RegistrationFailed
from zcall.sip.headers import Headers
from zcall.sip.model import Request, Response, build_response
from zcall.sip.parser import parse
from zcall.sip.ua import UserAgent
from zcall.sip.uri import parse_uri

A = ("10.0.0.1", 5060)
S = ("10.0.0.9", 5060)
REALM = "zcall.test"


class ChallengingServer:
    """Answers REGISTER (and INVITE, as a proxy would with 407) only with a valid SHA-256 digest."""

    def __init__(self, password: str, *, stale_first: bool = False, grant: int = 120) -> None:
        self.config = UaConfig(*S)
        self.password = password
        self.stale_first = stale_first
        self.grant = grant
        self.nonces = ["n0"]
        self.accepted: list[Request] = []
        self._out: list[tuple[bytes, Addr]] = []

    def _valid(self, request: Request, header: str) -> bool:
        value = request.headers.get(header)
        if value is None:
            return False
        fields = dict(re.findall(r'(\w+)="?([^",]*)"?', value))
        if fields.get("nonce") != self.nonces[-1] or fields.get("realm") != REALM:
            return False

        def h(text: str) -> str:
            return hashlib.sha256(text.encode()).hexdigest()
        ha1 = h(f"{fields['username']}:{REALM}:{self.password}")
        ha2 = h(f"{request.method}:{fields['uri']}")
        want = h(f"{ha1}:{fields['nonce']}:{fields['nc']}:{fields['cnonce']}:auth:{ha2}")
        return fields.get("response") == want

    def receive(self, data: bytes, addr: Addr, now: float, *, stream: bool = False) -> None:
        request = parse(data)
        if not isinstance(request, Request) or request.method == "ACK":
            return
        proxy = request.method == "INVITE"
        header = "Proxy-Authorization" if proxy else "Authorization"
        if self._valid(request, header) and not (self.stale_first and len(self.nonces) == 1):
            self.accepted.append(request)
            resp = build_response(request, 200, to_tag="srv")
            if request.method == "REGISTER":
                contact = request.headers.get("Contact") or ""
                resp.headers.add("Contact", f"{contact};expires={self.grant}")
            self._out.append((resp.serialize(), addr))
            return
        stale = request.headers.get(header) is not None
        if stale:
            self.nonces.append(f"n{len(self.nonces)}")
        resp = build_response(request, 407 if proxy else 401, to_tag="srv")
        name = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        challenge = f'Digest realm="{REALM}", nonce="{self.nonces[-1]}", qop="auth", algorithm=SHA-256'
        resp.headers.add(name, challenge + (", stale=true" if stale and self.stale_first else ""))
        self._out.append((resp.serialize(), addr))

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Addr]]:
        out, self._out = self._out, []
        return out

    def next_event(self) -> None:
        return None

    def get_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None:
        pass


def _net(server: ChallengingServer, password: str) -> tuple[Net, UserAgent]:
    ua = UserAgent(UaConfig(*A, "TLS", user="alice"), DigestClient("alice", password))
    net = Net(ua)
    net.uas[S] = server  # type: ignore[assignment]
    net.events[S] = []
    return net, ua


def test_register_answers_401_and_refreshes() -> None:
    server = ChallengingServer("s3cret")
    net, ua = _net(server, "s3cret")
    token = ua.register(f"sip:{S[0]}", net.now, expires=300)
    net.pump()
    assert net.take(A) == [Registered(token, 120)]
    reg = server.accepted[0]
    assert reg.method == "REGISTER" and reg.headers.get("Expires") == "300"
    assert reg.to.uri.user == "alice" and str(reg.uri) == f"sip:{S[0]}"
    assert "s3cret" not in str(list(reg.headers))
    net.run_until(100.0)  # refreshed at 80% of the granted 120 s
    assert net.take(A) == [Registered(token, 120)]
    assert len(server.accepted) == 2
    assert server.accepted[1].call_id == reg.call_id and server.accepted[1].cseq.seq > reg.cseq.seq
    ua.unregister(token, net.now)
    net.pump()
    assert net.take(A) == [Registered(token, 0)]
    assert server.accepted[-1].headers.get("Expires") == "0"
    assert ua.registrations == {}


def test_wrong_password_fails_once_without_looping() -> None:
    server = ChallengingServer("right")
    net, ua = _net(server, "wrong")
    token = ua.register(f"sip:{S[0]}", net.now)
    net.pump()
    assert net.take(A) == [RegistrationFailed(token, 401, "Unauthorized")]
    assert [m.method for _, _, m in net.log if isinstance(m, Request)] == ["REGISTER", "REGISTER"]


def test_stale_nonce_is_retried() -> None:
    server = ChallengingServer("pw", stale_first=True)
    net, ua = _net(server, "pw")
    token = ua.register(f"sip:{S[0]}", net.now)
    net.pump()
    assert net.take(A) == [Registered(token, 120)]
    assert sum(1 for _, _, m in net.log if isinstance(m, Request)) == 3


def _registered(password: str = "pw") -> tuple[ChallengingServer, Net, UserAgent]:
    """Registered: the registrar's challenge pinned the realm the INVITE's 407 must come from."""
    server = ChallengingServer(password)
    net, ua = _net(server, password)
    token = ua.register(f"sip:{S[0]}", net.now)
    net.pump()
    assert net.take(A) == [Registered(token, 120)]
    net.log.clear()
    return server, net, ua


def test_invite_retried_after_407_keeps_call_id_and_tag() -> None:
    _, net, ua = _registered()
    call_id = ua.invite(f"sip:bob@{S[0]}", b"", net.now)
    net.pump()
    assert net.take(A) == [CallAnswered(call_id, b"")]
    invites = [m for _, _, m in net.log if isinstance(m, Request) and m.method == "INVITE"]
    assert len(invites) == 2
    first, second = invites
    assert second.call_id == first.call_id and second.from_.tag == first.from_.tag
    assert second.cseq.seq == first.cseq.seq + 1 and second.top_via.branch != first.top_via.branch
    acks = [m for _, _, m in net.log if isinstance(m, Request) and m.method == "ACK"]
    assert len(acks) == 2  # one for the 407 (same branch), one for the 200


def test_invite_without_credentials_fails_with_407() -> None:
    server = ChallengingServer("pw")
    ua = UserAgent(UaConfig(*A, user="alice"))
    net = Net(ua)
    net.uas[S] = server  # type: ignore[assignment]
    net.events[S] = []
    call_id = ua.invite(f"sip:bob@{S[0]}", b"", net.now)
    net.pump()
    assert net.take(A) == [CallFailed(call_id, 407, "Proxy Authentication Required")]


def test_requests_are_stamped_with_received_and_rport() -> None:
    b = UserAgent(UaConfig("10.0.0.2", 5060, user="bob"))
    net = Net(UserAgent(UaConfig(*A, user="alice")), b)
    lying_via = Headers(
        [
            ("Via", "SIP/2.0/UDP 192.168.1.50:5999;branch=z9hG4bKnat1;rport"),
            ("From", "<sip:carol@192.168.1.50>;tag=c1"),
            ("To", "<sip:bob@10.0.0.2>"),
            ("Call-ID", "nat-1"),
            ("CSeq", "1 OPTIONS"),
        ]
    )
    options = Request("OPTIONS", parse_uri("sip:bob@10.0.0.2"), lying_via)
    net.inject(options.serialize(), A, ("10.0.0.2", 5060))
    _, dst, reply = net.log[-1]
    assert isinstance(reply, Response) and dst == A  # answered to where it came from
    assert reply.top_via.params == {"branch": "z9hG4bKnat1", "rport": "5060", "received": "10.0.0.1"}
    assert not any(isinstance(e, IncomingCall) for e in net.take(("10.0.0.2", 5060)))


def test_every_call_answers_its_own_407() -> None:
    """The server challenges each INVITE with the same nonce and realm: each call answers once (a realm
    answered by one call is no refusal for the next)."""
    server = ChallengingServer("pw")
    net, ua = _net(server, "pw")
    ua.register(f"sip:{S[0]}", net.now)
    net.pump()
    net.take(A)
    for _ in range(3):
        call_id = ua.invite(f"sip:bob@{S[0]}", b"", net.now)
        net.pump()
        assert net.take(A) == [CallAnswered(call_id, b"")]
    assert [r.method for r in server.accepted] == ["REGISTER", "INVITE", "INVITE", "INVITE"]


def test_a_refused_invite_is_not_retried_twice() -> None:
    server, net, ua = _registered("right")
    server.password = "changed on the server since"
    call_id = ua.invite(f"sip:bob@{S[0]}", b"", net.now)
    net.pump()
    assert net.take(A) == [CallFailed(call_id, 407, "Proxy Authentication Required")]
    assert sum(1 for _, _, m in net.log if isinstance(m, Request) and m.method == "INVITE") == 2


def test_invite_from_is_the_address_of_record() -> None:
    aor = parse_uri("sips:alice@zcall.test")
    ua = UserAgent(UaConfig(*A, user="alice", transport="TLS", display="Alice", aor=aor))
    ua.invite("sips:bob@zcall.test", b"", 0.0, dest=S)
    invite = parse(ua.datagrams_to_send(0.0)[0][0])
    assert isinstance(invite, Request)
    assert invite.from_.uri == aor and invite.from_.display == "Alice"
    contact = invite.headers.get("Contact") or ""
    assert f"{A[0]}:{A[1]}" in contact  # where we are reached stays the contact
    lan = UserAgent(UaConfig(*A, user="zcall"))
    lan.invite("sip:bob@10.0.0.2", b"", 0.0)
    plain = parse(lan.datagrams_to_send(0.0)[0][0])
    assert isinstance(plain, Request) and plain.from_.uri.host == A[0]  # no account: the contact address


def test_challenge_in_a_foreign_realm_is_not_answered() -> None:
    """Once registered in zcall.test, a 407 from a callee in its own realm gets no digest of our password."""
    server = ChallengingServer("pw")
    net, ua = _net(server, "pw")
    ua.register(f"sip:{S[0]}", net.now)
    net.pump()
    net.take(A)
    net.drop = lambda msg: isinstance(msg, Request) and msg.method == "INVITE"  # the callee answers, not S
    call_id = ua.invite(f"sip:bob@{S[0]}", b"", net.now)
    net.pump()
    first = next(m for _, _, m in reversed(net.log) if isinstance(m, Request) and m.method == "INVITE")
    assert isinstance(first, Request)
    net.log.clear()
    rogue = build_response(first, 407, to_tag="evil")
    rogue.headers.add("Proxy-Authenticate", 'Digest realm="attacker.example", nonce="fixed"')
    ua.receive(rogue.serialize(), S, net.now)
    net.pump()
    assert net.take(A)[-1] == CallFailed(call_id, 407, "Proxy Authentication Required")
    sent = [m for _, _, m in net.log if isinstance(m, Request) and m.method == "INVITE"]
    assert all(m.headers.get("Proxy-Authorization") is None for m in sent)


def test_each_register_refresh_counts_nc_up_with_a_new_cnonce() -> None:
    server = ChallengingServer("pw")
    net, ua = _net(server, "pw")
    ua.register(f"sip:{S[0]}", net.now, expires=300)
    net.run_until(300.0)  # two refreshes at 80 % of 120 s, all on the one nonce
    fields = [dict(re.findall(r'(\w+)="?([^",]*)"?', r.headers.get("Authorization") or ""))
              for r in server.accepted]  # fmt: skip
    assert len(fields) >= 3 and {f["nonce"] for f in fields} == {"n0"}
    assert [f["nc"] for f in fields[:3]] == ["00000001", "00000002", "00000003"]
    assert len({f["cnonce"] for f in fields}) == len(fields)


def test_no_credentials_leave_over_a_plain_transport() -> None:
    server = ChallengingServer("pw")
    ua = UserAgent(UaConfig(*A, user="alice"), DigestClient("alice", "pw", realm=REALM))  # UDP
    net = Net(ua)
    net.uas[S] = server  # type: ignore[assignment]
    net.events[S] = []
    token = ua.register(f"sip:{S[0]}", net.now)
    net.pump()
    assert net.take(A) == [RegistrationFailed(token, 401, "Unauthorized")]
    assert not any(isinstance(m, Request) and m.headers.get("Authorization") for _, _, m in net.log)
