"""A MediaSession as a process, for end-to-end tests inside network namespaces.

    python -m tests.support.media_peer --bind IP:PORT --remote IP:PORT --role a|b --audio-in SPEC
        --audio-out SPEC --seconds S [--attack-every N] [--iface eth0]

It opens the session, prints {"event": "ready", "address": ...}, waits for a line "go" on stdin, installs
fixed test SRTP keys (role a sends with key A and receives with key B; role b the reverse), plays the source
after --lead-in seconds of silence, runs for S seconds and prints {"event": "stats", ...}.
--attack-every N plays an on-path attacker in this namespace: it sniffs the SRTP arriving for this port
(AF_PACKET) and, for every Nth RTP packet, re-sends one exact copy (a replay) and one copy whose
sequence number lies ahead; the session must reject and count both while it keeps playing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import struct
import sys
import threading
from typing import Any

from zcall.media.audio import SILENCE, AudioSource, WavSource
from zcall.media.audiospec import open_sink, open_source
from zcall.media.srtpkeys import SrtpKeys, SrtpProfile
from zcall.media.stream import MediaSession

_KEYS = {
    "a": SrtpKeys(SrtpProfile.AES_CM_128_HMAC_SHA1_80, bytes(range(1, 17)), bytes(range(101, 115))),
    "b": SrtpKeys(SrtpProfile.AES_CM_128_HMAC_SHA1_80, bytes(range(31, 47)), bytes(range(131, 145))),
}
_ETH_P_IP = 0x0800
_PACKET_OUTGOING = 4


def _endpoint(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def forge_ahead(packet: bytes) -> bytes:
    """A copy whose sequence number lies 1024 ahead of the original's (modulo 2^16, as a wrap would be).

    libsrtp checks the replay window before the tag, so a forged copy of a packet already received counts as a
    replay; a copy pointing ahead is new to the window and only the tag can catch it. (Flipping one set bit
    instead failed for sequence numbers whose bits 8..14 were all set: 1 run in ~25 found no bit to flip.)
    """
    seq = int.from_bytes(packet[2:4], "big")
    forged = bytearray(packet)
    forged[2:4] = ((seq + 1024) % 65536).to_bytes(2, "big")
    return bytes(forged)


class Attacker:
    """Replays and bit-flips copies of SRTP packets addressed to `port` (sniffed from `iface`)."""

    def __init__(self, iface: str, port: int, every: int) -> None:
        self._sniff = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(_ETH_P_IP))
        self._sniff.bind((iface, 0))
        self._sniff.settimeout(0.2)
        self._send = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._port = port
        self._every = every
        self._stop = threading.Event()
        self.replayed = 0
        self.flipped = 0
        self._seen = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frame, meta = self._sniff.recvfrom(65535)
            except TimeoutError:
                continue
            if meta[2] == _PACKET_OUTGOING or len(frame) < 28 or frame[9] != 17:
                continue
            ihl = (frame[0] & 0x0F) * 4
            dst_ip = socket.inet_ntoa(frame[16:20])
            (dst_port,) = struct.unpack_from("!H", frame, ihl + 2)
            payload = frame[ihl + 8 :]
            # RTP only (RFC 5761: RTCP packet types 192..223 in the second byte).
            if dst_port != self._port or len(payload) < 40 or not 128 <= payload[0] <= 191:
                continue
            if 192 <= payload[1] <= 223:
                continue
            self._seen += 1
            if self._seen % self._every:
                continue
            self._send.sendto(payload, (dst_ip, dst_port))
            self.replayed += 1
            self._send.sendto(forge_ahead(payload), (dst_ip, dst_port))
            self.flipped += 1

    def stop(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sniff.close()
        self._send.close()
        return {"replayed": self.replayed, "flipped": self.flipped, "seen": self._seen}


class LeadIn:
    """Silence for a while, then the wrapped source: both peers are keyed before the speech starts."""

    paced = False

    def __init__(self, source: AudioSource, frames: int) -> None:
        self._source = source
        self._frames = frames

    def read_frame(self) -> bytes | None:
        if self._frames > 0:
            self._frames -= 1
            return SILENCE
        return self._source.read_frame()

    def close(self) -> None:
        self._source.close()


async def _main(ns: argparse.Namespace) -> dict[str, Any]:
    spec = ns.audio_in
    inner = WavSource(spec[5:], loop=False) if spec.startswith("file:") else open_source(spec)
    source = LeadIn(inner, round(ns.lead_in / 0.02))
    session = MediaSession(source, open_sink(ns.audio_out), complexity=ns.complexity)
    if ns.red:
        session.set_red(ns.red)
    address = await session.open(_endpoint(ns.bind), _endpoint(ns.remote))
    print(json.dumps({"event": "ready", "address": f"{address[0]}:{address[1]}"}), flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if line.strip() != "go":
        session.close()
        raise SystemExit("expected 'go' on stdin")
    attacker = Attacker(ns.iface, address[1], ns.attack_every) if ns.attack_every else None
    other = "b" if ns.role == "a" else "a"
    session.start_srtp(_KEYS[ns.role], _KEYS[other])
    await asyncio.sleep(ns.seconds)
    result: dict[str, Any] = {"event": "stats", **session.stats()}
    session.close()
    if attacker is not None:
        result["attack"] = attacker.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="tests.support.media_peer")
    parser.add_argument("--bind", required=True)
    parser.add_argument("--remote", required=True)
    parser.add_argument("--role", choices=["a", "b"], required=True)
    parser.add_argument("--audio-in", default="silence")
    parser.add_argument("--audio-out", default="null")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--complexity", type=int, default=9)
    parser.add_argument("--attack-every", type=int, default=0)
    parser.add_argument("--red", type=int, default=0, help="RED (RFC 2198) with this payload type")
    parser.add_argument("--iface", default="eth0")
    parser.add_argument("--lead-in", type=float, default=0.5, help="seconds of silence before the source")
    ns = parser.parse_args()
    print(json.dumps(asyncio.run(_main(ns))), flush=True)


if __name__ == "__main__":
    main()
