"""The program document: what loads, and how each problem is reported by its path."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kudos import errors
from kudos.rules.schema import load_program


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
            "differentValues takes a number above 0",
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
