"""The stored form of campaign progress: the engine's own compact form, read back as written."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kudos.rules.engine import Facts, compile_program, evaluate_event, state_of
from kudos.rules.schema import load_program
from kudos.services.rewards import expiry_time
from kudos.storage.profiles import decode_json, encode
from kudos.storage.rewards import compact_progress


def make_progress() -> dict[str, list[Any]]:
    return {
        "counted": [2, "2026-11-23", 1, 3, 0],
        "valued": [0, None, 0, [2, {"0": 55.25}, {"1": {"a": 2, "b": 0}}]],
    }


def test_progress_reads_back_as_it_was_written() -> None:
    progress = make_progress()
    assert compact_progress(decode_json(encode(progress))) == progress


def test_progress_stored_in_the_first_long_form_still_reads() -> None:
    long_form = {
        "achieved": 0,
        "day": None,
        "dayCount": 0,
        "rules": [{"count": 2, "sums": {"0": 55.25}, "values": {"1": {"a": 2, "b": 0}}}],
    }
    assert compact_progress({"old": long_form, **make_progress()}) == {
        "old": make_progress()["valued"],
        **make_progress(),
    }


def test_a_long_form_state_of_a_counting_rule_reads_as_its_count() -> None:
    program = compile_program(
        load_program(
            {
                "campaigns": [
                    {
                        "id": "c",
                        "name": "C",
                        "trigger": {"rules": [{"event": "e", "after": 3}]},
                        "repeat": {"maxAchievements": -1},
                        "reward": {"points": 1},
                    }
                ]
            }
        ),
        version=1,
    )
    long_form = {
        "achieved": 1,
        "day": "2026-11-22",
        "dayCount": 1,
        "rules": [{"count": 2, "sums": {}, "values": {}}],
    }
    states = compact_progress({"c": long_form})
    assert state_of(program.campaigns[0], states) == [1, "2026-11-22", 1, 2]
    now = Facts(now=datetime(2026, 11, 23, tzinfo=UTC))
    result = evaluate_event(program, states, "e", {}, now)
    assert [a.times for a in result.achievements] == [1]
    assert states["c"] == [2, "2026-11-23", 1, 0]


def test_credits_expire_the_same_time_of_day_days_later() -> None:
    assert expiry_time("2024-02-28T23:59:59.123456Z", 1) == "2024-02-29T23:59:59.123456Z"
    assert expiry_time("2025-12-31T10:00:00.000001Z", 365) == "2026-12-31T10:00:00.000001Z"
    assert expiry_time("2026-01-01T00:00:00Z", 3) == "2026-01-04T00:00:00.000000Z"
