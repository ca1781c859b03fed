"""Our audio as RTP: captured 20 ms frames → Opus (optionally inside RED, RFC 2198) → RTP packets, with the
sequence number, timestamp and marker of one SSRC. How much FEC or RED it spends follows the loss the far end
reports in RTCP. Sans-I/O: what it makes is protected and sent by the media session."""

from __future__ import annotations

import math
import os
import struct

from zcall.media import red
from zcall.media.audio import SILENCE
from zcall.media.codec import FRAME_SAMPLES, OpusEncoder
from zcall.media.red import RedEncoder

_RTP_HEADER = struct.Struct("!BBHII")  # V=2 P=0 X=0 CC=0 | M PT | sequence | timestamp | SSRC
# Opus spends bits on in-band FEC in proportion to the loss it expects, and with FEC on it codes speech worse
# even when nothing is lost. So a call starts without FEC and follows the loss the far end reports in RTCP:
# any loss switches FEC on (at least MIN_EXPECTED_LOSS_PCT), and it goes off again only after
# _CLEAN_REPORTS_TO_RELAX loss-free reports in a row (a path that lost once is likely to lose again).
MIN_EXPECTED_LOSS_PCT = 3
MAX_EXPECTED_LOSS_PCT = 30
_CLEAN_REPORTS_TO_RELAX = 3


class Packetizer:
    """One SSRC's outgoing RTP: `packetize(pcm, muted)` gives the next packet (None: DTX sent nothing)."""

    def __init__(self, ssrc: int, payload_type: int, encoder: OpusEncoder, *, dtx: bool) -> None:
        self.ssrc = ssrc
        self.encoder = encoder
        self._dtx = dtx  # kept here: asking libopus every frame costs a ctl call
        self._pt = payload_type
        # RFC 3550 §5.1: random initial sequence number and timestamp.
        self._seq = int.from_bytes(os.urandom(2), "big")
        self.timestamp = int.from_bytes(os.urandom(4), "big")  # of the next frame
        self._marker = True
        self._clean_reports = 0
        self._red_pt: int | None = None
        self._red: RedEncoder | None = None

    def set_payload_type(self, payload_type: int) -> None:
        self._pt = payload_type
        if self._red is not None:
            self._red = RedEncoder(payload_type, self._red.distance)

    def set_red(self, red_payload_type: int | None) -> None:
        """Send Opus inside RED with this payload type, carrying as many previous frames as the reported loss
        calls for, with Opus's own in-band FEC off; None: plain Opus with in-band FEC."""
        self._red_pt = red_payload_type
        # One copy until the first report says how lossy the path is (loss in the first seconds is heard too).
        self._red = None if red_payload_type is None else RedEncoder(self._pt, max(1, self._red_distance()))
        self.encoder.allow_fec(red_payload_type is None)

    @property
    def red_distance(self) -> int | None:
        return None if self._red is None else self._red.distance

    def _red_distance(self) -> int:
        return red.distance_for_loss(self.encoder.expected_loss_pct)

    def packetize(self, pcm: bytes, muted: bool) -> tuple[bytes, int, int] | None:
        """The RTP packet for one 20 ms frame, its payload size and its timestamp; None when DTX skips it."""
        payload = self.encoder.encode(SILENCE if muted else pcm)
        timestamp = self.timestamp
        self.timestamp = (timestamp + FRAME_SAMPLES) & 0xFFFFFFFF
        if self._dtx and len(payload) <= 2:
            # DTX: nothing worth sending; the next real packet starts a talkspurt (marker).
            self._marker = True
            return None
        # The fixed 12-byte header packed directly (hot path: RtpPacket's checks cost more than the packing).
        if self._red is not None and self._red_pt is not None:
            payload = self._red.encode(payload, timestamp)
            marker_pt = self._red_pt | (0x80 if self._marker else 0)
        else:
            marker_pt = self._pt | (0x80 if self._marker else 0)
        header = _RTP_HEADER.pack(0x80, marker_pt, self._seq, timestamp, self.ssrc)
        self._marker = False
        self._seq = (self._seq + 1) & 0xFFFF
        return header + payload, len(payload), timestamp

    def follow_reported_loss(self, fraction_lost: int) -> None:
        """An RTCP report block about our stream: FEC strength (or RED distance) follows its loss fraction."""
        pct = math.ceil(fraction_lost * 100 / 256)
        if pct > 0:
            self._clean_reports = 0
            self.encoder.set_expected_loss(max(MIN_EXPECTED_LOSS_PCT, min(MAX_EXPECTED_LOSS_PCT, pct)))
        else:
            self._clean_reports += 1
            if self._clean_reports >= _CLEAN_REPORTS_TO_RELAX:
                self.encoder.set_expected_loss(0)
        if self._red is not None:
            self._red.set_distance(self._red_distance())
