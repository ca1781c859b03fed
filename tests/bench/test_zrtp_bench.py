"""ZRTP benchmark: CPU time of one complete DH-mode exchange (both sides, over the in-memory link) per key
agreement, next to the floor -- the raw `cryptography` cost of two key generations and two exchanges --
with the ratio; then parse cost per message type. Prints figures; asserts only that the exchanges work.
"""

from __future__ import annotations

import os
import time
import warnings

import pytest
from cryptography.hazmat.primitives.asymmetric import dh, ec, x25519

from tests.unit.zrtp.harness import make, run_pair
from zcall.zrtp import crypto
from zcall.zrtp import messages as m
from zcall.zrtp.events import SecureReady
from zcall.zrtp.packet import encode_packet, parse_packet

ROUNDS = 20


def _floor(ka: str) -> float:
    """CPU seconds for 2 keygens + 2 exchanges done directly with cryptography (what any ZRTP must pay)."""
    start = time.process_time()
    for _ in range(ROUNDS):
        if ka == "X255":
            p, q = x25519.X25519PrivateKey.generate(), x25519.X25519PrivateKey.generate()
            p.exchange(q.public_key())
            q.exchange(p.public_key())
        elif ka in ("EC25", "EC38"):
            curve = ec.SECP256R1() if ka == "EC25" else ec.SECP384R1()
            e1, e2 = ec.generate_private_key(curve), ec.generate_private_key(curve)
            e1.exchange(ec.ECDH(), e2.public_key())
            e2.exchange(ec.ECDH(), e1.public_key())
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                params = dh.DHParameterNumbers(crypto.DH_PRIMES[ka], 2).parameters()
                d1, d2 = params.generate_private_key(), params.generate_private_key()
                d1.exchange(d2.public_key())
                d2.exchange(d1.public_key())
    return (time.process_time() - start) / ROUNDS


def _exchange_cost(ka: str) -> float:
    start = time.process_time()
    for _ in range(ROUNDS):
        run = run_pair(make(1, "initiator", key_agreements=(ka,)), make(2, "responder", key_agreements=(ka,)))
        assert any(isinstance(e, SecureReady) for e in run.events["a"])
    return (time.process_time() - start) / ROUNDS


@pytest.mark.parametrize("ka", crypto.KEY_AGREEMENTS)
def test_exchange_cpu_per_key_agreement(ka: str) -> None:
    _exchange_cost(ka)  # warm up imports and caches
    total, floor = _exchange_cost(ka), _floor(ka)
    print(
        f"\nZRTP {ka}: full exchange (both sides) {total * 1e3:7.2f} ms CPU; "
        f"cryptography floor {floor * 1e3:6.2f} ms; ratio {total / floor:5.1f}x; "
        f"our overhead {max(total - floor, 0) * 1e3:6.2f} ms"
    )


def test_parse_cost_per_message_type() -> None:
    samples = {
        "Hello": m.Hello(
            b"1.10",
            b"z" * 16,
            os.urandom(32),
            os.urandom(12),
            (b"S256", b"S384"),
            (b"AES1", b"AES3"),
            (b"HS80", b"HS32"),
            (b"X255", b"DH3k", b"EC25"),
            (b"B256", b"B32 "),
        ),
        "Commit": m.Commit(
            os.urandom(32), os.urandom(12), b"S256", b"AES1", b"HS80", b"X255", b"B32 ", os.urandom(32)
        ),
        "DHPart1/X255": m.DHPart(1, *(os.urandom(n) for n in (32, 8, 8, 8, 8, 32))),
        "DHPart2/DH3k": m.DHPart(2, *(os.urandom(n) for n in (32, 8, 8, 8, 8, 384))),
        "Confirm1": m.Confirm(1, os.urandom(8), os.urandom(16), os.urandom(40)),
        "HelloACK": m.HelloAck(),
        "Error": m.Error(0x10),
        "PingACK": m.PingAck(b"1.10", os.urandom(8), os.urandom(8), 1),
    }
    n = 2000
    print()
    for name, msg in samples.items():
        raw = msg.encode()
        packet = encode_packet(1, 2, raw)
        start = time.process_time()
        for _ in range(n):
            m.parse_message(parse_packet(packet).message)
        per = (time.process_time() - start) / n
        start = time.process_time()
        for _ in range(n):
            m.parse_message(raw)
        only = (time.process_time() - start) / n
        print(
            f"parse {name:13s} {len(packet):4d} B: packet+CRC+message {per * 1e6:7.1f} us, message only "
            f"{only * 1e6:6.1f} us (CRC share {100 * (per - only) / per:4.1f} %)"
        )
