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
    return Response(status, headers=Headers([(name, v) for v in values]))


def test_client_prefers_sha256_counts_nc_and_handles_stale() -> None:
    resp = _challenge_response(
        401,
        'Digest realm="sip.test", nonce="n1", qop="auth", algorithm=MD5',
        'Digest realm="sip.test", nonce="n1", qop="auth", algorithm=SHA-256, opaque="o"',
        'Basic realm="nope"',
    )
    assert [c.algorithm for c in challenges(resp)] == ["SHA-256", "MD5"]
    client = DigestClient("alice", "secret")
    got = client.authorize(resp, method="REGISTER", uri="sip:sip.test", cnonce="cn")
    assert got is not None
    name, value = got
    assert name == "Authorization"
    assert 'algorithm=SHA-256' in value and "nc=00000001" in value and 'opaque="o"' in value
    assert "secret" not in value
    # The same realm refuses again without stale: the password is wrong, give up.
    assert client.authorize(resp, method="REGISTER", uri="sip:sip.test") is None
    stale = _challenge_response(401, 'Digest realm="sip.test", nonce="n2", qop="auth", stale=true')
    again = client.authorize(stale, method="REGISTER", uri="sip:sip.test")
    assert again is not None and 'nonce="n2"' in again[1]
    # Reusing a nonce counts up.
    c = challenges(resp)[0]
    assert "nc=00000002" in client.header_value(c, method="INVITE", uri="sip:b@sip.test")
    client.succeeded("sip.test")
    assert client.authorize(resp, method="REGISTER", uri="sip:sip.test") is not None


def test_proxy_challenge_uses_proxy_authorization() -> None:
    resp = _challenge_response(407, 'Digest realm="p", nonce="n"')
    got = DigestClient("bob", "pw").authorize(resp, method="INVITE", uri="sip:x@p")
    assert got is not None and got[0] == "Proxy-Authorization" and "qop" not in got[1]


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
