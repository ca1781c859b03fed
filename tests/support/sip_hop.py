"""A SIP hop that tampers with the ZRTP hash and the DTLS fingerprint in SDP bodies (an attacker on the
signalling path).

Run in a namespace: `python -m tests.support.sip_hop --listen IP:PORT --to IP:PORT`. Every datagram that
reaches the listen port is forwarded to the target with each `a=zrtp-hash` value replaced by another
valid-looking hash and each `a=fingerprint` by another of the same length (Content-Length fixed): the
callee sees a forged offer. What the target sends back (to the hop, as the request came from it) is
returned to the caller untouched.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import socket

_HASH = re.compile(rb"(a=zrtp-hash:\S+ )([0-9a-fA-F]{64})")
_FINGERPRINT = re.compile(rb"(a=fingerprint:\S+ )([0-9A-Fa-f:]+)")


def _other_fingerprint(match: re.Match[bytes]) -> bytes:
    octets = match.group(2).split(b":")
    forged = hashlib.sha256(match.group(2)).hexdigest().upper().encode()
    return match.group(1) + b":".join(forged[i : i + 2] for i in range(0, 2 * len(octets), 2))


def tamper(message: bytes) -> bytes:
    head, sep, body = message.partition(b"\r\n\r\n")
    if not sep or (b"a=zrtp-hash" not in body and b"a=fingerprint" not in body):
        return message
    body = _HASH.sub(lambda m: m.group(1) + hashlib.sha256(m.group(2)).hexdigest().encode(), body)
    body = _FINGERPRINT.sub(_other_fingerprint, body)
    head = re.sub(rb"(?im)^(content-length|l)\s*:\s*\d+", lambda m: m.group(1) + b": %d" % len(body), head)
    return head + sep + body


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", required=True)
    parser.add_argument("--to", required=True)
    args = parser.parse_args()
    listen_ip, listen_port = args.listen.rsplit(":", 1)
    to_ip, to_port = args.to.rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((listen_ip, int(listen_port)))
    target = (to_ip, int(to_port))
    client: tuple[str, int] | None = None
    print("ready", flush=True)
    while True:
        data, source = sock.recvfrom(65535)
        if source == target:
            if client is not None:
                sock.sendto(data, client)
        else:
            client = source
            sock.sendto(tamper(data), target)


if __name__ == "__main__":
    main()
