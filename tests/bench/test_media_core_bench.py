"""Per-packet CPU cost of the media core, measured with time.process_time over many packets: RTP parse and
serialize, SRTP protect / unprotect (libsrtp), jitter-buffer push + pop, stats update, and the whole receive
step. Prints microseconds per packet, the ratio to the anchor and the share of one 20 ms frame interval;
asserts only that the work was done.

Anchor: 20 µs per packet for a step (one direction of a call is 50 packets/s, so that is 0.1 % of one core).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from zcall.media.jitter import JitterBuffer, PlayoutKind
from zcall.media.rtp import RtpPacket
from zcall.media.srtp import SrtpReceiver, SrtpSender
from zcall.media.srtpkeys import SrtpKeys, SrtpProfile, key_length, salt_length
from zcall.media.stats import MediaStats

PACKETS = 20_000
PAYLOAD = bytes(range(80))  # a 32 kbit/s Opus frame is about 80 octets
ANCHOR_US = 20.0
FRAME_US = 20_000.0


def per_packet_us(work: Callable[[], int]) -> float:
    """CPU time of work() divided by PACKETS; work returns how many packets it handled."""
    start = time.process_time()
    done = work()
    elapsed = time.process_time() - start
    assert done == PACKETS
    return elapsed / PACKETS * 1e6


def report(name: str, us: float) -> None:
    share = 100 * us / FRAME_US
    print(f"  {name:<40} {us:7.2f} µs/packet  {us / ANCHOR_US:5.2f}x anchor  {share:6.3f} % of a frame")


def keys_for(profile: SrtpProfile) -> SrtpKeys:
    return SrtpKeys(profile, bytes(range(key_length(profile))), bytes(range(salt_length(profile))))


def test_media_core_per_packet_cost() -> None:
    packets = [RtpPacket(111, i & 0xFFFF, i * 960 & 0xFFFFFFFF, 0xCAFEBABE, PAYLOAD) for i in range(PACKETS)]
    wires = [p.serialize() for p in packets]
    print(f"\nmedia core, {PACKETS} packets of {len(PAYLOAD)} payload octets:")

    report("RTP serialize", per_packet_us(lambda: sum(1 for p in packets if p.serialize())))
    report("RTP parse", per_packet_us(lambda: sum(1 for w in wires if RtpPacket.parse(w))))

    for profile in (SrtpProfile.AES_CM_128_HMAC_SHA1_80, SrtpProfile.AES_256_CM_HMAC_SHA1_80,
                    SrtpProfile.AEAD_AES_128_GCM):
        sender, receiver = SrtpSender(keys_for(profile)), SrtpReceiver(keys_for(profile))
        protected: list[bytes] = []
        report(f"SRTP protect {profile.value}",
               per_packet_us(lambda s=sender, out=protected: len(out.extend(map(s.protect, wires)) or out)))
        report(f"SRTP unprotect {profile.value}",
               per_packet_us(lambda r=receiver, src=protected: sum(1 for d in src if r.unprotect(d))))

    def jitter() -> int:
        jb = JitterBuffer()
        for i, packet in enumerate(packets):
            jb.push(packet, i * 20.0 + 3.0)
            jb.pop(i * 20.0 + 10.0)
        return jb.played

    report("jitter push + pop", per_packet_us(jitter))

    rng = random.Random(4)
    # The lossy test's path: 10 % loss and up to 30 ms of jitter (the buffer's deadline checks and FEC run).
    kept = [i for i in range(PACKETS) if rng.random() >= 0.1]
    impaired = sorted((i * 20.0 + 1.0 + rng.random() * 30.0, i) for i in kept)

    def jitter_impaired() -> int:
        jb, index = JitterBuffer(), 0
        for tick in range(PACKETS):
            now = tick * 20.0 + 10.0
            while index < len(impaired) and impaired[index][0] <= now:
                jb.push(packets[impaired[index][1]], impaired[index][0])
                index += 1
            jb.pop(now)
        return PACKETS

    report("jitter push+pop, 10 % loss, 30 ms jitter", per_packet_us(jitter_impaired))

    def stats() -> int:
        st = MediaStats()
        for i, packet in enumerate(packets):
            st.on_received(packet, i * 0.02)
        return st.packets_received

    report("stats on_received", per_packet_us(stats))

    keys = keys_for(SrtpProfile.AES_CM_128_HMAC_SHA1_80)
    incoming = [SrtpSender(keys).protect(w) for w in wires]

    def receive_step() -> int:
        rx, jb, st = SrtpReceiver(keys), JitterBuffer(), MediaStats()
        for i, data in enumerate(incoming):
            packet = RtpPacket.parse(rx.unprotect(data))
            st.on_received(packet, i * 0.02)
            jb.push(packet, i * 20.0 + 3.0)
            if jb.pop(i * 20.0 + 10.0).kind is not PlayoutKind.PLAY:
                return -1
        return rx.accepted

    report("receive: unprotect+parse+stats+jitter", per_packet_us(receive_step))
