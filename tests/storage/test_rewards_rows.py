"""The stored form of campaign progress: compact, and read back exactly as the engine left it."""

from __future__ import annotations

from typing import Any

from kudos.services.rewards import expiry_time
from kudos.storage.rewards import live_progress, stored_progress


def make_progress() -> dict[str, dict[str, Any]]:
    return {
        "counted": {
            "achieved": 2,
            "day": "2026-11-23",
            "dayCount": 1,
            "rules": [
                {"count": 3, "sums": {}, "values": {}},
                {"count": 0, "sums": {}, "values": {}},
            ],
        },
        "valued": {
            "achieved": 0,
            "day": None,
            "dayCount": 0,
            "rules": [{"count": 2, "sums": {"0": 55.25}, "values": {"1": {"a": 2, "b": 0}}}],
        },
    }


def test_progress_reads_back_as_it_was_written() -> None:
    progress = make_progress()
    assert live_progress(stored_progress(progress)) == progress


def test_a_rule_that_only_counts_is_stored_as_its_count() -> None:
    stored = stored_progress(make_progress())
    assert stored["counted"] == [2, "2026-11-23", 1, 3, 0]
    assert stored["valued"] == [0, None, 0, [2, {"0": 55.25}, {"1": {"a": 2, "b": 0}}]]


def test_progress_stored_in_the_long_form_still_reads() -> None:
    progress = make_progress()
    assert live_progress(progress) == progress
    assert live_progress({"old": progress["valued"], **stored_progress(progress)}) == {
        "old": progress["valued"],
        **progress,
    }


def test_credits_expire_the_same_time_of_day_days_later() -> None:
    assert expiry_time("2024-02-28T23:59:59.123456Z", 1) == "2024-02-29T23:59:59.123456Z"
    assert expiry_time("2025-12-31T10:00:00.000001Z", 365) == "2026-12-31T10:00:00.000001Z"
    assert expiry_time("2026-01-01T00:00:00Z", 3) == "2026-01-04T00:00:00.000000Z"
