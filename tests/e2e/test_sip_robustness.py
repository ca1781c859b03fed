"""A running phone takes the whole malformed-SIP table on its real UDP socket, answers each with the right
4xx (or drops what cannot be answered), and keeps serving calls afterwards."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.support.zcall_peer import ZcallPeer
from tests.unit.sip.test_message import MALFORMED

pytestmark = [pytest.mark.timeout(120)]


def _status_of(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


def test_malformed_table_then_a_secure_call(tmp_path: Path) -> None:
    bob = ZcallPeer(None, tmp_path / "bob", name="bob", auto_answer=True, sip_port=0,
                    extra=["--bind", "127.0.0.1", "--no-mdns"])  # fmt: skip
    alice = ZcallPeer(None, tmp_path / "alice", name="alice", sip_port=0,
                      extra=["--bind", "127.0.0.1", "--no-mdns"])  # fmt: skip
    with bob, alice:
        ready = bob.wait_event("ready")
        bob_port = int(ready["sip_uri"].rsplit(":", 1)[1])  # ephemeral: runs may overlap
        alice.wait_event("ready")
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.5)
        wrong: list[str] = []
        with sock:
            for name, data, status in MALFORMED:
                if not data or len(data) > 65000:
                    continue  # nothing to send, or more than one UDP datagram can carry
                sock.sendto(data, ("127.0.0.1", bob_port))
                try:
                    reply, _ = sock.recvfrom(65535)
                except TimeoutError:
                    reply = b""
                got = _status_of(reply) if reply else None
                if got != status:
                    wrong.append(f"{name}: expected {status}, got {got}")
        assert not wrong, "\n".join(wrong)
        alice.ctl("call", ready["sip_uri"])
        secure_a, secure_b = alice.wait_event("secure"), bob.wait_event("secure")
        assert secure_a["sas"] == secure_b["sas"]
        alice.ctl("hangup")
        bob.wait_event("ended", timeout=5)


_SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\n"
)
# Numeric fields in digits that str.isdigit() accepts and int() refuses, in the SIP headers and in the SDP.
_HOSTILE = [
    ("CSeq: 1 INVITE", "CSeq: 1\u00b2 INVITE"),
    ("Max-Forwards: 70", "Max-Forwards: 7\u00b2"),
    ("o=- 1 1 IN", "o=- 1 \u00b2 IN"),
    ("m=audio 40000 ", "m=audio 4\u00b2 "),
    ("m=audio 40000 ", "m=audio 40000/\u00b9 "),
]


def _hostile_invite(n: int, port: int, swap: tuple[str, str], bob_port: int) -> bytes:
    body = _SDP.replace(*swap) if swap[0] in _SDP else _SDP
    head = "\r\n".join([
        f"INVITE sip:bob@127.0.0.1:{bob_port} SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKhostile{n}",
        "Max-Forwards: 70",
        f"From: <sip:mallory@127.0.0.1:{port}>;tag=m{n}",
        "To: <sip:bob@127.0.0.1>",
        f"Call-ID: hostile-{n}@127.0.0.1",
        "CSeq: 1 INVITE",
        f"Contact: <sip:mallory@127.0.0.1:{port}>",
        "Content-Type: application/sdp",
        f"Content-Length: {len(body.encode())}",
    ])  # fmt: skip
    if swap[0] in head:
        head = head.replace(*swap)
    return (head + "\r\n\r\n" + body).encode()


def test_forty_invites_with_non_ascii_digits_then_a_secure_call(tmp_path: Path) -> None:
    """Each gets one 400 and leaves nothing behind: the call after them rings, is answered and goes secure."""
    bob = ZcallPeer(None, tmp_path / "bob", name="bob", auto_answer=True, sip_port=0,
                    extra=["--bind", "127.0.0.1", "--no-mdns"])  # fmt: skip
    alice = ZcallPeer(None, tmp_path / "alice", name="alice", sip_port=0,
                      extra=["--bind", "127.0.0.1", "--no-mdns"])  # fmt: skip
    with bob, alice:
        ready = bob.wait_event("ready")
        bob_port = int(ready["sip_uri"].rsplit(":", 1)[1])  # ephemeral: runs may overlap
        alice.wait_event("ready")
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        finals: dict[bytes, list[int]] = {}
        with sock:
            for n in range(40):
                invite = _hostile_invite(n, port, _HOSTILE[n % len(_HOSTILE)], bob_port)
                sock.sendto(invite, ("127.0.0.1", bob_port))
            sock.settimeout(2.0)
            try:
                while True:
                    reply, _ = sock.recvfrom(65535)
                    status = _status_of(reply)
                    branch = reply.split(b"branch=", 1)[1].split(b"\r\n", 1)[0].split(b";", 1)[0]
                    if status >= 200:
                        finals.setdefault(branch, []).append(status)
            except TimeoutError:
                pass
        assert len(finals) == 40 and all(statuses[0] == 400 for statuses in finals.values()), finals
        alice.ctl("call", ready["sip_uri"])
        secure_a, secure_b = alice.wait_event("secure"), bob.wait_event("secure")
        assert secure_a["sas"] == secure_b["sas"]
        alice.ctl("hangup")
        bob.wait_event("ended", timeout=5)
