"""Token buckets for per-connection limits. Time is passed in (the event loop's clock)."""

from __future__ import annotations

from collections import deque

__all__ = ["StrikeCounter", "TokenBucket"]


class TokenBucket:
    """Allows ``rate`` events a second on average and bursts of up to ``burst``."""

    __slots__ = ("_burst", "_rate", "_stamp", "_tokens")

    def __init__(self, *, rate: float, burst: int, now: float) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._stamp = now

    def take(self, now: float) -> bool:
        """Spend one token if there is one."""
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


class StrikeCounter:
    """Counts strikes in a sliding window; ``strike`` says whether the limit is now exceeded."""

    __slots__ = ("_limit", "_stamps", "_window")

    def __init__(self, *, limit: int, window: float) -> None:
        self._limit = limit
        self._window = window
        self._stamps: deque[float] = deque()

    def strike(self, now: float) -> bool:
        self._stamps.append(now)
        while self._stamps and self._stamps[0] <= now - self._window:
            self._stamps.popleft()
        return len(self._stamps) > self._limit
