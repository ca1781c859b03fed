"""a=setup roles (RFC 4145 §4, RFC 5763 §5)."""

from __future__ import annotations

import pytest

from zcall.dtls import SetupError, answer_setup, role_for


@pytest.mark.parametrize(
    ("local", "remote", "is_offerer", "role"),
    [
        ("actpass", "active", True, "server"),  # the usual case: answerer connects
        ("actpass", "passive", True, "client"),
        ("active", "actpass", False, "client"),
        ("passive", "actpass", False, "server"),
        ("active", "passive", True, "client"),
        ("passive", "active", True, "server"),
        ("ACTIVE", " passive ", False, "client"),
    ],
)
def test_roles(local: str, remote: str, is_offerer: bool, role: str) -> None:
    assert role_for(local, remote, is_offerer) == role


@pytest.mark.parametrize(
    ("local", "remote", "is_offerer"),
    [
        ("actpass", "actpass", True),  # an answer may not say actpass
        ("actpass", "active", False),  # ...whichever side we are
        ("active", "active", True),
        ("passive", "passive", False),
        ("holdconn", "active", True),
        ("actpass", "sideways", True),
    ],
)
def test_impossible_pairs(local: str, remote: str, is_offerer: bool) -> None:
    with pytest.raises(SetupError):
        role_for(local, remote, is_offerer)


def test_answer_setup_makes_a_consistent_pair() -> None:
    for offer in ("actpass", "active", "passive"):
        answer = answer_setup(offer)
        offerer = role_for(offer, answer, is_offerer=True)
        answerer = role_for(answer, offer, is_offerer=False)
        assert {offerer, answerer} == {"client", "server"}
    assert answer_setup("actpass") == "active"
    with pytest.raises(SetupError):
        answer_setup("holdconn")
