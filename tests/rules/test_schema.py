"""The program document: what loads, and how each problem is reported by its path."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from kudos import errors
from kudos.rules.schema import event_names, load_program, tier_names


def make_program(**overrides: Any) -> dict[str, Any]:
    program: dict[str, Any] = {
        "pointsExpiryDays": 365,
        "tiering": {"method": "points"},
        "tiers": [
            {"order": 1, "name": "Bronze", "minProgress": 0},
            {"order": 2, "name": "Silver", "minProgress": 500, "entryRewardPoints": 50},
        ],
        "campaigns": [
            {
                "id": "order-points",
                "name": "Points per order",
                "trigger": {
                    "match": "all",
                    "rules": [
                        {
                            "event": "place_order",
                            "after": 1,
                            "where": [{"key": "currency", "op": "equals", "value": "USD,EUR"}],
                        }
                    ],
                },
                "repeat": {"maxAchievements": -1, "perDay": 5},
                "reward": {"pointsPer": {"key": "order_amount", "every": 10, "points": 1}},
            }
        ],
    }
    program.update(overrides)
    return program


def problems_of(document: Any) -> list[str]:
    with pytest.raises(errors.ProgramInvalid) as refused:
        load_program(document)
    return refused.value.problems


def test_a_valid_program_loads_with_defaults_filled_in() -> None:
    program = load_program(make_program())
    campaign = program.campaigns[0]
    assert campaign.repeat.max_achievements == -1
    assert campaign.trigger.rules[0].where[0].value == "USD,EUR"
    assert program.document()["campaigns"][0]["repeat"] == {"maxAchievements": -1, "perDay": 5}


def test_an_unknown_operator_is_named_by_its_full_path() -> None:
    document = make_program()
    document["campaigns"][0]["trigger"]["rules"][0]["where"].append(
        {"key": "order_amount", "op": "gte ", "value": 10}
    )
    assert problems_of(document) == [
        'campaigns[0].trigger.rules[0].where[1].op: unknown operator "gte "'
    ]


def test_every_problem_is_listed_not_just_the_first() -> None:
    document = make_program()
    campaign = document["campaigns"][0]
    campaign["trigger"]["rules"][0]["after"] = 0
    campaign["reward"] = {"points": -1}
    document["tiering"] = {"method": "stars"}
    found = problems_of(document)
    assert any(p.startswith("campaigns[0].trigger.rules[0].after:") for p in found)
    assert any(p.startswith("campaigns[0].reward.points:") for p in found)
    assert any(p.startswith("tiering.method:") for p in found)


def test_misspelt_fields_are_refused_rather_than_ignored() -> None:
    document = make_program()
    document["campaigns"][0]["reward"]["pointz"] = 5
    assert problems_of(document) == ["campaigns[0].reward.pointz: Extra inputs are not permitted"]


@pytest.mark.parametrize(
    ("condition", "problem"),
    [
        ({"key": "a", "op": "between", "value": [5, 1]}, "between needs min <= max"),
        ({"key": "a", "op": "between", "value": 5}, "between takes [min, max] numbers"),
        ({"key": "a", "op": "gte", "value": "ten"}, "gte takes a number"),
        (
            {"key": "a", "op": "differentValues", "value": 0},
            "differentValues takes a number above 0, at most 1,000",
        ),
        ({"key": "a", "op": "contains", "value": ""}, "contains takes a non-empty string"),
        ({"key": "a", "op": "exists", "value": 3}, "exists takes no value"),
        ({"key": "a", "op": "equals", "value": None}, "equals takes a string or a number"),
    ],
)
def test_each_operator_checks_its_value(condition: dict[str, Any], problem: str) -> None:
    document = make_program()
    document["campaigns"][0]["trigger"]["rules"][0]["where"] = [condition]
    assert problems_of(document) == [f"campaigns[0].trigger.rules[0].where[0].value: {problem}"]


def test_cross_field_rules_are_checked() -> None:
    document = make_program()
    twin = copy.deepcopy(document["campaigns"][0])
    twin["schedule"] = {"start": "2026-02-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}
    twin["audience"] = {"minTier": 7}
    twin["reward"] = {}
    document["campaigns"].append(twin)
    document["tiers"][1]["minProgress"] = 0
    found = problems_of(document)
    assert 'campaigns[1].id: duplicate campaign id "order-points"' in found
    assert "campaigns[1].schedule: start must be before end" in found
    assert "campaigns[1].audience.minTier: no tier has order 7" in found
    assert "campaigns[1].reward: give points, pointsPer, score or a badge" in found
    assert any(p.startswith('tiers: "Silver" (order 2) needs a higher minProgress') for p in found)


def test_spend_tiering_names_its_event_and_key() -> None:
    assert problems_of(make_program(tiering={"method": "spend"})) == [
        "tiering: the spend method needs both event and key"
    ]


def test_a_document_that_is_not_a_mapping_is_refused() -> None:
    assert problems_of(["campaigns"]) == ["(document): must be an object (a YAML or JSON mapping)"]


def campaigns_of(count: int, *, rules: int = 1, conditions: int = 0) -> list[dict[str, Any]]:
    where = [{"key": f"k{i}", "op": "exists"} for i in range(conditions)]
    return [
        {
            "id": f"c{n}",
            "name": f"C{n}",
            "trigger": {"rules": [{"event": "e", "where": where} for _ in range(rules)]},
            "reward": {"points": 1},
        }
        for n in range(count)
    ]


def test_the_size_of_the_whole_program_is_bounded() -> None:
    assert problems_of({"campaigns": campaigns_of(40, rules=10, conditions=3)}) == [
        "campaigns: at most 300 rules in all (400)",
        "campaigns: at most 1000 conditions in all (1200)",
    ]
    assert problems_of({"campaigns": campaigns_of(101)}) == ["campaigns: at most 100 campaigns"]
    load_program({"campaigns": campaigns_of(30, rules=10, conditions=3)})  # at the limits


def test_what_aggregates_remember_is_bounded_across_the_program() -> None:
    campaigns = campaigns_of(11)
    for campaign in campaigns:
        campaign["trigger"]["rules"][0]["where"] = [
            {"key": "sku", "op": "repeatedValue", "value": 3}
        ]
    assert problems_of({"campaigns": campaigns}) == [
        "campaigns: differentValues targets and 100 per repeatedValue condition remember at"
        " most 1000 values in all (1100)"
    ]
    load_program({"campaigns": campaigns[:10]})


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (make_program(pointsExpiryDays=36_501), "pointsExpiryDays: Input should be less than"),
        ({"tiers": [{"order": 10_001, "name": "B", "minProgress": 0}]}, "tiers[0].order:"),
        ({"tiers": [{"order": 1, "name": "B", "minProgress": -1}]}, "tiers[0].minProgress:"),
        ({"tiers": [{"order": 1, "name": "B", "minProgress": 0.5, "x": 1}]}, "tiers[0].x:"),
        ({"pointsExpiryDays": float("inf")}, "pointsExpiryDays: must be a finite number"),
        (
            {"tiers": [{"order": 1, "name": "B", "minProgress": 2**53}]},
            "tiers[0].minProgress: must",
        ),
        ({"tiering": {"method": "points", "event": "a\x00"}}, "tiering.event: text with a NUL"),
        ({"tiering": {"\ud800": 1}}, "tiering: text with a NUL character or a lone surrogate"),
    ],
)
def test_every_number_and_string_of_a_program_is_bounded(
    document: dict[str, Any], problem: str
) -> None:
    found = problems_of(document)
    assert any(p.startswith(problem) for p in found), found


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("points", 1_000_000_001),
        ("score", 1_000_000_001),
        ("pointsPer", {"key": "a", "every": 1, "points": 1_000_000_001}),
        ("pointsPer", {"key": "a", "every": float("nan"), "points": 1}),
    ],
)
def test_a_reward_is_at_most_the_award_cap(field: str, value: Any) -> None:
    document = make_program()
    document["campaigns"][0]["reward"] = {field: value}
    assert problems_of(document)


def test_condition_values_and_schedules_are_bounded() -> None:
    document = make_program()
    campaign = document["campaigns"][0]
    campaign["trigger"]["rules"][0]["where"] = [
        {"key": "a", "op": "differentValues", "value": 1001},
        {"key": "a", "op": "repeatedValue", "value": 1_000_001},
        {"key": "a", "op": "equals", "value": "x" * 1001},
        {"key": "a", "op": "between", "value": [0, 10**20]},
    ]
    campaign["repeat"] = {"maxAchievements": 1_000_001, "perDay": 0}
    campaign["schedule"] = {"start": "1969-12-31T23:00:00Z"}
    found = problems_of(document)
    assert found[0] == (
        "campaigns[0].trigger.rules[0].where[3].value[1]: must be at most"
        " 9,007,199,254,740,991 either way"
    )  # what cannot be stored is named alone
    del campaign["trigger"]["rules"][0]["where"][3]
    found = problems_of(document)
    for expected in (
        "campaigns[0].repeat.maxAchievements:",
        "campaigns[0].repeat.perDay:",
        "campaigns[0].schedule.start: must be in the years 1970 to 9998 (UTC)",
    ):
        assert any(p.startswith(expected) for p in found), (expected, found)
    campaign["repeat"], campaign["schedule"] = {}, {}
    assert problems_of(document) == [
        "campaigns: differentValues targets and 100 per repeatedValue condition remember at"
        " most 1000 values in all (1101)",
        "campaigns[0].trigger.rules[0].where[0].value: differentValues takes a number above 0,"
        " at most 1,000",
        "campaigns[0].trigger.rules[0].where[1].value: repeatedValue takes a number above 0,"
        " at most 1,000,000",
        "campaigns[0].trigger.rules[0].where[2].value: text of at most 1,000 characters",
    ]


def test_the_event_names_of_a_document_that_does_not_load_are_read_best_effort() -> None:
    document = make_program(pointsExpiryDays=10**9, tiering={"method": "eventCount", "event": "x"})
    assert event_names(document) == frozenset({"place_order", "x"})
    assert event_names({"campaigns": [{"trigger": {"rules": [{"event": 5}]}}]}) is None
    assert event_names({"campaigns": "nope"}) is None
    assert event_names(["campaigns"]) is None
    assert event_names({}) == frozenset()


def test_the_tier_names_of_a_document_that_does_not_load_are_read_best_effort() -> None:
    tiers = [{"order": 1, "name": "B"}, {"order": "2", "name": "S"}, "G", {"order": 3}]
    assert tier_names({"tiers": tiers}) == {1: "B"}
    assert tier_names({"tiers": "B"}) == {} and tier_names(None) == {}


def test_the_example_and_bench_programs_load() -> None:
    root = Path(__file__).resolve().parents[2]
    for path in ("examples/shop-program.yaml", "bench/campaigns-20.yaml"):
        load_program(yaml.safe_load((root / path).read_text()))
