"""When to retry, when to give up, when to disable: the delivery policy, pure.

The retry schedule lists the delays between attempts (``5s,1m,…``): the first attempt is
immediate, each failure waits the next delay, stretched by up to ``JITTER`` at random so that
retries of many messages do not arrive together, and a failure past the last delay makes the
message a dead letter.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

JITTER = 0.2
# Messages a worker claims per slot of an endpoint, and per slot of an account (see
# ``worker``); the lease covers their wait.
PREFETCH = 8
# Seconds kept, after an attempt's deadline and before its lease ends, to record its outcome.
RECORD_MARGIN = 15.0
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*")


def parse_duration(text: str) -> float:
    """``"90s"``, ``"5m"``, ``"2h"``, ``"3d"``, ``"250ms"`` → seconds."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r} (use e.g. 500ms, 5s, 1m, 2h, 3d)")
    return float(match[1]) * _UNITS[match[2]]


def parse_schedule(text: str) -> tuple[float, ...]:
    """``"1s,2s,4s"`` → ``(1.0, 2.0, 4.0)``; an empty schedule never retries."""
    return tuple(parse_duration(part) for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class Policy:
    schedule: tuple[float, ...]
    timeout: float
    concurrency: int
    per_endpoint: int
    per_account: int
    disable_after: float
    poll: float
    allow_private: bool

    @property
    def lease(self) -> float:
        """How long a claimed attempt is held: past it, another worker may take it over. A
        claimed message may wait for ``PREFETCH`` attempts of its endpoint before its own."""
        return self.timeout * (PREFETCH + 1) + 2 * RECORD_MARGIN

    def can_start(self, *, lease_end: float, now: float) -> bool:
        """Whether an attempt starting ``now`` ends (its whole deadline) and is recorded
        before its lease ends at ``lease_end``; if not, the message is given back unsent."""
        return lease_end - now >= self.timeout + RECORD_MARGIN


@dataclass(frozen=True, slots=True)
class Decision:
    state: str  # pending (retry later) | delivered | dead
    retries: int  # retries scheduled so far (the position in the schedule)
    delay: float | None  # seconds until the retry, when pending


def after_attempt(
    policy: Policy, *, ok: bool, retries: int, random: Callable[[], float]
) -> Decision:
    """What becomes of a message after an attempt that succeeded (``ok``) or failed."""
    if ok:
        return Decision("delivered", retries, None)
    if retries >= len(policy.schedule):
        return Decision("dead", retries, None)
    delay = policy.schedule[retries] * (1.0 + JITTER * random())
    return Decision("pending", retries + 1, delay)


def should_disable(policy: Policy, *, failing_since: float | None, now: float) -> bool:
    """An endpoint that has failed without a success for ``disable_after`` is disabled."""
    return failing_since is not None and now - failing_since >= policy.disable_after
