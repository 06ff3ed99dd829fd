"""Token buckets and strike counters, driven with explicit times (seconds)."""

from __future__ import annotations

from logwarden.chat.ratelimit import StrikeCounter, TokenBucket


def takes(bucket: TokenBucket, now: float, times: int) -> list[bool]:
    return [bucket.take(now) for _ in range(times)]


class TestTokenBucket:
    def test_starts_full(self) -> None:
        """A new bucket allows a burst of ``burst`` events at once, and no more."""
        bucket = TokenBucket(rate=1.0, burst=3, now=100.0)
        assert takes(bucket, 100.0, 4) == [True, True, True, False]

    def test_refills_at_rate(self) -> None:
        """Tokens come back at ``rate`` per second."""
        bucket = TokenBucket(rate=2.0, burst=2, now=0.0)
        assert takes(bucket, 0.0, 3) == [True, True, False]
        assert takes(bucket, 0.5, 2) == [True, False]  # 0.5 s at 2/s: one token
        assert takes(bucket, 1.5, 3) == [True, True, False]  # 1 s more: two tokens

    def test_partial_tokens_accumulate(self) -> None:
        """Fractions of a token add up across calls, including refused ones."""
        bucket = TokenBucket(rate=1.0, burst=1, now=0.0)
        assert bucket.take(0.0)
        assert not bucket.take(0.25)
        assert not bucket.take(0.5)
        assert not bucket.take(0.75)
        assert bucket.take(1.0)

    def test_refused_take_costs_nothing(self) -> None:
        """A refused take does not spend a token or delay the next one."""
        bucket = TokenBucket(rate=1.0, burst=1, now=0.0)
        bucket.take(0.0)
        for _ in range(100):
            assert not bucket.take(0.5)
        assert bucket.take(1.0)

    def test_refill_is_capped_at_burst(self) -> None:
        """A long quiet spell refills only up to ``burst``."""
        bucket = TokenBucket(rate=5.0, burst=3, now=0.0)
        takes(bucket, 0.0, 3)
        assert takes(bucket, 3600.0, 4) == [True, True, True, False]

    def test_steady_rate_is_sustained(self) -> None:
        """Events spaced at exactly 1/rate are all allowed once the burst is spent."""
        bucket = TokenBucket(rate=4.0, burst=1, now=0.0)
        assert all(bucket.take(i * 0.25) for i in range(40))

    def test_faster_than_rate_is_limited(self) -> None:
        """Attempts at twice the rate get the burst plus what refilled, and no more."""
        bucket = TokenBucket(rate=4.0, burst=10, now=0.0)
        allowed = sum(bucket.take(i * 0.125) for i in range(100))  # 8 a second for 12.375 s
        assert allowed == 10 + 49  # the burst, plus 49.5 tokens refilled (rounded down)

    def test_time_is_relative_to_construction(self) -> None:
        """The bucket measures refill from the time it was created, not from zero."""
        bucket = TokenBucket(rate=1.0, burst=1, now=1_000_000.0)
        assert bucket.take(1_000_000.0)
        assert not bucket.take(1_000_000.5)
        assert bucket.take(1_000_001.0)


class TestStrikeCounter:
    def test_limit_is_exceeded_by_one_more(self) -> None:
        """``limit`` strikes in the window are tolerated; the next one exceeds it."""
        counter = StrikeCounter(limit=3, window=10.0)
        assert [counter.strike(t) for t in (0.0, 1.0, 2.0, 3.0)] == [False, False, False, True]

    def test_stays_exceeded_while_strikes_continue(self) -> None:
        """Further strikes within the window still report the limit exceeded."""
        counter = StrikeCounter(limit=1, window=10.0)
        assert [counter.strike(t) for t in (0.0, 1.0, 2.0)] == [False, True, True]

    def test_old_strikes_expire(self) -> None:
        """Strikes older than the window no longer count."""
        counter = StrikeCounter(limit=2, window=10.0)
        counter.strike(0.0)
        counter.strike(1.0)
        assert not counter.strike(10.5)  # 0.0 has expired: two strikes in the window

    def test_strike_exactly_window_old_has_expired(self) -> None:
        """A strike exactly ``window`` seconds old is outside the window."""
        counter = StrikeCounter(limit=1, window=10.0)
        counter.strike(0.0)
        assert not counter.strike(10.0)
        assert counter.strike(19.0)

    def test_sliding_not_fixed_window(self) -> None:
        """The window slides: strikes spread across a fixed boundary still add up."""
        counter = StrikeCounter(limit=2, window=10.0)
        counter.strike(8.0)
        counter.strike(9.0)
        assert counter.strike(11.0)

    def test_slow_strikes_never_exceed(self) -> None:
        """Strikes spaced wider than window / limit never exceed the limit."""
        counter = StrikeCounter(limit=2, window=10.0)
        assert not any(counter.strike(i * 5.0) for i in range(100))

    def test_zero_limit(self) -> None:
        """With a limit of zero, the first strike exceeds it."""
        assert StrikeCounter(limit=0, window=1.0).strike(0.0)
