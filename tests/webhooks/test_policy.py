"""The delivery policy: durations, the retry schedule with jitter, dead letters, disabling."""

from __future__ import annotations

import pytest

from kudos.config import Settings
from kudos.webhooks import policy


def make_policy(schedule: str = "1s,2s,4s", disable_after: str = "5d") -> policy.Policy:
    return Settings(
        webhook_retry_schedule=schedule, webhook_disable_after=disable_after
    ).webhook_policy()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("5s", 5), ("1m", 60), ("2h", 7200), ("3d", 259200), (" 1.5s ", 1.5)],
)
def test_durations_parse_with_their_units(text: str, seconds: float) -> None:
    assert policy.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "1x", "-1s", "s"])
def test_malformed_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        policy.parse_duration(text)


def test_a_bad_schedule_is_refused_at_startup() -> None:
    with pytest.raises(ValueError, match="not a duration"):
        Settings(webhook_retry_schedule="1s,soon")


def test_the_default_schedule_spans_about_three_days() -> None:
    total = sum(Settings().webhook_policy().schedule)
    assert 2.5 * 86400 < total < 3.5 * 86400


def test_a_failure_waits_the_next_delay_plus_at_most_the_jitter() -> None:
    rules = make_policy()
    least = policy.after_attempt(rules, ok=False, retries=1, random=lambda: 0.0)
    most = policy.after_attempt(rules, ok=False, retries=1, random=lambda: 0.999)
    assert least == policy.Decision("pending", 2, 2.0)
    assert most.delay is not None and 2.0 < most.delay < 2.0 * (1 + policy.JITTER)


def test_a_failure_after_the_last_delay_is_a_dead_letter() -> None:
    decision = policy.after_attempt(make_policy(), ok=False, retries=3, random=lambda: 0.5)
    assert decision == policy.Decision("dead", 3, None)


def test_a_success_is_delivered_whatever_came_before() -> None:
    assert policy.after_attempt(make_policy(), ok=True, retries=2, random=lambda: 0.5).state == (
        "delivered"
    )


def test_an_endpoint_is_disabled_only_after_failing_for_the_whole_period() -> None:
    rules = make_policy(disable_after="1h")
    assert not policy.should_disable(rules, failing_since=None, now=10_000)
    assert not policy.should_disable(rules, failing_since=0, now=3599)
    assert policy.should_disable(rules, failing_since=0, now=3600)


def test_an_attempt_starts_only_while_its_lease_covers_its_deadline_and_its_recording() -> None:
    rules = Settings(webhook_timeout_seconds=10).webhook_policy()
    assert rules.lease == 120  # nine timeouts and two recording margins
    least = rules.timeout + policy.RECORD_MARGIN
    assert rules.can_start(lease_end=1000 + least, now=1000)
    assert not rules.can_start(lease_end=1000 + least - 0.001, now=1000)
