"""Campaign evaluation is pure: a compiled program, a state and an event in; decisions out."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from kudos.rules.engine import (
    RULES,
    CompiledProgram,
    Facts,
    State,
    compile_program,
    evaluate_event,
    progress,
    reward_points,
)
from kudos.rules.schema import load_program

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def make_campaign(**overrides: Any) -> dict[str, Any]:
    campaign: dict[str, Any] = {
        "id": "c1",
        "name": "Campaign",
        "trigger": {"rules": [{"event": "place_order"}]},
        "repeat": {"maxAchievements": -1},
        "reward": {"points": 10},
    }
    campaign.update(overrides)
    return campaign


def compiled(*campaigns: dict[str, Any], **program: Any) -> CompiledProgram:
    return compile_program(load_program({"campaigns": list(campaigns), **program}), version=1)


def send(
    program: CompiledProgram,
    states: dict[str, State],
    metadata: dict[str, Any] | None = None,
    *,
    name: str = "place_order",
    facts: Facts | None = None,
) -> list[tuple[str, int, int]]:
    """(campaign id, times, points) of each achievement the event causes."""
    result = evaluate_event(program, states, name, metadata or {}, facts or Facts(now=NOW))
    return [(a.campaign.id, a.times, a.points) for a in result.achievements]


def where(*conditions: dict[str, Any], after: int = 1) -> dict[str, Any]:
    return {"rules": [{"event": "place_order", "after": after, "where": list(conditions)}]}


def test_a_matching_event_achieves_and_rewards() -> None:
    program = compiled(make_campaign())
    assert send(program, {}) == [("c1", 1, 10)]


def test_events_with_other_names_are_not_looked_at() -> None:
    program = compiled(make_campaign())
    states: dict[str, State] = {}
    assert send(program, states, name="write_review") == []
    assert states == {}


def test_equals_is_case_insensitive_and_a_comma_list_means_any() -> None:
    program = compiled(
        make_campaign(trigger=where({"key": "currency", "op": "equals", "value": "USD, eur"}))
    )
    assert send(program, {}, {"currency": "EUR"}) == [("c1", 1, 10)]
    assert send(program, {}, {"currency": "usd"}) == [("c1", 1, 10)]
    assert send(program, {}, {"currency": "GBP"}) == []


def test_numbers_compare_numerically() -> None:
    program = compiled(
        make_campaign(trigger=where({"key": "amount", "op": "equals", "value": 150}))
    )
    assert send(program, {}, {"amount": 150.0}) == [("c1", 1, 10)]
    assert send(program, {}, {"amount": "150"}) == [("c1", 1, 10)]
    assert send(program, {}, {"amount": 151}) == []


def test_a_condition_on_a_missing_key_does_not_match_even_not_equals() -> None:
    program = compiled(
        make_campaign(trigger=where({"key": "currency", "op": "notEquals", "value": "USD"}))
    )
    assert send(program, {}, {}) == []
    assert send(program, {}, {"currency": "EUR"}) == [("c1", 1, 10)]


def test_range_operators() -> None:
    cases: list[tuple[dict[str, Any], Any, bool]] = [
        ({"op": "gte", "value": 100}, 100, True),
        ({"op": "gt", "value": 100}, 100, False),
        ({"op": "lte", "value": 100}, 100, True),
        ({"op": "lt", "value": 100}, 99.5, True),
        ({"op": "between", "value": [10, 20]}, 20, True),
        ({"op": "between", "value": [10, 20]}, 21, False),
        ({"op": "gte", "value": 1}, "not a number", False),
        ({"op": "gte", "value": 1}, True, False),
    ]
    for condition, actual, expected in cases:
        program = compiled(make_campaign(trigger=where({"key": "a", **condition})))
        assert bool(send(program, {}, {"a": actual})) is expected, (condition, actual)


def test_contains_and_exists() -> None:
    contains = compiled(
        make_campaign(trigger=where({"key": "title", "op": "contains", "value": "shoe"}))
    )
    assert send(contains, {}, {"title": "Red SHOES"}) == [("c1", 1, 10)]
    assert send(contains, {}, {"title": ["hat", "Shoe"]}) == [("c1", 1, 10)]
    exists = compiled(make_campaign(trigger=where({"key": "coupon", "op": "exists"})))
    assert send(exists, {}, {"coupon": "X"}) == [("c1", 1, 10)]
    assert send(exists, {}, {"coupon": None}) == []


def test_after_n_counts_and_each_achievement_consumes_its_counts() -> None:
    program = compiled(make_campaign(trigger=where(after=3)))
    states: dict[str, State] = {}
    outcomes = [send(program, states) for _ in range(7)]
    assert [bool(o) for o in outcomes] == [False, False, True, False, False, True, False]


def test_match_all_needs_every_rule_and_any_needs_one() -> None:
    rules = [{"event": "place_order"}, {"event": "write_review", "after": 2}]
    both = compiled(make_campaign(trigger={"match": "all", "rules": rules}))
    states: dict[str, State] = {}
    assert send(both, states) == []
    assert send(both, states, name="write_review") == []
    assert send(both, states, name="write_review") == [("c1", 1, 10)]
    either = compiled(make_campaign(trigger={"match": "any", "rules": rules}))
    assert send(either, {}) == [("c1", 1, 10)]


def test_max_achievements_and_the_daily_cap() -> None:
    capped = compiled(make_campaign(repeat={"maxAchievements": 2}))
    states: dict[str, State] = {}
    assert [bool(send(capped, states)) for _ in range(3)] == [True, True, False]
    daily = compiled(make_campaign(repeat={"maxAchievements": -1, "perDay": 1}))
    states = {}
    assert bool(send(daily, states)) and not send(daily, states)
    tomorrow = Facts(now=datetime(2026, 11, 23, 0, 1, tzinfo=UTC))
    assert send(daily, states, facts=tomorrow) == [("c1", 1, 10)]


def test_a_capped_campaign_does_not_keep_counting() -> None:
    program = compiled(make_campaign(repeat={"maxAchievements": 1}, trigger=where(after=2)))
    states: dict[str, State] = {}
    for _ in range(5):
        send(program, states)
    achieved, _, _, count = states["c1"]
    assert (achieved, count) == (1, 0)


def test_schedule_and_audience_gate_the_campaign() -> None:
    scheduled = compiled(make_campaign(schedule={"start": "2026-12-01T00:00:00Z"}))
    assert send(scheduled, {}) == []
    tagged = compiled(make_campaign(audience={"tags": ["vip"]}))
    assert send(tagged, {}) == []
    assert send(tagged, {}, facts=Facts(now=NOW, tags=frozenset({"vip"}))) == [("c1", 1, 10)]
    tiers = [
        {"order": 1, "name": "B", "minProgress": 0},
        {"order": 2, "name": "S", "minProgress": 5},
    ]
    tiered = compiled(make_campaign(audience={"minTier": 2}), tiers=tiers)
    assert send(tiered, {}, facts=Facts(now=NOW, tier_order=1)) == []
    assert send(tiered, {}, facts=Facts(now=NOW, tier_order=2)) == [("c1", 1, 10)]


def test_points_per_floors() -> None:
    program = compiled(
        make_campaign(reward={"pointsPer": {"key": "order_amount", "every": 10, "points": 1}})
    )
    assert send(program, {}, {"order_amount": 155}) == [("c1", 1, 15)]
    assert send(program, {}, {"order_amount": 9.99}) == [("c1", 1, 0)]
    assert send(program, {}, {}) == [("c1", 1, 0)]
    assert reward_points(program.campaigns[0].spec, {"order_amount": "42"}) == 4


def test_accumulative_total_can_complete_several_times_in_one_event() -> None:
    program = compiled(
        make_campaign(trigger=where({"key": "amount", "op": "accumulativeTotal", "value": 100}))
    )
    states: dict[str, State] = {}
    assert send(program, states, {"amount": 60}) == []
    assert send(program, states, {"amount": 260}) == [("c1", 3, 30)]
    sums = states["c1"][RULES][1]
    assert sums == {"0": 20.0}
    assert send(program, states, {"amount": "n/a"}) == []


def test_different_values_and_repeated_value() -> None:
    different = compiled(
        make_campaign(trigger=where({"key": "category", "op": "differentValues", "value": 3}))
    )
    states: dict[str, State] = {}
    seen = [send(different, states, {"category": c}) for c in ("a", "A", "b", "c", "d")]
    assert [bool(s) for s in seen] == [False, False, False, True, False]
    repeated = compiled(
        make_campaign(trigger=where({"key": "product", "op": "repeatedValue", "value": 2}))
    )
    states = {}
    seen = [send(repeated, states, {"product": p}) for p in ("x", "y", "x", "x", "x")]
    assert [bool(s) for s in seen] == [False, False, True, False, True]


def test_progress_is_the_share_of_the_way_to_the_next_achievement() -> None:
    program = compiled(
        make_campaign(
            trigger={
                "match": "all",
                "rules": [{"event": "place_order", "after": 4}, {"event": "x"}],
            }
        )
    )
    states: dict[str, State] = {}
    send(program, states)
    campaign = program.campaigns[0]
    assert progress(campaign, states["c1"]) == 12.5


def test_the_explanation_names_each_condition_and_its_actual_value() -> None:
    program = compiled(
        make_campaign(
            trigger=where(
                {"key": "currency", "op": "equals", "value": "USD"},
                {"key": "amount", "op": "gte", "value": 100},
            )
        )
    )
    result = evaluate_event(
        program, {}, "place_order", {"currency": "USD", "amount": 50}, Facts(now=NOW), explain=True
    )
    (check,) = result.checks
    assert (check.eligible, check.reason, check.times) == (True, "NoMatchingConditions", 0)
    conditions = [(c.key, c.actual, c.matched) for c in check.rules[0].conditions]
    assert conditions == [("currency", "USD", True), ("amount", 50, False)]


def test_badge_and_score_only_rewards() -> None:
    program = compiled(make_campaign(reward={"badge": "Reviewer", "score": 5}))
    result = evaluate_event(program, {}, "place_order", {}, Facts(now=NOW), explain=True)
    (achievement,) = result.achievements
    assert (achievement.points, achievement.score, achievement.badge) == (0, 5, "Reviewer")
    assert result.checks[0].reason == "NonPointsReward"


def test_the_fast_path_decides_exactly_as_the_explained_one() -> None:
    """Ingest evaluates without explanation (its own loop); the preview explains. Both must
    reach the same achievements and states on any sequence of events."""
    root = Path(__file__).resolve().parents[2]
    rng = random.Random(7)
    names = ["place_order", "write_review", "login"]
    pools: dict[str, list[Any]] = {
        "order_amount": [5, 19.99, 50, 150.75, 200, 999, "120", "x", None, True],
        "currency": ["USD", "eur", "GBP", 5, None],
        "payment_method": ["Credit Card", "cash", ["card"], None],
        "rating": [1, 2, 5, "5", 5.0, None],
        "product_id": ["p1", "p2", "p3", 4, {"a": 1}, None],
        "review": ["5 Stars Product", "meh", None],
        "order_id": ["o1", None],
    }
    for path in ("bench/campaigns-20.yaml", "examples/shop-program.yaml"):
        program = compile_program(load_program(yaml.safe_load((root / path).read_text())), 1)
        fast: dict[str, State] = {}
        explained: dict[str, State] = {}
        for step in range(600):
            metadata = {key: rng.choice(pool) for key, pool in pools.items() if rng.random() < 0.8}
            metadata = {key: value for key, value in metadata.items() if value is not None}
            facts = Facts(
                now=NOW + timedelta(hours=step * rng.choice([0, 1, 7])),
                tier_order=rng.choice([None, 1, 2, 3]),
            )
            name = rng.choice(names)
            got = evaluate_event(program, fast, name, metadata, facts)
            want = evaluate_event(program, explained, name, metadata, facts, explain=True)
            assert [(a.campaign.id, a.times, a.points, a.score) for a in got.achievements] == [
                (a.campaign.id, a.times, a.points, a.score) for a in want.achievements
            ]
            assert fast == explained
