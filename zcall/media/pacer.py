"""Captured audio at our clock's pace: a device that runs ahead of our 20 ms tick, or hands over frames in
bursts, can neither build up delay nor flood the network."""

from __future__ import annotations

import collections
from collections import Counter

from zcall.media.audio import AudioSource

_MAX_DRAIN = 50  # frames taken from a device ring at once (more than any ring holds)
# Captured frames wait here for their turn to leave, one per tick on average (a token per tick, at most this
# many saved up); past this many waiting, the oldest is dropped (counted).
MAX_BACKLOG = 3


class CapturePacer:
    """What of a source's frames may leave now: `tick()` once per 20 ms, `take(keyed)` whenever woken."""

    def __init__(self, source: AudioSource, drops: Counter[str]) -> None:
        self._source = source
        self._paced = source.paced
        self._drops = drops
        self._pending: collections.deque[bytes] = collections.deque()
        self._tokens = float(MAX_BACKLOG)

    def tick(self) -> None:
        # One more frame may leave per tick: the send rate follows our clock, with a burst allowance.
        self._tokens = min(MAX_BACKLOG, self._tokens + 1)

    def take(self, keyed: bool) -> list[bytes]:
        """The frames to send now, oldest first; before keys (`keyed` false) a device's frames are dropped."""
        if not self._paced:
            # A file or tone starts from its beginning once media is secure, and is read once per call here.
            frame = self._source.read_frame() if keyed else None
            return [] if frame is None else [frame]
        for _ in range(_MAX_DRAIN):
            frame = self._source.read_frame()
            if frame is None:
                break
            if not keyed:
                self._drops["captured-before-keys"] += 1
                continue
            if len(self._pending) == MAX_BACKLOG:
                # A device running ahead of our clock: drop the oldest rather than build up delay.
                self._pending.popleft()
                self._drops["capture-backlog"] += 1
            self._pending.append(frame)
        out: list[bytes] = []
        while self._pending and self._tokens >= 1:
            self._tokens -= 1
            out.append(self._pending.popleft())
        return out
