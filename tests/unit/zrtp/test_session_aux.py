"""The auxiliary secret (RFC 6189 §4.3) in whole sessions: what binds ZRTP to DTLS on the server path."""

from __future__ import annotations

import pytest

from tests.unit.zrtp.harness import make, run_pair
from zcall.zrtp.events import SecureReady
from zcall.zrtp.session import ZrtpSession


def readies(
    a: ZrtpSession, b: ZrtpSession, seed: int = 0, loss: float = 0.0
) -> tuple[SecureReady, SecureReady]:
    run = run_pair(a, b, seed=seed, loss=loss)
    ra = [e for e in run.events["a"] if isinstance(e, SecureReady)]
    rb = [e for e in run.events["b"] if isinstance(e, SecureReady)]
    assert len(ra) == len(rb) == 1, run.events
    assert ra[0].sas_text == rb[0].sas_text
    return ra[0], rb[0]


@pytest.mark.parametrize("seed", range(4))
def test_the_same_secret_on_both_sides_matches(seed: int) -> None:
    a, b = make(1), make(2)  # no role hints: either may initiate, contention included
    a.set_aux_secret(b"\x11" * 32)
    b.set_aux_secret(b"\x11" * 32)
    ra, rb = readies(a, b, seed=seed, loss=0.2)
    assert ra.aux_secret == rb.aux_secret == "match"


def test_different_secrets_are_a_mismatch_on_both_sides_and_the_words_still_agree() -> None:
    # A man in the middle of DTLS relaying ZRTP: each end holds its own DTLS session's exporter value.
    a, b = make(1, "initiator"), make(2, "responder")
    a.set_aux_secret(b"\x11" * 32)
    b.set_aux_secret(b"\x22" * 32)
    ra, rb = readies(a, b)
    assert ra.aux_secret == rb.aux_secret == "mismatch"


def test_one_side_without_a_secret() -> None:
    a, b = make(1, "initiator"), make(2, "responder")
    a.set_aux_secret(b"\x11" * 32)
    ra, rb = readies(a, b)
    assert (ra.aux_secret, rb.aux_secret) == ("mismatch", "none")


def test_the_secret_cannot_change_once_the_exchange_runs() -> None:
    a, b = make(1, "initiator"), make(2, "responder")
    readies(a, b)
    with pytest.raises(RuntimeError):
        a.set_aux_secret(b"\x11" * 32)
