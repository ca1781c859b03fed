"""Digest client: RFC 2617/7616 vectors, header building, nc counting, stale handling, parser limits."""

from __future__ import annotations

import hashlib

import pytest

from zcall.sip.digest import (
    Challenge,
    DigestClient,
    DigestParseError,
    challenges,
    compute_response,
    parse_challenge,
)
from zcall.sip.headers import Headers
from zcall.sip.model import Response

# Published example values (RFC 2617 §3.5 and RFC 7616 §3.9.1).
RFC7616 = {
    "realm": "http-auth@example.org",
    "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
    "cnonce": "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
}


def test_rfc2617_vector() -> None:
    c = Challenge("testrealm@host.com", "dcd98b7102dd2f0e8b11d0f600bfb0c093", qop=("auth",))
    got = compute_response(
        c, method="GET", uri="/dir/index.html", username="Mufasa", password="Circle Of Life",
        cnonce="0a4f113b", nc=1, qop="auth",
    )  # fmt: skip
    assert got == "6629fae49393a05397450978507c4ef1"


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_vectors(algorithm: str, expected: str) -> None:
    c = Challenge(RFC7616["realm"], RFC7616["nonce"], algorithm=algorithm, qop=("auth",))
    got = compute_response(
        c, method="GET", uri="/dir/index.html", username="Mufasa", password="Circle of Life",
        cnonce=RFC7616["cnonce"], nc=1, qop="auth",
    )  # fmt: skip
    assert got == expected


def test_no_qop_and_sess_forms() -> None:
    c = Challenge("r", "n")
    ha1 = hashlib.md5(b"u:r:p").hexdigest()
    ha2 = hashlib.md5(b"REGISTER:sip:r").hexdigest()
    assert compute_response(c, method="REGISTER", uri="sip:r", username="u", password="p", cnonce="c", nc=1,
                            qop=None) == hashlib.md5(f"{ha1}:n:{ha2}".encode()).hexdigest()
    s = Challenge("r", "n", algorithm="SHA-256-sess", qop=("auth",))
    ha1s = hashlib.sha256(f"{hashlib.sha256(b'u:r:p').hexdigest()}:n:c".encode()).hexdigest()
    ha2s = hashlib.sha256(b"REGISTER:sip:r").hexdigest()
    want = hashlib.sha256(f"{ha1s}:n:00000001:c:auth:{ha2s}".encode()).hexdigest()
    assert compute_response(s, method="REGISTER", uri="sip:r", username="u", password="p", cnonce="c", nc=1,
                            qop="auth") == want


def test_parse_challenge_forms() -> None:
    c = parse_challenge('Digest realm="sip.test", nonce="a\\"b", qop="auth,auth-int", algorithm=sha-256, '
                        'opaque="xyz", stale=TRUE')
    assert c == Challenge("sip.test", 'a"b', "SHA-256", ("auth", "auth-int"), "xyz", True)
    assert parse_challenge("digest realm=x,nonce=y").algorithm == "MD5"


def _challenge_response(status: int, *values: str) -> Response:
    name = "Proxy-Authenticate" if status == 407 else "WWW-Authenticate"
    headers = [("Call-ID", "c1@h"), ("CSeq", "1 REGISTER"), *((name, v) for v in values)]
    return Response(status, headers=Headers(headers))


def test_client_prefers_sha256_counts_nc_and_handles_stale() -> None:
    resp = _challenge_response(
        401,
        'Digest realm="sip.test", nonce="n1", qop="auth", algorithm=MD5',
        'Digest realm="sip.test", nonce="n1", qop="auth", algorithm=SHA-256, opaque="o"',
        'Basic realm="nope"',
    )
    assert [c.algorithm for c in challenges(resp)] == ["SHA-256", "MD5"]
    client = DigestClient("alice", "secret")
    assert client.authorize(resp, method="REGISTER", uri="sip:sip.test") is None  # no realm pinned yet
    got = client.authorize(resp, method="REGISTER", uri="sip:sip.test", cnonce="cn", learn_realm=True)
    assert got is not None and client.realm == "sip.test"
    name, value = got
    assert name == "Authorization"
    assert 'algorithm=SHA-256' in value and "nc=00000001" in value and 'opaque="o"' in value
    assert "secret" not in value
    # The same exchange refused again without stale: the password is wrong, give up.
    assert client.authorize(resp, method="REGISTER", uri="sip:sip.test") is None
    # Reusing a nonce counts up.
    c = challenges(resp)[0]
    assert "nc=00000002" in client.header_value(c, method="INVITE", uri="sip:b@sip.test")
    assert "nc=00000003" in client.header_value(c, method="INVITE", uri="sip:b@sip.test")
    client.succeeded(resp)  # a 2xx in that exchange: the next challenge is a new one
    assert client.authorize(resp, method="REGISTER", uri="sip:sip.test") is not None


def _stale(n: int) -> Response:
    return _challenge_response(401, f'Digest realm="sip.test", nonce="s{n}", qop="auth", stale=true')


def test_stale_nonces_are_retried_twice_then_it_is_a_refusal() -> None:
    client = DigestClient("alice", "secret", realm="sip.test")
    first = _challenge_response(401, 'Digest realm="sip.test", nonce="n0", qop="auth"')
    assert client.authorize(first, method="REGISTER", uri="sip:sip.test") is not None
    assert client.authorize(_stale(1), method="REGISTER", uri="sip:sip.test") is not None
    assert client.authorize(_stale(1), method="REGISTER", uri="sip:sip.test") is None  # the same nonce again
    client.succeeded(_stale(1))
    assert client.authorize(first, method="REGISTER", uri="sip:sip.test") is not None
    assert client.authorize(_stale(2), method="REGISTER", uri="sip:sip.test") is not None
    assert client.authorize(_stale(3), method="REGISTER", uri="sip:sip.test") is not None
    assert client.authorize(_stale(4), method="REGISTER", uri="sip:sip.test") is None  # a server looping us


@pytest.mark.parametrize(
    "challenge",
    [
        'Digest realm="attacker.example", nonce="fixed", qop="auth", algorithm=SHA-256',  # a callee's realm
        'Digest realm="sip.test", nonce="fixed"',  # no qop: the challenger controls every hashed input
        'Digest realm="sip.test", nonce="fixed", qop="auth-int"',
    ],
    ids=["foreign-realm", "no-qop", "auth-int-only"],
)
def test_challenges_we_must_not_answer(challenge: str) -> None:
    client = DigestClient("alice", "secret", realm="sip.test")
    for status in (401, 407):
        refused = _challenge_response(status, challenge)
        assert client.authorize(refused, method="INVITE", uri="sip:b@x") is None
    learning = DigestClient("alice", "secret")
    if "attacker" not in challenge:
        assert learning.authorize(_challenge_response(401, challenge), method="REGISTER", uri="sip:r",
                                  learn_realm=True) is None


def test_proxy_challenge_uses_proxy_authorization() -> None:
    resp = _challenge_response(407, 'Digest realm="p", nonce="n", qop="auth"')
    got = DigestClient("bob", "pw", realm="p").authorize(resp, method="INVITE", uri="sip:x@p")
    assert got is not None and got[0] == "Proxy-Authorization" and "qop=auth" in got[1]


@pytest.mark.parametrize(
    "bad",
    [
        'Basic realm="x"',
        'Digest nonce="n"',
        'Digest realm="r"',
        'Digest realm="r", nonce="n", algorithm=SHA-512-256',
        'Digest realm="r", nonce="n", qop="auth-conf"',
        'Digest realm="r", nonce="unterminated',
        'Digest realm="r" nonce="n"',
        'Digest realm="r", realm="s", nonce="n"',
        'Digest realm=, nonce="n"',
        'Digest realm="r", nonce="n", =x',
        "Digest realm=\"r\", nonce=\"" + "x" * 2000 + "\"",
        "Digest " + ", ".join(f"p{i}=v" for i in range(40)) + ', realm="r", nonce="n"',
        "Digest " + "x" * 5000,
    ],
)
def test_bad_challenges(bad: str) -> None:
    with pytest.raises(DigestParseError):
        parse_challenge(bad)
