"""An active man in the middle built from zcall's own ZRTP cores (issue 12's strongest attacker).

It terminates ZRTP on both sides (one ZrtpSession facing the caller, one facing the callee), so each end
agrees keys with it, and bridges the audio: SRTP from one side is decrypted with that side's keys and
re-encrypted with the other's. What should give it away: the two ends' SAS words differ, and an end that
holds retained secrets for the impersonated ZID raises the cache alarm.

`ZrtpMitm` is the sans-I/O core (tests drive it in memory). `python -m tests.support.mitm --listen IP:PORT
--to IP:PORT [--claim-zids ZID_OF_CALLER ZID_OF_CALLEE]` runs it in a namespace: SIP to the listen port is
forwarded to the callee with each SDP's address, port and a=zrtp-hash rewritten to the MITM's own media
ports and Hellos; media is relayed as above. It prints "ready", then a JSON line per side's SAS once both
are secure. With --claim-zids each side of the MITM announces the ZID of the end it impersonates.

With --transparent it is only a hop on the media path: ZRTP and SRTP are relayed as they are (a=zrtp-hash
kept), except ZRTP messages named by --drop (e.g. --drop Conf2ACK: a lossy path that loses every one);
it prints {"dropped": TYPE} the first time it drops one.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import selectors
import socket
import sys
import time
from collections.abc import Callable

from zcall.media.demux import PacketKind, classify
from zcall.media.srtp import SrtpError, SrtpReceiver, SrtpSender
from zcall.media.srtpkeys import SrtpKeys, SrtpProfile
from zcall.zrtp.events import PeerIdentified, SecureReady
from zcall.zrtp.session import ZrtpSession

Addr = tuple[str, int]


class ZrtpMitm:
    """Two ZRTP endpoints back to back: `toward_a` talks to end A, `toward_b` to end B."""

    def __init__(self, zid_toward_a: bytes | None = None, zid_toward_b: bytes | None = None) -> None:
        self.toward_a = ZrtpSession(zid_toward_a or os.urandom(12), ssrc=random.getrandbits(32))
        self.toward_b = ZrtpSession(zid_toward_b or os.urandom(12), ssrc=random.getrandbits(32))
        self.ready: dict[str, SecureReady] = {}
        self._rx: dict[str, SrtpReceiver] = {}
        self._tx: dict[str, SrtpSender] = {}

    def session(self, side: str) -> ZrtpSession:
        return self.toward_a if side == "a" else self.toward_b

    def pump(self, side: str, now: float) -> None:
        """Act on one side's events: no retained secrets (it has none), keys kept for the bridge."""
        session = self.session(side)
        while (event := session.next_event()) is not None:
            if isinstance(event, PeerIdentified) and event.needs_secrets:
                session.provide_secrets(event.peer_zid, None, now)
            elif isinstance(event, SecureReady):
                self.ready[side] = event
                profile = SrtpProfile(event.srtp_profile)
                self._rx[side] = SrtpReceiver(SrtpKeys(profile, event.remote_key, event.remote_salt))
                self._tx[side] = SrtpSender(SrtpKeys(profile, event.local_key, event.local_salt))

    def bridge(self, from_side: str, data: bytes) -> bytes | None:
        """SRTP/SRTCP from one end, re-encrypted for the other (None until both sides are secure)."""
        to_side = "b" if from_side == "a" else "a"
        rx, tx = self._rx.get(from_side), self._tx.get(to_side)
        if rx is None or tx is None:
            return None
        try:
            if classify(data) is PacketKind.RTCP:
                return tx.protect_rtcp(rx.unprotect_rtcp(data))
            return tx.protect(rx.unprotect(data))
        except SrtpError:
            return None


# --- the process: SIP forwarding with SDP rewritten, media relayed -----------------------------------------

_C_LINE = re.compile(rb"(?m)^c=IN IP4 [0-9.]+")
_M_AUDIO = re.compile(rb"(?m)^m=audio (\d+)")
_HASH = re.compile(rb"(?m)^a=zrtp-hash:[^\r\n]+")


def rewrite_sdp(message: bytes, media: Addr, zrtp_hash: str | None) -> tuple[bytes, Addr | None]:
    """The message with its SDP pointing at `media` and carrying `zrtp_hash`; and the address it had."""
    head, sep, body = message.partition(b"\r\n\r\n")
    ports = _M_AUDIO.search(body)
    hosts = _C_LINE.search(body)
    if not sep or ports is None or hosts is None:
        return message, None
    original = (hosts.group(0).split()[-1].decode(), int(ports.group(1)))
    body = _C_LINE.sub(b"c=IN IP4 " + media[0].encode(), body)
    body = _M_AUDIO.sub(b"m=audio %d" % media[1], body)
    if zrtp_hash is not None:
        body = _HASH.sub(b"a=zrtp-hash:" + zrtp_hash.encode(), body)
    head = re.sub(rb"(?im)^(content-length|l)\s*:\s*\d+", lambda m: m.group(1) + b": %d" % len(body), head)
    return head + sep + body, original


def _addr(text: str) -> Addr:
    host, _, port = text.rpartition(":")
    return host, int(port)


def run(
    listen: Addr,
    target: Addr,
    claim: tuple[bytes, bytes] | None,
    out: Callable[[str], None],
    transparent: bool = False,
    drop: frozenset[bytes] = frozenset(),
) -> None:
    # claim = (caller's ZID, callee's ZID): the side facing the caller pretends to be the callee and back.
    mitm = ZrtpMitm(claim[1], claim[0]) if claim else ZrtpMitm()
    sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sip.bind(listen)
    media = {side: socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for side in "ab"}
    for sock in media.values():
        sock.bind((listen[0], 0))
    local = {side: sock.getsockname() for side, sock in media.items()}
    remote: dict[str, Addr] = {}
    caller: Addr | None = None
    selector = selectors.DefaultSelector()
    selector.register(sip, selectors.EVENT_READ, "sip")
    for side, sock in media.items():
        selector.register(sock, selectors.EVENT_READ, side)
    reported = False
    dropped: set[bytes] = set()
    out("ready")

    def flush(side: str, now: float) -> None:
        mitm.pump(side, now)
        for datagram in mitm.session(side).datagrams_to_send(now):
            if side in remote:
                media[side].sendto(datagram, remote[side])

    while True:
        now = time.monotonic()
        timers = [t for t in (mitm.toward_a.get_timer(), mitm.toward_b.get_timer()) if t is not None]
        timeout = max(0.0, min(timers) - now) if timers else 1.0
        for key, _ in selector.select(timeout):
            sock, what = key.fileobj, key.data
            assert isinstance(sock, socket.socket)
            data, source = sock.recvfrom(65535)
            now = time.monotonic()
            if what == "sip":
                if source == target:  # from the callee, to the caller: it must see our side "a"
                    hash_a = None if transparent else mitm.toward_a.zrtp_hash_attribute()
                    data, seen = rewrite_sdp(data, local["a"], hash_a)
                    if seen is not None:
                        remote["b"] = seen
                        if not transparent:
                            mitm.toward_b.start(now)
                        flush("b", now)
                    if caller is not None:
                        sip.sendto(data, caller)
                else:  # from the caller, to the callee: it must see our side "b"
                    caller = source
                    hash_b = None if transparent else mitm.toward_b.zrtp_hash_attribute()
                    data, seen = rewrite_sdp(data, local["b"], hash_b)
                    if seen is not None:
                        remote["a"] = seen
                        if not transparent:
                            mitm.toward_a.start(now)
                    sip.sendto(data, target)
                continue
            kind = classify(data)
            other = "b" if what == "a" else "a"
            remote.setdefault(what, source)
            if transparent:
                mtype = data[16:24].rstrip()
                if kind is PacketKind.ZRTP and mtype in drop:
                    if mtype not in dropped:
                        dropped.add(mtype)
                        out(json.dumps({"dropped": mtype.decode()}))
                elif other in remote:
                    media[other].sendto(data, remote[other])
                continue
            if kind is PacketKind.ZRTP:
                mitm.session(what).receive(data, now)
                flush(what, now)
            elif kind in (PacketKind.RTP, PacketKind.RTCP):
                bridged = mitm.bridge(what, data)
                if bridged is not None and other in remote:
                    media[other].sendto(bridged, remote[other])
        now = time.monotonic()
        for side in "ab":
            session = mitm.session(side)
            timer = session.get_timer()
            if timer is not None and timer <= now:
                session.handle_timer(now)
            flush(side, now)
        if not transparent and not reported and len(mitm.ready) == 2:
            reported = True
            sides = {s: {"sas": r.sas_text, "peer_zid": r.peer_zid.hex()} for s, r in mitm.ready.items()}
            out(json.dumps(sides))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listen", required=True, type=_addr)
    parser.add_argument("--to", required=True, type=_addr)
    parser.add_argument("--claim-zids", nargs=2, metavar=("CALLER_ZID", "CALLEE_ZID"))
    parser.add_argument("--transparent", action="store_true", help="relay ZRTP and SRTP as they are")
    parser.add_argument("--drop", action="append", default=[], help="a ZRTP message type not to relay")
    args = parser.parse_args(argv)
    claim = None
    if args.claim_zids:
        claim = (bytes.fromhex(args.claim_zids[0]), bytes.fromhex(args.claim_zids[1]))
    drop = frozenset(name.encode() for name in args.drop)
    run(args.listen, args.to, claim, lambda line: print(line, flush=True), args.transparent, drop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
