"""MediaSession on real loopback UDP sockets: keys gate everything, audio flows both ways, attacks count."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Callable

import numpy as np
import pytest

from tests.support.audio_check import dominant_frequency, rms_dbfs
from tests.support.media_peer import forge_ahead
from tests.support.relay import Impairment, UdpRelay
from tests.support.waiting import until
from zcall.media.audio import FrameRing, SilenceSource, ToneSource
from zcall.media.codec import OpusEncoder
from zcall.media.packetizer import Packetizer
from zcall.media.playout import is_quiet
from zcall.media.rtp import RtpPacket
from zcall.media.srtp import SrtpSender
from zcall.media.srtpkeys import SrtpKeys, SrtpProfile
from zcall.media.stream import MediaSession

KEY_A = SrtpKeys(SrtpProfile.AES_CM_128_HMAC_SHA1_80, bytes(range(16)), bytes(range(50, 64)))
KEY_B = SrtpKeys(SrtpProfile.AES_CM_128_HMAC_SHA1_80, bytes(range(16, 32)), bytes(range(70, 84)))
ZRTP_HELLO_LIKE = b"\x10\x00\x00\x01" + b"\x5a\x52\x54\x50" + b"\x00" * 20


class ListSink:
    """Keeps what is played, like a recording device would."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def write_frame(self, pcm: bytes) -> None:
        self.frames.append(pcm)

    def close(self) -> None:
        pass

    def pcm(self, skip: int = 0) -> np.ndarray:
        return np.frombuffer(b"".join(self.frames[skip:]), "<i2")


class RingSource:
    """A paced source fed from outside, as a device callback feeds DeviceSource (same listener hook)."""

    paced = True

    def __init__(self) -> None:
        self.ring = FrameRing(50)
        self.listener: Callable[[], None] | None = None

    def set_listener(self, listener: Callable[[], None] | None) -> None:
        self.listener = listener

    def read_frame(self) -> bytes | None:
        return self.ring.get()

    def close(self) -> None:
        pass


def _raw_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


def _drain(sock: socket.socket) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(sock.recv(4096))
        except BlockingIOError:
            return out


@pytest.fixture
async def pair() -> AsyncIterator[tuple[MediaSession, MediaSession, ListSink, ListSink]]:
    sink_a, sink_b = ListSink(), ListSink()
    a = MediaSession(ToneSource(1000), sink_a, rtcp_interval_s=0.3)
    b = MediaSession(ToneSource(440), sink_b, rtcp_interval_s=0.3)
    addr_a = await a.open(("127.0.0.1", 0))
    addr_b = await b.open(("127.0.0.1", 0), addr_a)
    a.set_remote(addr_b)
    yield a, b, sink_a, sink_b
    a.close()
    b.close()


async def test_nothing_is_sent_before_keys_and_capture_is_dropped() -> None:
    listener = _raw_socket()
    source = RingSource()
    session = MediaSession(source, ListSink())
    await session.open(("127.0.0.1", 0), listener.getsockname())
    for _ in range(10):
        source.ring.put(ToneSource(300).read_frame())
    await asyncio.sleep(0.3)
    assert _drain(listener) == []
    assert session.stats()["drops"]["captured-before-keys"] == 10
    session.start_srtp(KEY_A, KEY_B)
    source.ring.put(ToneSource(300).read_frame())
    await asyncio.sleep(0.1)
    sent = _drain(listener)
    # One protected RTP packet (12-byte header, Opus payload, 10-byte tag) plus the first RTCP report.
    rtp = [p for p in sent if not 192 <= p[1] <= 223]
    assert len(rtp) == 1
    first = RtpPacket.parse(rtp[0][:-10])
    assert first.marker and first.payload_type == 111 and len(first.payload) > 10
    # A device that hands over eight frames at once: only the newest three go out (bounded delay).
    for _ in range(8):
        source.ring.put(ToneSource(300).read_frame())
    await asyncio.sleep(0.1)
    rtp = [p for p in _drain(listener) if not 192 <= p[1] <= 223]
    session.close()
    listener.close()
    assert len(rtp) == 3
    assert session.stats()["drops"]["capture-backlog"] == 5
    seqs = [RtpPacket.parse(p[:-10]).sequence for p in rtp]
    assert seqs == [(first.sequence + i) & 0xFFFF for i in (1, 2, 3)]


async def test_key_packets_pass_both_ways() -> None:
    got: list[tuple[bytes, tuple[str, int]]] = []
    peer = _raw_socket()
    session = MediaSession(ToneSource(300), ListSink(), on_key_packet=lambda d, a: got.append((d, a)))
    addr = await session.open(("127.0.0.1", 0), peer.getsockname())
    peer.sendto(ZRTP_HELLO_LIKE, addr)
    session.send_key_packet(b"\x16\xfe\xfd" + bytes(20))  # a DTLS record, say
    await asyncio.sleep(0.1)
    assert got == [(ZRTP_HELLO_LIKE, peer.getsockname())]
    assert _drain(peer) == [b"\x16\xfe\xfd" + bytes(20)]
    session.close()
    peer.close()


Pair = tuple[MediaSession, MediaSession, ListSink, ListSink]


async def test_audio_flows_both_ways_with_rtcp(pair: Pair) -> None:
    a, b, sink_a, sink_b = pair
    a.start_srtp(KEY_A, KEY_B)
    b.start_srtp(KEY_B, KEY_A)
    # The sinks get a frame every tick, heard or not: wait for what the asserts below count, packets received.
    await until(lambda: all(s.stats()["received"] > 40 and s.stats()["rtt_ms"] is not None for s in (a, b)),
                what="audio and RTT both ways")
    for sink, hz in ((sink_b, 1000), (sink_a, 440)):
        pcm = sink.pcm(skip=10)
        assert len(pcm) > 30 * 960
        assert abs(dominant_frequency(pcm, 48000) - hz) < 5
        assert rms_dbfs(pcm) > -16  # the tone is 0.3 of full scale: about -13.5 dBFS
    stats_a, stats_b = a.stats(), b.stats()
    for stats in (stats_a, stats_b):
        assert stats["sent"] > 40 and stats["received"] > 40 and stats["lost"] == 0
        assert stats["counters"]["rtcp_received"] >= 1
        assert stats["rtt_ms"] is not None and 0 <= stats["rtt_ms"] < 100
        assert stats["drops"] == {}
    assert {"jitter_ms", "jitter_buffer_ms", "mos"} <= set(stats_a)


async def test_mute_sends_silence(pair: Pair) -> None:
    a, b, _, sink_b = pair
    a.start_srtp(KEY_A, KEY_B)
    b.start_srtp(KEY_B, KEY_A)
    a.set_muted(True)
    await until(lambda: b.stats()["received"] > 20, what="20 packets while muted")
    assert b.stats()["received"] > 20  # packets keep flowing: the far end does not see a dropout
    assert rms_dbfs(sink_b.pcm(skip=5)) < -60


async def test_wrong_keys_are_rejected_and_counted(
    pair: Pair,
) -> None:
    a, b, _, sink_b = pair
    a.start_srtp(KEY_A, KEY_B)
    b.start_srtp(KEY_B, KEY_B)  # b expects the wrong key from a
    await until(lambda: b.stats()["drops"].get("srtp-auth", 0) > 15, what="16 rejected packets")
    drops = b.stats()["drops"]
    assert drops.get("srtp-auth", 0) > 15
    assert b.stats()["received"] == 0
    assert rms_dbfs(sink_b.pcm()) == float("-inf")


async def test_replays_bit_flips_and_garbage_are_dropped_while_playback_goes_on(
    pair: Pair,
) -> None:
    a, b, _, sink_b = pair
    # An attacker who sees a's traffic: capture it on a socket of ours, then forward copies to b.
    tap = _raw_socket()
    a.set_remote(tap.getsockname())
    a.start_srtp(KEY_A, KEY_B)
    b.start_srtp(KEY_B, KEY_A)
    sender = _raw_socket()
    flips = replays = 0
    for _ in range(40):
        await asyncio.sleep(0.02)
        for packet in _drain(tap):
            if 192 <= packet[1] <= 223:
                sender.sendto(packet, b.local_address)
                continue
            # libsrtp checks the replay window before the tag: a forged copy of a packet already seen counts
            # as a replay, so the payload-flipped copy goes first and the header-flipped one gets a new index.
            bad = bytearray(packet)
            bad[15] ^= 0x80
            sender.sendto(bytes(bad), b.local_address)
            sender.sendto(packet, b.local_address)
            sender.sendto(packet, b.local_address)
            replays += 1
            flips += 1
            sender.sendto(forge_ahead(packet), b.local_address)
            flips += 1
    sender.sendto(b"\xff" * 30, b.local_address)  # not RTP, RTCP, ZRTP, DTLS or STUN
    sender.sendto(b"\x80", b.local_address)  # too short for anything
    await asyncio.sleep(0.1)
    stats = b.stats()
    assert replays > 20
    assert stats["srtp_rejects"] == {"replay": replays, "auth": flips}
    assert stats["drops"]["srtp-replay"] == replays and stats["drops"]["srtp-auth"] == flips
    assert sum(stats["drops"].values()) == replays + flips + 2
    assert abs(dominant_frequency(sink_b.pcm(skip=10), 48000) - 1000) < 5
    tap.close()
    sender.close()


async def test_unencrypted_rtp_is_never_played(pair: Pair) -> None:
    _, b, _, _ = pair
    b.start_srtp(KEY_B, KEY_A)
    plain = RtpPacket(111, 1, 960, 1234, bytes(40)).serialize()
    attacker = _raw_socket()
    for _ in range(5):
        attacker.sendto(plain, b.local_address)
    # Protected with a key b does not expect (an attacker's own SRTP).
    forged = SrtpSender(SrtpKeys(SrtpProfile.AES_CM_128_HMAC_SHA1_80, bytes(16), bytes(14)))
    attacker.sendto(forged.protect(plain), b.local_address)
    await asyncio.sleep(0.1)
    assert b.stats()["received"] == 0
    assert b.stats()["drops"]["srtp-auth"] == 6
    attacker.close()


async def test_bye_on_close(pair: Pair) -> None:
    a, b, _, _ = pair
    a.start_srtp(KEY_A, KEY_B)
    b.start_srtp(KEY_B, KEY_A)
    await asyncio.sleep(0.1)
    a.close()
    await asyncio.sleep(0.05)
    assert b.stats()["counters"]["bye_received"] == 1


async def test_payload_types_from_both_sdps(pair: Pair) -> None:
    a, b, _, _ = pair
    a.set_payload_type(96)  # b's SDP gave Opus 96: a sends with it
    a.start_srtp(KEY_A, KEY_B)
    b.start_srtp(KEY_B, KEY_A)
    await asyncio.sleep(0.2)
    assert b.stats()["received"] == 0 and b.stats()["drops"]["payload-type"] > 5  # b only knows its own 111
    b.set_payload_type(96)  # now b has read a's SDP too
    await asyncio.sleep(0.3)
    assert b.stats()["received"] > 8
    with pytest.raises(ValueError):
        a.set_payload_type(128)


async def test_a_captured_frame_leaves_at_once_from_another_thread() -> None:
    listener_sock = _raw_socket()
    source = RingSource()
    session = MediaSession(source, ListSink())
    await session.open(("127.0.0.1", 0), listener_sock.getsockname())
    session.start_srtp(KEY_A, KEY_B)
    assert source.listener is not None
    notify = source.listener

    def audio_thread() -> None:
        source.ring.put(ToneSource(300).read_frame())
        notify()

    for _ in range(5):
        await asyncio.sleep(0.03)
        threading.Thread(target=audio_thread).start()
    await asyncio.sleep(0.05)
    session.close()
    sent = [p for p in _drain(listener_sock) if not 192 <= p[1] <= 223]
    listener_sock.close()
    assert len(sent) == 5
    # Sent from the wake-up, not at the next tick (a tick may rarely win the race to the ring).
    assert session.stats()["counters"]["sent_on_wakeup"] >= 4
    assert source.listener is None  # close() unhooks the device


async def test_dtx_sends_little_during_silence() -> None:
    listener = _raw_socket()
    session = MediaSession(SilenceSource(), ListSink(), dtx=True)
    await session.open(("127.0.0.1", 0), listener.getsockname())
    session.start_srtp(KEY_A, KEY_B)
    await asyncio.sleep(1.0)
    session.close()
    rtp = [p for p in _drain(listener) if not 192 <= p[1] <= 223]
    listener.close()
    # 50 ticks of silence: DTX leaves a comfort-noise update every 400 ms or so, not 50 packets.
    assert 1 <= len(rtp) <= 12
    assert session.stats()["sent"] == len(rtp)


async def test_fec_strength_follows_the_loss_the_far_end_reports() -> None:
    """b reports a's loss in RTCP; a's encoder then expects that much loss (FEC strength)."""
    sink_b = ListSink()
    a = MediaSession(ToneSource(500), ListSink(), rtcp_interval_s=0.2)
    b = MediaSession(ToneSource(700), sink_b, rtcp_interval_s=0.2)
    addr_a = await a.open(("127.0.0.1", 0))
    addr_b = await b.open(("127.0.0.1", 0))
    relay = UdpRelay(to_a=addr_a, to_b=addr_b, seed=3, a_to_b=Impairment(loss=0.25), b_to_a=Impairment())
    relay.start()
    try:
        a.set_remote(relay.address_a)
        b.set_remote(relay.address_b)
        assert a.stats()["fec_expected_loss_pct"] == 0  # a clean path codes best without FEC
        a.start_srtp(KEY_A, KEY_B)
        b.start_srtp(KEY_B, KEY_A)
        await asyncio.sleep(1.5)
    finally:
        relay.stop()
        a.close()
        b.close()
    assert b.stats()["lost"] > 10
    assert 12 <= a.stats()["fec_expected_loss_pct"] <= 30 and a.stats()["fec"]
    assert b.stats()["playout"]["fec_recovered"] > 5


def _tone_pcm(dbfs: float, hz: float = 440.0) -> bytes:
    amplitude = 32768 * 10 ** (dbfs / 20) * np.sqrt(2)  # a sine's RMS is its amplitude over sqrt(2)
    return (np.sin(2 * np.pi * hz * np.arange(960) / 48000) * amplitude).astype("<i2").tobytes()


def test_quiet_means_below_speech_level() -> None:
    # The jitter buffer drops a frame only after a run of these: a pause, never a syllable.
    assert is_quiet(bytes(1920)) and is_quiet(b"")
    assert is_quiet(_tone_pcm(-50.0)) and is_quiet(_tone_pcm(-46.0))
    assert not is_quiet(_tone_pcm(-44.0)) and not is_quiet(_tone_pcm(-20.0))
    assert not is_quiet(_tone_pcm(-3.0, hz=12000.0))  # no overflow at full scale, any frequency
    rng = np.random.default_rng(3)
    room = (rng.normal(0, 32768 * 10 ** (-60 / 20), 960)).astype("<i2").tobytes()
    assert is_quiet(room)


def test_fec_goes_off_only_after_several_clean_reports() -> None:
    out = Packetizer(1, 111, OpusEncoder(32000, 9, True, False, 0), dtx=False)
    assert not out.encoder.fec
    out.follow_reported_loss(26)  # about 10 %
    assert out.encoder.fec and out.encoder.expected_loss_pct == 11
    out.follow_reported_loss(1)  # a trace of loss still asks for the minimum strength
    assert out.encoder.expected_loss_pct == 3
    for _ in range(2):
        out.follow_reported_loss(0)
        assert out.encoder.fec
    out.follow_reported_loss(0)
    assert not out.encoder.fec and out.encoder.expected_loss_pct == 0


@pytest.mark.parametrize("packet_ms", [10, 20, 40, 60])
def test_packets_of_any_duration_are_decoded_whole(packet_ms: int) -> None:
    """A peer's 10/40/60 ms packets play as the continuous tone they carry: not padded with silence, not
    split, one 20 ms frame per tick (fake clock, packets fed straight into the receive path)."""
    import opuslib

    clock = [0.0]
    sink = ListSink()
    session = MediaSession(SilenceSource(), sink, clock=lambda: clock[0])
    session.start_srtp(KEY_A, KEY_B)
    sender = SrtpSender(KEY_B, 0x1234)
    encoder = opuslib.Encoder(48000, 1, opuslib.APPLICATION_VOIP)
    samples = 48 * packet_ms
    tone = (np.sin(2 * np.pi * 440 * np.arange(48000 * 3) / 48000) * 8000).astype("<i2")
    packets = [encoder.encode(tone[i : i + samples].tobytes(), samples) for i in range(0, len(tone), samples)]
    ticks, sent = 140, 0
    for tick in range(ticks):
        clock[0] = tick * 0.020
        while (sent + 1) * packet_ms <= tick * 20:  # each packet once all of it was captured
            rtp = RtpPacket(111, sent, sent * samples, 0x1234, packets[sent], marker=sent == 0)
            session._on_datagram(sender.protect(rtp.serialize()), ("127.0.0.1", 9))
            sent += 1
        session.tick(clock[0])
    playout = session.stats()["playout"]
    assert len(sink.frames) == ticks
    assert playout["concealed"] == 0 and playout["lost"] == 0, playout
    pcm = sink.pcm(skip=20).astype(np.float64)
    blocks = pcm[: len(pcm) // 240 * 240].reshape(-1, 240)  # 5 ms blocks: a padded gap would show
    assert np.sqrt((blocks**2).mean(axis=1)).min() > 2000
    assert abs(dominant_frequency(sink.pcm(skip=20), 48000) - 440) < 5


KEY_C = SrtpKeys(SrtpProfile.AES_CM_128_HMAC_SHA1_80, bytes(range(32, 48)), bytes(range(90, 104)))
KEY_D = SrtpKeys(SrtpProfile.AES_CM_128_HMAC_SHA1_80, bytes(range(48, 64)), bytes(range(110, 124)))


async def test_rtcp_on_its_own_port_with_its_own_keys(pair: Pair) -> None:
    """No mux (RFC 5761 declined): RTCP leaves and arrives on the second ports, SRTCP under the RTCP port's
    own DTLS keys (RFC 5764 §4.1); nothing RTCP-like is left on the RTP ports, and RTT is measured."""
    a, b, _, _ = pair
    rtcp_a = await a.open_rtcp(("127.0.0.1", 0))
    rtcp_b = await b.open_rtcp(("127.0.0.1", 0))
    a.use_rtcp_port(rtcp_b, own_keys=True)
    b.use_rtcp_port(rtcp_a, own_keys=True)
    a.start_srtp(KEY_A, KEY_B)
    b.start_srtp(KEY_B, KEY_A)
    await asyncio.sleep(0.5)
    assert not a.rtcp_secure and a.stats()["counters"].get("rtcp_sent", 0) == 0  # no SRTCP keys yet
    a.start_srtcp(KEY_C, KEY_D)
    b.start_srtcp(KEY_D, KEY_C)
    await until(lambda: None not in (a.stats()["rtt_ms"], b.stats()["rtt_ms"]), what="an RTT both ways")
    for stats in (a.stats(), b.stats()):
        assert stats["counters"]["rtcp_received"] >= 1 and stats["counters"]["rtcp_sent"] >= 1
        assert stats["rtt_ms"] is not None
        assert stats["drops"] == {}


async def test_rtcp_port_keyed_with_the_rtp_keys_and_closed_by_mux(pair: Pair) -> None:
    a, b, _, _ = pair
    rtcp_a = await a.open_rtcp(("127.0.0.1", 0))
    rtcp_b = await b.open_rtcp(("127.0.0.1", 0))
    a.use_rtcp_port(rtcp_b, own_keys=False)  # ZRTP: one set of keys for both
    b.use_rtcp_port(rtcp_a, own_keys=False)
    a.start_srtp(KEY_A, KEY_B)
    b.start_srtp(KEY_B, KEY_A)
    await until(lambda: a.stats()["rtt_ms"] is not None and b.stats()["counters"].get("rtcp_received", 0),
                what="RTCP both ways")
    assert a.stats()["rtt_ms"] is not None and b.stats()["counters"]["rtcp_received"] >= 1
    probe = _raw_socket()
    a.use_rtcp_mux()
    probe.sendto(b"\x80\xc8" + bytes(30), rtcp_a)  # the closed RTCP port takes nothing any more
    await asyncio.sleep(0.1)
    assert a.stats()["drops"] == {}
    probe.close()


async def test_the_rtcp_port_hands_dtls_to_its_own_handler_and_drops_the_rest() -> None:
    got: list[bytes] = []
    session = MediaSession(ToneSource(300), ListSink(), on_rtcp_key_packet=lambda d, a: got.append(d))
    await session.open(("127.0.0.1", 0))
    rtcp = await session.open_rtcp(("127.0.0.1", 0))
    peer = _raw_socket()
    for packet in (b"\x16\xfe\xfd" + bytes(20), ZRTP_HELLO_LIKE, b"\x80\x6f" + bytes(20)):
        peer.sendto(packet, rtcp)
    await asyncio.sleep(0.1)
    assert got == [b"\x16\xfe\xfd" + bytes(20)]
    assert sum(session.stats()["drops"].values()) == 2  # ZRTP and RTP have no business on the RTCP port
    session.use_rtcp_port(peer.getsockname(), own_keys=True)
    session.send_rtcp_key_packet(b"\x16\xfe\xfd" + bytes(5))
    stranger = _raw_socket()
    stranger.sendto(b"\x16\xfe\xfd" + bytes(30), rtcp)  # once the SDP named the peer, only it is heard
    await asyncio.sleep(0.05)
    assert _drain(peer) == [b"\x16\xfe\xfd" + bytes(5)]
    assert got == [b"\x16\xfe\xfd" + bytes(20)]
    assert session.stats()["drops"]["rtcp-port-dtls-foreign-source"] == 1
    session.close()
    peer.close()
    stranger.close()
