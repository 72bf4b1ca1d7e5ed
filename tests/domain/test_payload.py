"""Send Events body validation (pure): what passes, and which code each problem gets."""

from __future__ import annotations

from typing import Any

import pytest

from kudos import errors
from kudos.domain.payload import MAX_DEPTH, parse_event_batch


def body(**overrides: Any) -> dict[str, Any]:
    value: dict[str, Any] = {"customerId": "c", "events": {"place_order": {"amount": 1}}}
    value.update(overrides)
    return value


def test_a_valid_body_becomes_an_event_batch_in_order() -> None:
    batch = parse_event_batch(
        body(events={"b": None, "a": {"x": [1, {"y": True}]}}, email="e@x.io")
    )
    assert batch.customer_id == "c"
    assert batch.events == (("b", {}), ("a", {"x": [1, {"y": True}]}))
    assert batch.email == "e@x.io"


def test_legacy_bodies_name_the_customer_player_unique_id() -> None:
    batch = parse_event_batch(
        {"playerUniqueId": "p", "events": {"a": {}}, "playerAttributes": {"displayName": "P"}},
        id_field="playerUniqueId",
        attributes_field="playerAttributes",
    )
    assert (batch.customer_id, batch.attributes) == ("p", {"displayName": "P"})


def test_metadata_may_nest_up_to_the_limit() -> None:
    nested: dict[str, Any] = {}
    cursor = nested
    for _ in range(MAX_DEPTH - 1):
        cursor["k"] = {}
        cursor = cursor["k"]
    parse_event_batch(body(events={"deep": nested}))
    with pytest.raises(errors.InvalidValue):
        parse_event_batch(body(events={"deeper": {"k": nested}}))


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("not an object", errors.InvalidPayload),
        (body(customerId=None), errors.NullArguments),
        (body(customerId=" "), errors.InvalidValue),
        (body(customerId="\ud800"), errors.InvalidValue),
        (body(events={str(n): {} for n in range(101)}), errors.InvalidValue),
        (body(events={"a": {"k" * 256: 1}}), errors.InvalidValue),
        (body(mobile="1" * 51), errors.InvalidValue),
    ],
)
def test_each_problem_gets_its_error(value: Any, error: type[errors.KudosError]) -> None:
    with pytest.raises(error):
        parse_event_batch(value)


def test_missing_fields_are_3000() -> None:
    with pytest.raises(errors.MissingArguments) as missing:
        parse_event_batch({"events": {"a": {}}})
    assert missing.value.code == 3000
