"""Packet captures with tshark on a test host's interface, and the check that no plain RTP ever left.

SRTP looks like RTP on the wire, so "plain or encrypted" is told by content: an Opus stream in the clear
repeats its TOC byte (the first payload byte) in nearly every packet, while an encrypted payload's first
byte is uniformly random. A stream whose most common first byte covers over half its packets is plain RTP.
"""

from __future__ import annotations

import collections
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.netns import Host
from tests.support.prereq import require_binary

ZRTP_COOKIE = bytes.fromhex("5a525450")
PLAIN_SHARE = 0.5


@dataclass
class MediaReport:
    zrtp: int = 0
    rtp_like: int = 0
    rtcp_like: int = 0
    dtls: int = 0
    other: int = 0
    # per (src, dst, ssrc): the first payload bytes seen
    streams: dict[tuple[str, str, int], list[int]] = field(default_factory=dict)
    # (src, dst, ssrc) of the ZRTP packets: RFC 6189 §5 wants the SSRC of the RTP stream they key
    zrtp_streams: set[tuple[str, str, int]] = field(default_factory=set)

    def plain_streams(self, min_packets: int = 20) -> list[tuple[str, str, int]]:
        plain = []
        for key, firsts in self.streams.items():
            if len(firsts) < min_packets:
                continue
            _, top = collections.Counter(firsts).most_common(1)[0]
            if top / len(firsts) > PLAIN_SHARE:
                plain.append(key)
        return plain


@contextmanager
def capture(host: Host, path: Path, udp_filter: str = "udp and not port 5353") -> Iterator[Path]:
    """Capture `udp_filter` on the host's interface into `path` while the block runs."""
    require_binary("tshark")
    proc = host.popen(
        ["tshark", "-q", "-i", host.iface, "-f", udp_filter, "-w", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 10
    while not path.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)  # dumpcap writes the file header before the capture is fully armed
    try:
        yield path
    finally:
        time.sleep(0.3)
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def media_report(path: Path, sip_ports: tuple[int, ...] = (5060,)) -> MediaReport:
    """Classify every UDP payload in a capture that is not SIP or mDNS (RFC 7983 first-byte rules)."""
    require_binary("tshark")
    fields = ["ip.src", "ip.dst", "udp.srcport", "udp.dstport", "udp.payload"]
    out = subprocess.run(
        ["tshark", "-r", str(path), "-Y", "udp", "-T", "fields", *[a for f in fields for a in ("-e", f)]],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    report = MediaReport()
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) != 5 or not parts[4]:
            continue
        src, dst, sport, dport, hexdata = parts
        if int(sport) in sip_ports or int(dport) in sip_ports:
            continue
        data = bytes.fromhex(hexdata.replace(":", ""))
        if 64 <= data[0] <= 79 and len(data) > 4:  # TURN ChannelData (RFC 8656 §12.4): what it carries
            data = data[4 : 4 + int.from_bytes(data[2:4], "big")]
            if not data:
                continue
        first = data[0]
        if len(data) >= 8 and data[4:8] == ZRTP_COOKIE and first == 0x10:
            report.zrtp += 1
            report.zrtp_streams.add((src, dst, int.from_bytes(data[8:12], "big")))
        elif 20 <= first <= 63:
            report.dtls += 1
        elif 128 <= first <= 191 and len(data) >= 12:
            if 192 <= data[1] <= 223:
                report.rtcp_like += 1
                continue
            report.rtp_like += 1
            header = 12 + 4 * (first & 0x0F)
            if first & 0x10 and len(data) >= header + 4:
                header += 4 + 4 * int.from_bytes(data[header + 2 : header + 4], "big")
            if len(data) > header:
                ssrc = int.from_bytes(data[8:12], "big")
                report.streams.setdefault((src, dst, ssrc), []).append(data[header])
        else:
            report.other += 1
    return report


def use_srtp_hellos(path: Path) -> int:
    """DTLS ClientHello/ServerHello records carrying the use_srtp extension (type 14, RFC 5764 §4.1.1)."""
    require_binary("tshark")
    out = subprocess.run(
        [
            "tshark",
            "-r",
            str(path),
            "-Y",
            "dtls.handshake.extension.type == 14",
            "-T",
            "fields",
            "-e",
            "frame.number",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return len(out.split())
