"""The engine on hostile numbers and values: it never raises, and what it keeps stays bounded."""

from __future__ import annotations

import math
from typing import Any

import msgspec
import pytest

from kudos.rules.engine import (
    MAX_COMPARED_CHARS,
    MAX_LIST_ITEMS,
    MAX_NUMBER_CHARS,
    RULES,
    Facts,
    State,
    evaluate_event,
    number,
    progress,
    remembered,
    reward_points,
    state_of,
)
from kudos.rules.schema import MAX_AWARD, MAX_REPEATED_VALUES, MAX_TOTAL, MAX_VALUE_CHARS
from tests.rules.test_engine import NOW, compiled, make_campaign, send, where

HUGE = 10**309  # past the float range: what a JSON decoder hands over for 309 digits


def json_round_trip(states: dict[str, State]) -> Any:
    return msgspec.json.decode(msgspec.json.encode(states))


@pytest.mark.parametrize(
    "value", [HUGE, -HUGE, 10**4000, float("inf"), float("-inf"), float("nan"), "1e400", "-inf"]
)
def test_what_has_no_finite_float_reads_as_no_number(value: Any) -> None:
    assert number(value) is None


def test_numbers_within_the_float_range_still_read() -> None:
    assert number(10**300) == 1e300
    assert number("1.7e308") == 1.7e308
    assert number(-(10**20)) == -1e20


def test_a_huge_integer_meets_no_numeric_condition_and_nothing_raises() -> None:
    program = compiled(
        make_campaign(id="gte", trigger=where({"key": "a", "op": "gte", "value": 1})),
        make_campaign(id="between", trigger=where({"key": "a", "op": "between", "value": [0, 9]})),
        make_campaign(id="equals", trigger=where({"key": "a", "op": "equals", "value": 5})),
        make_campaign(
            id="sum", trigger=where({"key": "a", "op": "accumulativeTotal", "value": 10})
        ),
        make_campaign(
            id="per", reward={"pointsPer": {"key": "a", "every": 1, "points": 1}, "score": 1}
        ),
        make_campaign(id="text", trigger=where({"key": "a", "op": "equals", "value": "x"})),
    )
    states: dict[str, State] = {}
    assert send(program, states, {"a": HUGE}) == [("per", 1, 0)]
    explained = evaluate_event(
        program, {}, "place_order", {"a": HUGE}, Facts(now=NOW), explain=True
    )
    assert [c.reason for c in explained.checks][:4] == ["NoMatchingConditions"] * 4


def test_points_per_earns_at_most_the_award_cap_whatever_the_amount() -> None:
    per = {"pointsPer": {"key": "amount", "every": 10, "points": 3}}
    program = compiled(make_campaign(reward=per))
    spec = program.campaigns[0].spec
    assert reward_points(spec, {"amount": 1e20}) == MAX_AWARD
    assert reward_points(spec, {"amount": 1.7e308}) == MAX_AWARD
    assert reward_points(spec, {"amount": 155}) == 45
    tiny = compiled(make_campaign(reward={"pointsPer": {"key": "a", "every": 1e-300, "points": 1}}))
    assert reward_points(tiny.campaigns[0].spec, {"a": 1e300}) == MAX_AWARD  # quotient is inf


def test_one_achievement_of_many_times_earns_at_most_the_award_cap() -> None:
    program = compiled(
        make_campaign(
            trigger=where({"key": "amount", "op": "accumulativeTotal", "value": 1}),
            reward={"points": MAX_AWARD, "score": MAX_AWARD},
        )
    )
    result = evaluate_event(program, {}, "place_order", {"amount": 5000}, Facts(now=NOW))
    (achievement,) = result.achievements
    assert (achievement.times, achievement.points, achievement.score) == (
        1000,
        MAX_AWARD,
        MAX_AWARD,
    )


def test_running_sums_stay_finite_and_read_back_as_written() -> None:
    program = compiled(
        make_campaign(
            trigger=where({"key": "amount", "op": "accumulativeTotal", "value": 100}),
            repeat={"maxAchievements": 1},
        )
    )
    states: dict[str, State] = {}
    send(program, states, {"amount": 1.7e308})
    send(program, states, {"amount": 1.7e308})
    sums = states["c1"][RULES][1]
    assert sums == {"0": MAX_TOTAL - 100}
    assert json_round_trip(states) == states
    assert progress(program.campaigns[0], states["c1"]) == 100.0
    negative = compiled(
        make_campaign(trigger=where({"key": "amount", "op": "accumulativeTotal", "value": 1}))
    )
    states = {}
    send(negative, states, {"amount": -1.7e308})
    send(negative, states, {"amount": -1.7e308})
    assert states["c1"][RULES][1] == {"0": -MAX_TOTAL}


def test_a_large_sum_completes_a_campaign_as_often_as_its_caps_allow_in_one_event() -> None:
    def times(repeat: dict[str, Any]) -> int:
        program = compiled(
            make_campaign(
                trigger=where({"key": "amount", "op": "accumulativeTotal", "value": 10}),
                repeat=repeat,
            )
        )
        return sum(t for _, t, _ in send(program, {}, {"amount": 1e15}))

    assert times({"maxAchievements": -1}) == 1000
    assert times({"maxAchievements": 7}) == 7
    assert times({"maxAchievements": -1, "perDay": 3}) == 3


def test_different_values_remembers_no_more_than_its_target() -> None:
    program = compiled(
        make_campaign(
            trigger={
                "match": "all",
                "rules": [
                    {"event": "place_order", "where": [distinct("sku", 3)]},
                    {"event": "write_review", "after": 10_001},  # holds the campaign back
                ],
            }
        )
    )
    states: dict[str, State] = {}
    for step in range(10_000):
        send(program, states, {"sku": f"sku-{step}"})
    assert len(states["c1"][RULES][2]["0"]) == 3
    assert progress(program.campaigns[0], states["c1"]) == 50.0


def test_repeated_value_remembers_a_bounded_number_of_values_and_still_achieves() -> None:
    program = compiled(make_campaign(trigger=where(repeated("sku", 3))))
    states: dict[str, State] = {}
    rewarded = 0
    for step in range(10_000):
        rewarded += len(send(program, states, {"sku": f"sku-{step}"}))
        if step % (MAX_REPEATED_VALUES // 2) == 0:  # a product the customer comes back to
            rewarded += len(send(program, states, {"sku": "favourite"}))
    values = states["c1"][RULES][2]["0"]
    assert len(values) == MAX_REPEATED_VALUES
    assert rewarded == 200 // 3  # every third order of the favourite, none of the others
    assert len(msgspec.json.encode(states)) < 5_000


def test_long_values_are_remembered_as_a_short_hash_of_their_canonical_text() -> None:
    program = compiled(make_campaign(trigger=where(repeated("title", 2))))
    states: dict[str, State] = {}
    long_title = "Shoes " * 200_000  # 1.2 MB
    assert send(program, states, {"title": long_title}) == []
    assert send(program, states, {"title": long_title.upper() + "  "}) == [("c1", 1, 10)]
    assert len(msgspec.json.encode(states)) < 200
    assert remembered("\x00") != "\x00" and remembered("\ud800").isascii()
    assert remembered("Red") == "red" and len(remembered("x" * 41)) < MAX_VALUE_CHARS


def test_progress_stored_beyond_the_bounds_by_an_earlier_version_is_repaired() -> None:
    program = compiled(
        make_campaign(
            id="sum", trigger=where({"key": "amount", "op": "accumulativeTotal", "value": 10})
        ),
        make_campaign(id="repeat", trigger=where(repeated("sku", 2))),
        make_campaign(id="distinct", trigger=where(distinct("kind", 3))),
    )
    many = {f"v{i}": 1 for i in range(500)} | {"x" * 5000: 1}
    old: dict[str, State] = {
        "sum": [0, None, 0, [3, {"0": None}, {}]],  # an overflow stored as null
        "repeat": [0, None, 0, [500, {}, {"0": many}]],
        "distinct": [0, None, 0, [7, {}, {"0": {"a": 1, "b": 4}}]],
    }
    states = json_round_trip(old)
    for campaign in program.campaigns:
        assert state_of(campaign, states) is not None
    assert states["sum"][RULES][1] == {"0": 0.0}
    kept = states["repeat"][RULES][2]["0"]
    assert len(kept) == MAX_REPEATED_VALUES and max(map(len, kept)) <= MAX_VALUE_CHARS
    assert [c for c, _, _ in send(program, states, {"amount": 20, "sku": "v1", "kind": "c"})] == [
        "sum",
        "repeat",
        "distinct",
    ]
    assert json_round_trip(states) == states


def test_an_explained_event_with_extreme_values_raises_nothing() -> None:
    program = compiled(
        make_campaign(trigger=where({"key": "a", "op": "accumulativeTotal", "value": 1})),
        make_campaign(id="c2", reward={"pointsPer": {"key": "a", "every": 1, "points": 1}}),
    )
    for value in (HUGE, 1.7e308, -1.7e308, "9" * 4000, [HUGE], {"a": HUGE}):
        result = evaluate_event(
            program, {}, "place_order", {"a": value}, Facts(now=NOW), explain=True
        )
        for check in result.checks:
            assert math.isfinite(check.progress_after) and 0 <= check.points <= MAX_AWARD


def distinct(key: str, target: int) -> dict[str, Any]:
    return {"key": key, "op": "differentValues", "value": target}


def repeated(key: str, target: int) -> dict[str, Any]:
    return {"key": key, "op": "repeatedValue", "value": target}


def test_text_operators_read_a_bounded_prefix_of_a_value() -> None:
    """One event may carry a megabyte of text and a program a thousand conditions: the text
    operators read the first ``MAX_COMPARED_CHARS`` characters (and a list's first
    ``MAX_LIST_ITEMS`` items), so no event can make evaluation read a megabyte per condition."""
    program = compiled(
        make_campaign(id="has", trigger=where({"key": "t", "op": "contains", "value": "needle"})),
        make_campaign(id="is", trigger=where({"key": "t", "op": "equals", "value": "shoe"})),
    )
    near = "x" * (MAX_COMPARED_CHARS - 10) + "needle" + "y" * 900_000
    far = "x" * MAX_COMPARED_CHARS + "needle"
    assert send(program, {}, {"t": near}) == [("has", 1, 10)]
    assert send(program, {}, {"t": far}) == []
    assert send(program, {}, {"t": "Shoe" + " " * 900_000}) == [("is", 1, 10)]
    listed = ["other"] * (MAX_LIST_ITEMS - 1)
    assert send(program, {}, {"t": [*listed, "needle"]}) == [("has", 1, 10)]
    assert send(program, {}, {"t": [*listed, "other", "needle"]}) == []


def test_a_string_too_long_to_be_a_number_reads_as_none() -> None:
    assert number("1" * MAX_NUMBER_CHARS) == float("1" * MAX_NUMBER_CHARS)
    assert number("1" * (MAX_NUMBER_CHARS + 1)) is None
    assert number("0." + "0" * 900_000 + "1") is None
