"""Real UDP on loopback between two ZrtpSessions, captured by dumpcap and decoded by Wireshark's own ZRTP
dissector: every packet must decode as ZRTP with a good checksum and nothing flagged malformed."""

from __future__ import annotations

import select
import socket
import subprocess
import time
import weakref
from pathlib import Path

import pytest

from tests.support.prereq import require_binary, require_root
from tests.unit.zrtp.harness import answer, make
from zcall.zrtp import messages as m
from zcall.zrtp.events import Failed, SecureReady
from zcall.zrtp.packet import encode_packet
from zcall.zrtp.session import ZrtpSession

pytestmark = pytest.mark.netns


def _udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


# Events each session reported while the exchange ran (PeerIdentified is answered there, as a shell does).
_SEEN: weakref.WeakKeyDictionary[ZrtpSession, list[object]] = weakref.WeakKeyDictionary()


def _drain(sess: ZrtpSession, now: float) -> None:
    while (event := sess.next_event()) is not None:
        answer(sess, event, now)
        _SEEN.setdefault(sess, []).append(event)


def _exchange(
    a: ZrtpSession, b: ZrtpSession, sa: socket.socket, sb: socket.socket, limit: float = 10.0
) -> int:
    """Drive two sessions over real sockets in real time; return how many datagrams they sent."""
    pairs = ((a, sa, sb), (b, sb, sa))
    start = time.monotonic()
    a.start(0.0)
    b.start(0.0)
    sent = 0
    while (now := time.monotonic() - start) < limit:
        for sess, sock, peer in pairs:
            for data in sess.datagrams_to_send(now):
                sock.sendto(data, peer.getsockname())
                sent += 1
        timers = [t for t in (a.get_timer(), b.get_timer()) if t is not None]
        if not timers and now > 0.3:
            break
        wait = max(0.0, min(timers) - now) if timers else 0.05
        readable, _, _ = select.select([sa, sb], [], [], min(wait, 0.05))
        now = time.monotonic() - start
        for sess, sock, _ in pairs:
            if sock in readable:
                sess.receive(sock.recv(4096), now)
            timer = sess.get_timer()
            if timer is not None and timer <= now:
                sess.handle_timer(now)
            _drain(sess, now)
    return sent


def _events(sess: ZrtpSession) -> list[object]:
    _drain(sess, 0.0)
    return _SEEN.pop(sess, [])


def test_wireshark_decodes_every_packet(tmp_path: Path) -> None:
    require_root()
    require_binary("dumpcap", "tshark")
    sa, sb = _udp(), _udp()
    pa, pb = sa.getsockname()[1], sb.getsockname()[1]
    pcap = tmp_path / "zrtp.pcapng"
    cap = subprocess.Popen(
        ["dumpcap", "-q", "-i", "lo", "-f", f"udp port {pa} or udp port {pb}", "-w", str(pcap)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert cap.stderr is not None
        deadline = time.monotonic() + 15
        while "Capturing on" not in cap.stderr.readline():
            assert time.monotonic() < deadline and cap.poll() is None, "dumpcap did not start"
        time.sleep(1.0)  # "Capturing on" is printed a moment before the BPF filter is live
        sent = 0
        for ka in ("X255", "DH3k", "EC25", "EC38", "DH2k"):
            a = make(1, "initiator", key_agreements=(ka,), hashes=("S384",) if ka == "EC38" else ("S256",))
            b = make(2, "responder", key_agreements=(ka, "DH3k"))
            sent += _exchange(a, b, sa, sb)
            assert isinstance(_events(a)[-1], SecureReady) and isinstance(_events(b)[-1], SecureReady), ka
        # Ping / PingACK, then an Error / ErrorACK exchange (both ends use one ZID: §5.9's 0x90).
        sb.sendto(encode_packet(1, 0x77, m.Ping(b"1.10", b"endpoint").encode()), sa.getsockname())
        sent += 1
        a = make(1)
        sent += _exchange(a, make(1), sa, sb)
        assert any(isinstance(e, Failed) for e in _events(a))
        time.sleep(0.5)
    finally:
        cap.terminate()
        cap.wait(timeout=10)
        sa.close()
        sb.close()
    out = subprocess.run(
        [
            "tshark",
            "-r",
            str(pcap),
            "-d",
            f"udp.port=={pa},zrtp",
            "-d",
            f"udp.port=={pb},zrtp",
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "zrtp.type",
            "-e",
            "zrtp.checksum.status",
            "-e",
            "_ws.malformed",
            "-e",
            "_ws.expert.severity",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    rows = [line.split("\t") for line in out.splitlines() if line.strip()]
    # The Ping arrives after a's session object changed, so it may or may not be answered: count >= sent.
    assert len(rows) >= sent
    types = {row[1] for row in rows}
    for expected in (
        "Hello   ",
        "HelloACK",
        "Commit  ",
        "DHPart1 ",
        "DHPart2 ",
        "Confirm1",
        "Confirm2",
        "Conf2ACK",
        "Error   ",
        "ErrorACK",
        "Ping    ",
    ):
        assert expected in types, (expected, types)
    bad = [row for row in rows if row[2] != "1" or row[3] or (len(row) > 4 and row[4])]
    assert not bad, bad
    verbose = subprocess.run(
        ["tshark", "-r", str(pcap), "-d", f"udp.port=={pa},zrtp", "-d", f"udp.port=={pb},zrtp", "-V"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "Malformed" not in verbose and "Bad checksum" not in verbose
