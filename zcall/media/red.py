"""RTP payload for redundant audio (RFC 2198), sans-I/O: each packet carries the current Opus frame and copies
of the previous `distance` frames, so a loss is repaired from the next packet that arrives (whole frames, not
Opus's coarse in-band FEC). `RedEncoder` keeps the recent frames; `parse` splits a received payload.

Wire format (RFC 2198 §3): per redundant block a 4-byte header F=1 | PT(7) | timestamp offset(14) |
length(10), then a 1-byte header F=0 | PT(7) for the primary; the blocks follow in that order, primary last.
The PT inside is the codec's (Opus); the RTP header carries RED's own.
"""

from __future__ import annotations

import collections
from typing import NamedTuple

from zcall.errors import ZcallError

MAX_DISTANCE = 3  # previous frames carried at most (a 10 % random loss leaves ~0.1 % after 2 copies)
MAX_BLOCKS = MAX_DISTANCE + 1
MAX_TS_OFFSET = (1 << 14) - 1
MAX_BLOCK_LEN = (1 << 10) - 1
REASONS = ("empty", "too-many-blocks", "truncated-header", "truncated-block", "nested-red")


class RedError(ZcallError, ValueError):
    """A RED payload that cannot be split; `.reason` is one of REASONS."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RedBlock(NamedTuple):
    payload_type: int
    ts_offset: int  # how far before the packet's timestamp this block's audio starts (0: the primary)
    payload: bytes


def parse(payload: bytes, red_pt: int) -> list[RedBlock]:
    """The blocks of one RED payload, oldest first, primary last."""
    if not payload:
        raise RedError("empty")
    headers: list[tuple[int, int, int]] = []
    pos = 0
    while True:
        if pos >= len(payload):
            raise RedError("truncated-header")
        first = payload[pos]
        if not first & 0x80:
            headers.append((first & 0x7F, 0, -1))
            pos += 1
            break
        if pos + 4 > len(payload):
            raise RedError("truncated-header")
        word = int.from_bytes(payload[pos : pos + 4], "big")
        headers.append(((word >> 24) & 0x7F, (word >> 10) & MAX_TS_OFFSET, word & MAX_BLOCK_LEN))
        pos += 4
        if len(headers) > MAX_BLOCKS:
            raise RedError("too-many-blocks")
    blocks = []
    for pt, offset, length in headers:
        if pt == red_pt:
            raise RedError("nested-red")
        end = len(payload) if length < 0 else pos + length
        if end > len(payload):
            raise RedError("truncated-block")
        blocks.append(RedBlock(pt, offset, payload[pos:end]))
        pos = end
    return blocks


class RedEncoder:
    """Builds RED payloads of the current frame plus the previous `distance` frames (sized by the loss the far
    end reports: `set_distance`)."""

    def __init__(self, codec_payload_type: int, distance: int = 1) -> None:
        self._pt = codec_payload_type
        self._recent: collections.deque[tuple[int, bytes]] = collections.deque(maxlen=MAX_DISTANCE)
        self.distance = 0
        self.set_distance(distance)

    def set_distance(self, distance: int) -> None:
        self.distance = max(0, min(MAX_DISTANCE, distance))

    def encode(self, payload: bytes, timestamp: int) -> bytes:
        """`payload` is the primary (Opus) frame at `timestamp`; the previous frames ride along."""
        headers, blocks = [], []
        for ts, old in list(self._recent)[len(self._recent) - self.distance :] if self.distance else []:
            offset = (timestamp - ts) & 0xFFFFFFFF
            if offset > MAX_TS_OFFSET or len(old) > MAX_BLOCK_LEN:
                continue  # too old or too big to describe (after a pause): leave it out
            headers.append((0x80 | self._pt) << 24 | offset << 10 | len(old))
            blocks.append(old)
        self._recent.append((timestamp, payload))
        head = b"".join(h.to_bytes(4, "big") for h in headers) + bytes([self._pt])
        return head + b"".join(blocks) + payload


def distance_for_loss(loss_pct: int) -> int:
    """Copies carried for the loss the far end reports: none on a clean path, up to MAX_DISTANCE."""
    if loss_pct <= 0:
        return 0
    if loss_pct <= 5:
        return 1
    if loss_pct <= 15:
        return 2
    return MAX_DISTANCE
