"""Per-account rate limits as fixed windows, pure but for the injected clock reading.

Policies: ``off``; ``gameball`` (Gameball's Events limit: 100 per second and 1,200 per
30 seconds); or a whole number N (N per second). Counters live in the process, so with
``kudos serve --workers N`` each process enforces the limit on its own share.
"""

from __future__ import annotations

import functools
import math
import re

GAMEBALL_WINDOWS: tuple[tuple[int, int], ...] = ((1, 100), (30, 1200))
# Gameball's limit of its Transactions and Orders APIs (the burn side), counted apart.
GAMEBALL_TRANSACTION_WINDOWS: tuple[tuple[int, int], ...] = ((1, 30), (30, 360))


@functools.lru_cache(maxsize=256)
def parse_policy(policy: str) -> tuple[tuple[int, int], ...]:
    """``(window_seconds, max_requests)`` pairs for a policy string; ValueError if invalid."""
    if policy == "off":
        return ()
    if policy == "gameball":
        return GAMEBALL_WINDOWS
    if re.fullmatch(r"[1-9][0-9]{0,8}", policy):
        return ((1, int(policy)),)
    raise ValueError(f"rate limit must be off, gameball or a positive whole number, not {policy!r}")


def transaction_windows(policy: str) -> tuple[tuple[int, int], ...]:
    """The windows of the burn side under ``policy`` (``gameball``: Gameball's Transactions
    limit, 30 per second and 360 per 30 seconds; a number N or ``off`` as for events)."""
    if policy == "gameball":
        return GAMEBALL_TRANSACTION_WINDOWS
    return parse_policy(policy)


class RateLimiter:
    """Counts requests per account and window; ``hit`` says how long to wait when over."""

    def __init__(self) -> None:
        self._counts: dict[tuple[int, int], tuple[int, int]] = {}

    def hit(self, account_id: int, policy: str, now: float) -> int | None:
        """Count one request; return seconds to wait (Retry-After) if it is over a limit.

        A refused request is not counted, so a client that backs off recovers on time.
        """
        return self.hit_windows(account_id, parse_policy(policy), now)

    def wait(self, account_id: int, policy: str, now: float) -> int | None:
        """How long the account must wait before its next request counts, if it is over a
        limit right now; counts nothing (a check before the work ``hit`` would count)."""
        waits = []
        for seconds, limit in parse_policy(policy):
            index = int(now // seconds)
            start, count = self._counts.get((account_id, seconds), (index, 0))
            if start == index and count >= limit:
                waits.append(max(1, math.ceil((index + 1) * seconds - now)))
        return max(waits) if waits else None

    def hit_windows(
        self, account_id: int, windows: tuple[tuple[int, int], ...], now: float
    ) -> int | None:
        """``hit`` with the ``(window_seconds, max_requests)`` pairs given directly."""
        if not windows:
            return None
        current: list[tuple[tuple[int, int], int, int]] = []
        waits: list[int] = []
        for seconds, limit in windows:
            index = int(now // seconds)
            key = (account_id, seconds)
            start, count = self._counts.get(key, (index, 0))
            if start != index:
                count = 0
            if count >= limit:
                waits.append(max(1, math.ceil((index + 1) * seconds - now)))
            current.append((key, index, count))
        if waits:
            return max(waits)
        for key, index, count in current:
            self._counts[key] = (index, count + 1)
        return None
