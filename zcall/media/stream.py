"""One call's media on one UDP socket (RTP, RTCP, ZRTP, DTLS, STUN multiplexed, RFC 7983), and a second one
for RTCP when the peer does not multiplex (RFC 5761): then DTLS-SRTP keys RTCP with a handshake of its own
on that port (RFC 5764 §4.1), and ZRTP's keys serve both.

capture → Opus → RTP → SRTP → socket, and socket → SRTP → jitter buffer → Opus (decode/FEC/PLC) → playback.
The event loop owns every protocol object (codec, libsrtp sessions, jitter buffer, stats); audio devices
meet it only through their bounded rings. A 20 ms tick drives both directions: it takes captured frames (or
reads an unpaced file/tone source once per tick, which paces it) and pops the jitter buffer once. Nothing is
sent before start_srtp(): plain RTP never leaves, and audio captured before then is dropped (counted).

Addresses: where we send is set from the SDP (set_remote) and never moves on what arrives. Key-agreement
packets (ZRTP, DTLS, STUN) from any other address are dropped and counted, since before keys exist nothing
else tells a third host from the peer. SRTP that authenticates is played from wherever it comes (counted when
it is not the peer's address) but moves nothing either.

This module routes datagrams and runs the tick; captured audio is paced by pacer.py, our RTP packets are
made in packetizer.py, received audio is played out by playout.py, and our RTCP is built in rtcpsend.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from zcall.media.audio import AudioSink, AudioSource
from zcall.media.codec import FRAME_BYTES, OpusEncoder
from zcall.media.demux import PacketKind, classify_with_reason
from zcall.media.pacer import CapturePacer
from zcall.media.packetizer import Packetizer
from zcall.media.playout import Playout
from zcall.media.rtcpsend import RTCP_INTERVAL_S, rtcp_delay, sender_report
from zcall.media.rtp import Bye, ReceiverReport, RtpPacket, RtpParseError, SenderReport, parse_rtcp_compound
from zcall.media.srtp import SrtpError, SrtpReceiver, SrtpSender
from zcall.media.srtpkeys import SrtpKeys
from zcall.media.stats import MediaStats
from zcall.net import Addr, DatagramPort

KeyPacketHandler = Callable[[bytes, Addr], None]

TICK_S = 0.020
_MAX_CATCH_UP_TICKS = 10  # after a stall longer than this, resynchronise instead of bursting


class _Port(asyncio.DatagramProtocol):
    """One UDP port of the call: hands each datagram to `on_datagram`, counts socket errors in `drops`."""

    def __init__(self, on_datagram: Callable[[bytes, Any], None], drops: Counter[str]) -> None:
        self._on_datagram = on_datagram
        self._drops = drops

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: the peer is not there yet; count it, keep going.
        self._drops["socket-error"] += 1


class MediaSession:
    """Media for one call: `await open(bind, remote)`, then keys via start_srtp(); close() ends it."""

    def __init__(
        self,
        source: AudioSource,
        sink: AudioSink,
        *,
        on_key_packet: KeyPacketHandler | None = None,
        on_first_srtp: Callable[[], None] | None = None,
        on_rtcp_key_packet: KeyPacketHandler | None = None,
        payload_type: int = 111,
        bitrate: int = 32000,
        complexity: int = 9,
        fec: bool = True,
        dtx: bool = False,
        expected_loss_pct: int = 0,
        jitter_min_ms: int = 20,
        jitter_max_ms: int = 200,
        rtcp_interval_s: float = RTCP_INTERVAL_S,
        cname: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._sink = sink
        self._on_key_packet = on_key_packet
        # The first SRTP packet that authenticates: ZRTP's implicit Conf2ACK (RFC 6189 §4.6).
        self._on_first_srtp = on_first_srtp
        self._on_rtcp_key_packet = on_rtcp_key_packet
        self.drops: Counter[str] = Counter()
        self.counters: Counter[str] = Counter()
        ssrc = int.from_bytes(os.urandom(4), "big")
        encoder = OpusEncoder(bitrate, complexity, fec, dtx, expected_loss_pct)
        self._out = Packetizer(ssrc, payload_type, encoder, dtx=dtx)
        self._in = Playout(payload_type, min_ms=jitter_min_ms, max_ms=jitter_max_ms, drops=self.drops,
                           counters=self.counters)
        self._clock = clock
        self._rtcp_interval = rtcp_interval_s
        self._ssrc = ssrc
        self._cname = (cname or f"zcall-{ssrc:08x}").encode()[:255]
        self.stats_core = MediaStats(clock_rate=48000)
        self._tx: SrtpSender | None = None
        self._rx: SrtpReceiver | None = None
        self._rx_keys: SrtpKeys | None = None
        self._srtp_seen = False
        self._transport: DatagramPort | None = None
        self._local: Addr | None = None
        self._remote: Addr | None = None
        # RTCP without mux: its own port and (DTLS-SRTP) its own keys; None: it shares the RTP port and keys.
        self._rtcp_transport: asyncio.DatagramTransport | None = None
        self._rtcp_remote: Addr | None = None
        self._rtcp_own_keys = False
        self._rtcp_tx: SrtpSender | None = None
        self._rtcp_rx: SrtpReceiver | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._muted = False
        self._closed = False
        self._next_rtcp = 0.0
        self._pacer = CapturePacer(source, self.drops)

    # --- lifecycle ---

    async def open(self, bind: Addr, remote: Addr | None = None) -> Addr:
        """Bind the call's UDP port and start the 20 ms tick; returns the bound address."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Port(self._on_datagram, self.drops), local_addr=bind
        )
        self._transport = transport
        name = transport.get_extra_info("sockname")
        self._local = str(name[0]), int(name[1])
        self._remote = remote
        self._due = self._clock()
        self._schedule(loop, self._due)
        set_listener = getattr(self._source, "set_listener", None)
        if set_listener is not None:
            # A device wakes us as soon as a frame is captured: it goes out now, not at the next tick
            # (saves half a tick of delay on average).
            set_listener(lambda: _wake(loop, self._on_captured))
        return self.local_address

    async def open_rtcp(self, bind: Addr) -> Addr:
        """Bind a second UDP port for RTCP, kept in case the peer does not multiplex (see use_rtcp_mux)."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Port(self._on_rtcp_datagram, self.drops), local_addr=bind
        )
        self._rtcp_transport = transport
        name = transport.get_extra_info("sockname")
        return str(name[0]), int(name[1])

    def use_rtcp_mux(self) -> None:
        """Both sides multiplex (RFC 5761): RTCP shares the RTP port and keys; the RTCP port is closed."""
        if self._rtcp_transport is not None:
            self._rtcp_transport.close()
        self._rtcp_transport = None
        self._rtcp_remote = None
        self._rtcp_own_keys = False

    def use_rtcp_port(self, remote: Addr, *, own_keys: bool) -> None:
        """The peer does not multiplex: RTCP goes from our RTCP port to `remote`. `own_keys` (DTLS-SRTP):
        SRTCP waits for start_srtcp() with the keys of the RTCP port's own handshake."""
        if self._rtcp_transport is None:
            raise RuntimeError("no RTCP port open")
        self._rtcp_remote = remote
        self._rtcp_own_keys = own_keys

    def start_srtcp(self, tx: SrtpKeys, rx: SrtpKeys) -> None:
        """Keys for RTCP from the RTCP port's own DTLS-SRTP handshake."""
        self._rtcp_tx = SrtpSender(tx, self._ssrc)
        self._rtcp_rx = SrtpReceiver(rx)

    @property
    def rtcp_secure(self) -> bool:
        return (self._rtcp_tx if self._rtcp_own_keys else self._tx) is not None

    @property
    def ssrc(self) -> int:
        """Our RTP stream's SSRC (random per call, RFC 3550 §8.1)."""
        return self._ssrc

    @property
    def local_address(self) -> Addr:
        if self._local is None:
            raise RuntimeError("media session not open")
        return self._local

    def use_port(self, port: DatagramPort) -> None:
        """Send through `port` from now on (the ICE agent's selected pair), not our own socket, which closes;
        what the port receives comes in through datagram_received()."""
        if self._transport is not None:
            self._transport.close()
        self._transport = port

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        """A datagram from a port that is not our own socket (ICE), with the source it vouches for."""
        self._on_datagram(data, addr)

    def set_remote(self, remote: Addr) -> None:
        self._remote = remote

    def set_payload_type(self, payload_type: int) -> None:
        """The RTP payload type the peer's SDP gave Opus: we send with it, and accept it besides our own."""
        if not 0 <= payload_type <= 127:
            raise ValueError("an RTP payload type is 0-127")
        self._out.set_payload_type(payload_type)
        self._in.accept_payload_type(payload_type)

    def set_red(self, red_payload_type: int | None) -> None:
        """Both SDPs offered RED (RFC 2198) with this payload type: send Opus inside RED, carrying as many
        previous frames as the reported loss calls for (none on a clean path once reported), and accept RED.
        Opus's own in-band FEC then stays off: RED's whole frames repair loss better and cost no quality
        when clean. None: plain Opus with in-band FEC (a peer without RED)."""
        if red_payload_type is not None and not 0 <= red_payload_type <= 127:
            raise ValueError("an RTP payload type is 0-127")
        self._out.set_red(red_payload_type)
        self._in.set_red(red_payload_type)

    def start_srtp(self, tx: SrtpKeys, rx: SrtpKeys) -> None:
        """Keys from ZRTP or DTLS-SRTP: from here on audio flows (both directions)."""
        self._tx = SrtpSender(tx, self._ssrc)
        self.start_srtp_receive(rx)
        # RFC 3550 §6.2: the first report after half the interval (the sender learns the loss sooner).
        self._next_rtcp = self._clock() + rtcp_delay(self._rtcp_interval) / 2

    def start_srtp_receive(self, rx: SrtpKeys) -> None:
        """Receive keys alone, before ours to send exist (a ZRTP initiator after Confirm1). The same keys
        given again keep the receiver, and with it the replay window."""
        if self._rx is None or self._rx_keys != rx:
            self._rx = SrtpReceiver(rx)
            self._rx_keys = rx

    @property
    def secure(self) -> bool:
        return self._tx is not None

    def set_muted(self, muted: bool) -> None:
        self._muted = muted

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # The owner's callbacks point back at it: a closed session lets go of them, so the two are freed by
        # refcounting when the owner is done (not kept with their native codec/SRTP state until a full gc).
        self._on_key_packet = self._on_first_srtp = self._on_rtcp_key_packet = None
        if self._timer is not None:
            self._timer.cancel()
        set_listener = getattr(self._source, "set_listener", None)
        if set_listener is not None:
            set_listener(None)
        if self._transport is not None:
            if self._tx is not None:
                with contextlib.suppress(SrtpError, OSError):
                    self._send_rtcp(bye=True)
            self._transport.close()
        if self._rtcp_transport is not None:
            self._rtcp_transport.close()
        self._source.close()
        self._sink.close()

    # --- key agreement packets ---

    def send_key_packet(self, data: bytes, addr: Addr | None = None) -> None:
        """ZRTP / DTLS / STUN from the key-agreement core, out of the same port as the media."""
        target = addr or self._remote
        if self._transport is None or target is None:
            self.drops["no-remote"] += 1
            return
        self._transport.sendto(data, target)
        self.counters["key_packets_sent"] += 1

    def send_rtcp_key_packet(self, data: bytes, addr: Addr | None = None) -> None:
        """DTLS of the RTCP port's own handshake (no mux), out of the RTCP port."""
        target = addr or self._rtcp_remote
        if self._rtcp_transport is None or target is None:
            self.drops["no-rtcp-remote"] += 1
            return
        self._rtcp_transport.sendto(data, target)
        self.counters["rtcp_key_packets_sent"] += 1

    # --- the 20 ms tick ---

    def _schedule(self, loop: asyncio.AbstractEventLoop, now: float) -> None:
        # A timer handle per tick, on an absolute 20 ms grid (no drift); cheaper than a sleeping task.
        self._due += TICK_S
        wait = self._due - now
        if wait < -TICK_S * _MAX_CATCH_UP_TICKS:
            self.counters["resync"] += 1
            self._due = now
            wait = 0.0
        self._timer = loop.call_later(wait if wait > 0.0 else 0.0, self._on_timer, loop)

    def _on_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._closed:
            return
        now = self._clock()  # one clock read per tick
        self._schedule(loop, now)
        self.tick(now)

    def _on_captured(self) -> None:
        if not self._closed:
            before = self.stats_core.packets_sent
            self._capture(self._clock())
            if self.stats_core.packets_sent > before:
                self.counters["sent_on_wakeup"] += 1

    def tick(self, now: float) -> None:
        """One 20 ms step: send what was captured, play one frame, and RTCP when due."""
        self._pacer.tick()
        self._capture(now)
        self._playout(now)
        if self._tx is not None and now >= self._next_rtcp:
            self._send_rtcp()
            self._next_rtcp = now + rtcp_delay(self._rtcp_interval)

    def _capture(self, now: float) -> None:
        for frame in self._pacer.take(keyed=self._tx is not None):
            self._send_audio(frame, now)

    def _send_audio(self, pcm: bytes, now: float) -> None:
        if self._tx is None or self._transport is None or self._remote is None:
            self.drops["captured-before-keys" if self._tx is None else "no-remote"] += 1
            return
        if len(pcm) != FRAME_BYTES:
            self.drops["capture-frame-size"] += 1
            return
        made = self._out.packetize(pcm, self._muted)
        if made is None:
            return
        packet, payload_len, timestamp = made
        try:
            protected = self._tx.protect(packet)
        except SrtpError as exc:  # e.g. the key's packet limit: count it, the call goes on silent
            self.drops[f"srtp-protect-{exc.reason}"] += 1
            return
        self._transport.sendto(protected, self._remote)
        self.stats_core.on_sent(payload_len, timestamp, now)

    def _playout(self, now: float) -> None:
        if self._rx is not None:
            self._sink.write_frame(self._in.frame(now))

    # --- receiving ---

    def _on_datagram(self, data: bytes, addr: Any) -> None:
        kind, reason = classify_with_reason(data)
        if kind is PacketKind.RTP:
            self._on_rtp(data, addr)
        elif kind is PacketKind.RTCP:
            self._on_rtcp(data)
        elif kind in (PacketKind.ZRTP, PacketKind.DTLS, PacketKind.STUN):
            source = (str(addr[0]), int(addr[1]))
            if self._remote is not None and source != self._remote:
                # Unauthenticated and not from the address the SDP gave: a third host's (issue 12).
                self.drops[f"{kind.value}-foreign-source"] += 1
                return
            self.counters["key_packets_received"] += 1
            if self._on_key_packet is not None:
                self._on_key_packet(data, source)
            else:
                self.drops["key-packet-unhandled"] += 1
        else:
            self.drops[f"demux-{reason}"] += 1

    def _on_rtcp_datagram(self, data: bytes, addr: Any) -> None:
        kind, reason = classify_with_reason(data)
        if kind is PacketKind.RTCP:
            self._on_rtcp(data)
        elif kind in (PacketKind.DTLS, PacketKind.STUN) and self._on_rtcp_key_packet is not None:
            source = (str(addr[0]), int(addr[1]))
            if self._rtcp_remote is not None and source != self._rtcp_remote:
                self.drops[f"rtcp-port-{kind.value}-foreign-source"] += 1  # as on the RTP port
                return
            self.counters["rtcp_key_packets_received"] += 1
            self._on_rtcp_key_packet(data, source)
        else:
            self.drops[f"rtcp-port-{reason or kind.value}"] += 1

    def _on_rtp(self, data: bytes, addr: Any = None) -> None:
        if self._rx is None:
            self.drops["rtp-before-keys"] += 1
            return
        try:
            packet = RtpPacket.parse(self._rx.unprotect(data))
        except SrtpError as exc:
            self.drops[f"srtp-{exc.reason}"] += 1
            return
        except RtpParseError as exc:
            self.drops[f"rtp-{exc.reason}"] += 1
            return
        if not self._in.accepts(packet.payload_type):
            self.drops["payload-type"] += 1
            return
        if addr != self._remote and addr is not None and self._remote is not None:
            self.counters["srtp_from_other_address"] += 1  # authentic, so played; where we send stays
        if not self._srtp_seen:
            self._srtp_seen = True
            if self._on_first_srtp is not None:
                self._on_first_srtp()
        now = self._clock()
        self.stats_core.on_received(packet, now)
        self._in.push(packet, now)

    def _on_rtcp(self, data: bytes) -> None:
        rx = self._rtcp_rx if self._rtcp_own_keys else self._rx
        if rx is None:
            self.drops["rtcp-before-keys"] += 1
            return
        try:
            reports = parse_rtcp_compound(rx.unprotect_rtcp(data))
        except SrtpError as exc:
            self.drops[f"srtcp-{exc.reason}"] += 1
            return
        except RtpParseError as exc:
            self.drops[f"rtcp-{exc.reason}"] += 1
            return
        self.counters["rtcp_received"] += 1
        now = self._clock()
        for report in reports:
            self.stats_core.on_rtcp(report, now)
            if isinstance(report, Bye):
                self.counters["bye_received"] += 1
            elif isinstance(report, SenderReport | ReceiverReport):
                for block in report.reports:
                    if block.ssrc == self._ssrc:
                        self._out.follow_reported_loss(block.fraction_lost)

    # --- RTCP ---

    def _send_rtcp(self, bye: bool = False) -> None:
        sender, transport, remote = self._tx, self._transport, self._remote
        if self._rtcp_remote is not None:
            sender = self._rtcp_tx if self._rtcp_own_keys else self._tx
            transport, remote = self._rtcp_transport, self._rtcp_remote
        if sender is None or transport is None or remote is None:
            return
        now = self._clock()
        compound = sender_report(self._ssrc, self._cname, self._out.timestamp, self.stats_core, now, bye=bye)
        transport.sendto(sender.protect_rtcp(compound), remote)
        self.counters["rtcp_sent"] += 1

    # --- stats ---

    def stats(self) -> dict[str, Any]:
        """The contract's stats fields (sent, received, lost, jitter_ms, rtt_ms, jitter_buffer_ms, mos) plus
        drop counts by reason and the jitter buffer's and devices' counters."""
        jb = self._in.jitter
        snap = dict(self.stats_core.snapshot(self._clock(), jitter_buffer_ms=jb.depth_ms))
        names = ("played", "concealed", "fec_recovered", "late", "lost", "duplicates", "reordered", "dropped",
                 "forced_drops", "resyncs", "target_ms")
        snap["playout"] = {name: getattr(jb, name) for name in names}
        snap["drops"] = dict(self.drops)
        if self._rx is not None:
            snap["srtp_rejects"] = dict(self._rx.rejects)
        snap["counters"] = dict(self.counters)
        snap["fec_expected_loss_pct"] = self._out.encoder.expected_loss_pct
        snap["fec"] = self._out.encoder.fec
        snap["red_distance"] = self._out.red_distance
        snap["payload_bytes_sent"] = self.stats_core.octets_sent
        for side, dev in (("capture", self._source), ("playback", self._sink)):
            dropped = getattr(dev, "dropped", None)
            if dropped is not None:
                snap[f"{side}_ring_dropped"] = dropped
        return snap


def _wake(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    """From an audio thread: schedule `callback` on the loop without blocking; a closed loop is ignored."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback)
