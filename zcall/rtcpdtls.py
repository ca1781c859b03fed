"""RTCP's own DTLS-SRTP handshake (RFC 5764 §4.1), for a peer that does not multiplex RTCP with RTP: the same
certificates, fingerprints and roles as the RTP port's, on the RTCP port, driven by the one CoreDriver.

Its keys protect only RTCP. A fingerprint mismatch here is as loud as on the RTP port; a failed handshake only
costs the call its reports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from zcall.driver import CoreDriver
from zcall.identity import Identity
from zcall.keying import DtlsKeying, KeyAlarm, KeyEvent, KeysReady
from zcall.media.stream import MediaSession
from zcall.net import Addr
from zcall.sip.offeranswer import AudioParams


class RtcpDtls:
    def __init__(
        self, identity: Identity, call_id: str, media: MediaSession, offerer: bool,
        on_alarm: Callable[[KeyAlarm], None],
    ) -> None:  # fmt: skip
        self._keys = DtlsKeying(identity, call_id)
        self._media = media
        self._offerer = offerer
        self._on_alarm = on_alarm
        self._driver: CoreDriver[bytes, KeyEvent] = CoreDriver(
            self._keys, media.send_rtcp_key_packet, self._event
        )

    def start(self, remote: AudioParams, now: float) -> None:
        # This handshake's peer is the answer's RTCP address: what came from there early is answered now.
        rtcp = replace(remote, host=remote.rtcp_host, port=remote.rtcp_port)
        self._keys.start(rtcp, self._offerer, now)
        self._driver.pump()

    def receive(self, data: bytes, addr: Addr, now: float) -> None:
        if self._keys.session is None:
            # Before the answer (the answerer's RTCP ClientHello may beat it): held, never answered blind.
            self._keys.hold_early(data, addr)
            return
        self._keys.receive(data, now)
        self._driver.pump()

    def _event(self, event: KeyEvent) -> None:
        if isinstance(event, KeysReady):
            self._media.start_srtcp(event.tx, event.rx)
        elif isinstance(event, KeyAlarm):
            self._on_alarm(event)  # a certificate swap is loud anywhere
        else:
            self._media.drops["rtcp-dtls-failed"] += 1  # RTCP is lost, the call goes on

    def close(self, now: float) -> None:
        self._keys.close(now)
        for datagram in self._keys.datagrams_to_send(now):
            self._media.send_rtcp_key_packet(datagram)
        self._driver.close()
