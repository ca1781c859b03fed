"""Token buckets that bound how fast unauthenticated senders can make the SIP core do work or answer."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass
class TokenBucket:
    rate: float  # tokens per second
    burst: float
    tokens: float = -1.0  # -1: full on first use
    stamp: float = 0.0

    def take(self, now: float) -> bool:
        if self.tokens < 0:
            self.tokens, self.stamp = self.burst, now
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.stamp) * self.rate)
        self.stamp = max(self.stamp, now)
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class SourceLimiter:
    """A bucket per source host and one for everybody.

    The per-source table keeps only the `max_sources` most recent hosts, so spoofed addresses cost no memory
    that stays; the shared bucket holds whatever the sources claim to be.
    """

    def __init__(self, per_source: float, source_burst: float, total: float, total_burst: float,
                 max_sources: int = 1024) -> None:
        self._rate, self._burst = per_source, source_burst
        self._total = TokenBucket(total, total_burst)
        self._sources: OrderedDict[str, TokenBucket] = OrderedDict()
        self._max_sources = max_sources

    def admit(self, host: str, now: float) -> bool:
        bucket = self._sources.pop(host, None) or TokenBucket(self._rate, self._burst)
        self._sources[host] = bucket
        while len(self._sources) > self._max_sources:
            self._sources.popitem(last=False)
        return bucket.take(now) and self._total.take(now)

    def __len__(self) -> int:
        return len(self._sources)
