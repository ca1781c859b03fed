"""The peer's hash chain (RFC 6189 §9): each preimage it reveals must hash to the image it committed to and
key the MAC of the message that carried that image. A failed check raises Drop: the message is ignored."""

from __future__ import annotations

from zcall.zrtp import crypto
from zcall.zrtp import messages as m
from zcall.zrtp.errors import Abort, Drop, ZrtpErrorCode
from zcall.zrtp.negotiation import Choice


def check_hello_by_dhpart1(hello: m.Hello, dh1: m.DHPart) -> None:
    """Initiator: DHPart1's H1 gives H2, which must reach the Hello's H3 and key the Hello's MAC."""
    h2 = crypto.implicit_hash(dh1.h1)
    if not crypto.macs_equal(crypto.implicit_hash(h2), hello.h3):
        raise Drop("hash_chain")
    if not crypto.message_mac_ok(hello.raw, h2):
        raise Drop("bad_mac")


def check_commit(commit: m.Commit, hello: m.Hello) -> None:
    """Responder: the Commit comes from the Hello's sender, and its H2 authenticates that Hello."""
    if commit.zid != hello.zid:
        raise Drop("zid_changed")
    if not crypto.macs_equal(crypto.implicit_hash(commit.h2), hello.h3):
        raise Drop("hash_chain")
    if not crypto.message_mac_ok(hello.raw, commit.h2):
        raise Drop("bad_mac")


def check_dhpart2(dh2: m.DHPart, commit: m.Commit, choice: Choice, responder_hello: bytes) -> None:
    """Responder: DHPart2's H1 authenticates the Commit, and DHPart2 is what the Commit's hvi promised."""
    if not crypto.macs_equal(crypto.implicit_hash(dh2.h1), commit.h2):
        raise Drop("hash_chain")
    if not crypto.message_mac_ok(commit.raw, dh2.h1):
        raise Drop("bad_mac")
    if len(dh2.pv) != crypto.PV_LEN[choice.key_agreement]:
        raise Abort(ZrtpErrorCode.BAD_PV, "DHPart2 public value has the wrong size")
    expected = crypto.hvi(choice.hash, dh2.raw, responder_hello)
    if not crypto.macs_equal(expected, commit.hvi):
        raise Abort(ZrtpErrorCode.BAD_HVI, "hvi does not match DHPart2 (possible MiTM)")


def check_dhpart_by_h0(dhpart: m.DHPart, h0: bytes) -> None:
    """Both ends: the Confirm's H0 closes the chain and authenticates the peer's DHPart."""
    if not crypto.macs_equal(crypto.implicit_hash(h0), dhpart.h1):
        raise Drop("hash_chain")
    if not crypto.message_mac_ok(dhpart.raw, h0):
        raise Drop("bad_mac")
