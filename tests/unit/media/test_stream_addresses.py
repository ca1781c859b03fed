"""Where a call's media goes (issue 12): only the SDP says so. Key-agreement packets from a third host are
dropped before they reach ZRTP/DTLS; authenticated SRTP from elsewhere is played but moves nothing; the first
authenticated SRTP packet is reported once (ZRTP's implicit Conf2ACK)."""

from __future__ import annotations

import asyncio
import socket

from tests.support.waiting import until
from tests.unit.media.test_stream import KEY_A, KEY_B, ZRTP_HELLO_LIKE, ListSink, _drain, _raw_socket
from zcall.media.audio import ToneSource
from zcall.media.stream import MediaSession

STUN_BINDING = b"\x00\x01\x00\x00\x21\x12\xa4\x42" + bytes(12)
DTLS_RECORD = b"\x16\xfe\xfd" + bytes(20)


async def test_key_packets_only_from_the_signalled_address() -> None:
    got: list[tuple[bytes, tuple[str, int]]] = []
    peer, intruder = _raw_socket(), _raw_socket()
    session = MediaSession(ToneSource(300), ListSink(), on_key_packet=lambda d, a: got.append((d, a)))
    addr = await session.open(("127.0.0.1", 0), peer.getsockname())
    for packet in (ZRTP_HELLO_LIKE, STUN_BINDING, DTLS_RECORD):
        intruder.sendto(packet, addr)
    peer.sendto(ZRTP_HELLO_LIKE, addr)
    await asyncio.sleep(0.1)
    session.send_key_packet(b"\x10reply")
    await asyncio.sleep(0.05)
    drops = session.stats()["drops"]
    assert got == [(ZRTP_HELLO_LIKE, peer.getsockname())]
    assert [drops[f"{kind}-foreign-source"] for kind in ("zrtp", "stun", "dtls")] == [1, 1, 1]
    assert _drain(peer) == [b"\x10reply"] and _drain(intruder) == []  # our replies still go to the peer
    session.close()
    peer.close()
    intruder.close()


async def test_before_any_remote_is_known_key_packets_pass() -> None:
    # An offerer's DTLS ClientHello may beat the SDP answer; the shell decides what to do with it.
    got: list[bytes] = []
    early = _raw_socket()
    session = MediaSession(ToneSource(300), ListSink(), on_key_packet=lambda d, a: got.append(d))
    addr = await session.open(("127.0.0.1", 0))
    early.sendto(DTLS_RECORD, addr)
    await asyncio.sleep(0.1)
    assert got == [DTLS_RECORD]
    session.close()
    early.close()


async def test_authentic_srtp_from_elsewhere_is_played_but_moves_nothing() -> None:
    sink_b = ListSink()
    a = MediaSession(ToneSource(1000), ListSink())
    b = MediaSession(ToneSource(440), sink_b)
    peer_seen_by_b = _raw_socket()  # the address b's SDP said: b's packets must keep going there
    addr_a = await a.open(("127.0.0.1", 0))
    addr_b = await b.open(("127.0.0.1", 0), peer_seen_by_b.getsockname())
    a.set_remote(addr_b)  # a's packets reach b from a's own port, which is not the signalled address
    a.start_srtp(KEY_A, KEY_B)
    b.start_srtp(KEY_B, KEY_A)
    await until(lambda: b.stats()["received"] > 10, what="11 packets from elsewhere")
    stats = b.stats()
    assert stats["received"] > 10 and stats["counters"]["srtp_from_other_address"] == stats["received"]
    assert len(_drain(peer_seen_by_b)) > 10  # b never followed a's packets to addr_a
    assert addr_a != peer_seen_by_b.getsockname()
    a.close()
    b.close()
    peer_seen_by_b.close()


async def test_first_authentic_srtp_is_reported_once_with_receive_keys_alone() -> None:
    first: list[int] = []
    a = MediaSession(ToneSource(1000), ListSink())
    b = MediaSession(ToneSource(440), ListSink(), on_first_srtp=lambda: first.append(1))
    addr_a = await a.open(("127.0.0.1", 0))
    addr_b = await b.open(("127.0.0.1", 0), addr_a)
    a.set_remote(addr_b)
    # A ZRTP initiator after Confirm1: it can check the responder's SRTP but sends none yet.
    b.start_srtp_receive(KEY_A)
    forger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    forger.sendto(b"\x80\x6f" + bytes(40), addr_b)  # RTP-looking but not authentic: not a Conf2ACK
    await asyncio.sleep(0.1)
    assert first == [] and not b.secure
    a.start_srtp(KEY_A, KEY_B)
    await until(lambda: b.stats()["received"] > 5, what="6 authentic packets")
    assert first == [1] and b.stats()["received"] > 5
    before = b.stats()["received"]
    b.start_srtp(KEY_B, KEY_A)  # the same receive keys: the receiver (and its replay window) stays
    await until(lambda: b.stats()["received"] > before, what="packets after the keys were set again")
    assert first == [1] and b.stats()["received"] > before and b.secure
    a.close()
    b.close()
    forger.close()
