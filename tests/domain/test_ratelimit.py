"""Fixed-window rate limits with an injected clock (pure)."""

from __future__ import annotations

import pytest

from kudos.domain.ratelimit import RateLimiter, parse_policy


def test_gameball_policy_allows_100_per_second_then_says_wait() -> None:
    limiter = RateLimiter()
    assert all(limiter.hit(1, "gameball", 10.0) is None for _ in range(100))
    assert limiter.hit(1, "gameball", 10.2) == 1
    assert limiter.hit(1, "gameball", 11.0) is None  # the next second starts afresh


def test_gameball_policy_caps_1200_per_30_seconds() -> None:
    limiter = RateLimiter()
    accepted = sum(limiter.hit(1, "gameball", 30.0 + n / 100) is None for n in range(1500))
    assert accepted == 1200
    assert limiter.hit(1, "gameball", 45.0) == 15


def test_accounts_have_separate_counters_and_off_means_off() -> None:
    limiter = RateLimiter()
    assert limiter.hit(1, "1", 5.0) is None
    assert limiter.hit(1, "1", 5.5) == 1
    assert limiter.hit(2, "1", 5.5) is None
    assert all(limiter.hit(3, "off", 5.5) is None for _ in range(10_000))


@pytest.mark.parametrize("policy", ["", "0", "-1", "fast", "1.5", "gameball "])
def test_invalid_policies_are_refused(policy: str) -> None:
    with pytest.raises(ValueError):
        parse_policy(policy)


def test_wait_tells_an_account_over_its_limit_without_counting() -> None:
    limiter = RateLimiter()
    assert limiter.wait(1, "2", 10.0) is None
    assert limiter.hit(1, "2", 10.0) is None and limiter.hit(1, "2", 10.0) is None
    assert limiter.wait(1, "2", 10.2) == 1  # over until the next second
    assert limiter.wait(1, "2", 10.2) == 1  # asking again counts nothing
    assert limiter.wait(2, "2", 10.2) is None  # another account
    assert limiter.wait(1, "2", 11.0) is None  # a new window
    assert limiter.wait(1, "off", 10.2) is None
