"""Send Events body validation (pure): what passes, and which code each problem gets."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kudos import errors
from kudos.domain.payload import (
    MAX_BODY_VALUES,
    MAX_DEPTH,
    MAX_JSON_DEPTH,
    MAX_METADATA_KEYS,
    MAX_REQUEST_VALUES,
    decode_event_batch,
    decode_json,
    parse_event_batch,
)


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


def _outcome(fn: Any) -> Any:
    try:
        return fn()
    except errors.KudosError as exc:
        return type(exc)


_json_leaf = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_json = st.recursive(
    _json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=12,
)
_ids = st.none() | st.integers() | st.sampled_from(["", " ", "c", "x" * 100, "x" * 101]) | st.text()
_names = st.sampled_from(["", "a", "n" * 100, "n" * 101]) | st.text(max_size=3)
_metadata = (
    st.none()
    | _json
    | st.dictionaries(
        st.sampled_from(["k", "k" * 255, "k" * 256]) | st.text(max_size=3), _json, max_size=3
    )
)
_bodies = st.fixed_dictionaries(
    {},
    optional={
        "customerId": _ids,
        "events": st.none() | _json | st.dictionaries(_names, _metadata, max_size=3),
        "email": st.none() | st.integers() | st.sampled_from(["a@b.io", "e" * 255]),
        "mobile": st.none() | st.sampled_from(["+1 555", "1" * 51]),
        "extra": _json,
    },
)

_mostly_valid = st.fixed_dictionaries(
    {
        "customerId": st.text(min_size=1, max_size=4),
        "events": st.dictionaries(_names, _metadata, min_size=1, max_size=3),
    },
    optional={"email": st.none() | st.text(max_size=4), "mobile": st.text(max_size=3)},
)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(_bodies | _mostly_valid)
def test_the_fast_path_agrees_with_the_general_validator(value: dict[str, Any]) -> None:
    text = json.dumps(value, ensure_ascii=False)
    try:
        raw = text.encode()  # the fast path: no \\u escapes
    except UnicodeEncodeError:  # a lone surrogate can only travel escaped
        raw = json.dumps(value).encode()
    fast = _outcome(lambda: decode_event_batch(raw))
    general = _outcome(lambda: parse_event_batch(json.loads(raw)))
    assert fast == general


def test_nesting_too_deep_inside_metadata_is_refused_by_the_fast_path_too() -> None:
    nested: Any = 1
    for _ in range(MAX_DEPTH + 1):
        nested = {"k": nested}
    raw = json.dumps(body(events={"e": {"k": nested}})).encode()
    with pytest.raises(errors.InvalidValue):
        decode_event_batch(raw)


def test_bodies_that_are_not_json_are_3016() -> None:
    for raw in (b"{", b"\xff\xfe", b'{"customerId": "c"} trailing'):
        with pytest.raises(errors.InvalidPayload):
            decode_event_batch(raw)


@pytest.mark.parametrize("levels", [1_000, 100_000])
@pytest.mark.parametrize("fields", [{}, {"attributes_field": "playerAttributes"}])
def test_nesting_past_the_parser_is_3003_naming_the_limit(levels: int, fields: Any) -> None:
    deep = b"[" * levels + b"]" * levels
    raw = b'{"customerId": "c", "events": {"a": {"k": ' + deep + b"}}}"
    for decode in (lambda: decode_json(raw), lambda: decode_event_batch(raw, **fields)):
        with pytest.raises(errors.InvalidValue, match=f"deeper than {MAX_JSON_DEPTH} levels"):
            decode()


def test_any_body_nests_at_most_the_named_depth() -> None:
    decode_json(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH)
    with pytest.raises(errors.InvalidValue):
        decode_json(b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1))


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b'{"n": 1e400}', errors.InvalidValue),
        (b'{"n": -1e400}', errors.InvalidValue),
        (b'{"n": NaN}', errors.InvalidPayload),
        (b'{"n": Infinity}', errors.InvalidPayload),
        (b'{"s": "\\u0000"}', errors.InvalidValue),
        (b'{"\\u0000": 1}', errors.InvalidValue),
        (b'{"s": "\\ud800"}', errors.InvalidPayload),
        (b"[" + b"0," * MAX_BODY_VALUES + b"0]", errors.InvalidValue),
    ],
)
def test_every_body_is_strict_json_the_stores_can_hold(
    raw: bytes, error: type[errors.KudosError]
) -> None:
    with pytest.raises(error):
        decode_json(raw)


def test_an_escaped_backslash_before_u0000_is_not_a_nul() -> None:
    assert decode_json(b'{"s": "\\\\u0000"}') == {"s": "\\u0000"}


@pytest.mark.parametrize("customer_id", ["/", "a/b", ".", ".."])
def test_a_customer_id_no_url_path_can_carry_is_refused(customer_id: str) -> None:
    raw = json.dumps(body(customerId=customer_id)).encode()
    with pytest.raises(errors.InvalidValue, match="no URL path"):
        decode_event_batch(raw)
    with pytest.raises(errors.InvalidValue, match="no URL path"):
        parse_event_batch(body(customerId=customer_id))


@pytest.mark.parametrize("customer_id", ["...", ". ", "a.b", "a\\b", "100%", "?#"])
def test_other_customer_ids_are_fine(customer_id: str) -> None:
    assert decode_event_batch(json.dumps(body(customerId=customer_id)).encode()).customer_id == (
        customer_id
    )


_MANY = {f"k{n}": 0 for n in range(MAX_METADATA_KEYS + 1)}
_MOST = {"list": list(range(MAX_REQUEST_VALUES - 1))}  # one key and its items: the limit


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (body(events={"a": dict(list(_MANY.items())[:-1])}), True),
        (body(events={"a": _MANY}), False),
        (body(events={"a": _MOST}), True),
        (body(events={"a": _MOST, "b": {"one": 1}}), False),
        (body(events={"a": {"x": [_MOST]}}), False),
    ],
    ids=["255-keys", "256-keys", "10000-values", "10001-values", "10002-nested"],
)
def test_metadata_keys_per_event_and_values_per_request_are_limited(
    value: dict[str, Any], ok: bool
) -> None:
    raw = json.dumps(value).encode()
    outcome = _outcome(lambda: parse_event_batch(value))
    assert _outcome(lambda: decode_event_batch(raw)) == outcome  # the fast path agrees
    assert (outcome is errors.InvalidValue) is not ok


@pytest.mark.parametrize(
    ("custom", "ok"), [({"a": 1}, True), (None, True), ("s", False), ([1], False)]
)
def test_player_attributes_custom_must_be_an_object(custom: Any, ok: bool) -> None:
    value = {"playerUniqueId": "p", "events": {"a": {}}, "playerAttributes": {"custom": custom}}
    outcome = _outcome(
        lambda: parse_event_batch(
            value, id_field="playerUniqueId", attributes_field="playerAttributes"
        )
    )
    assert (outcome is errors.InvalidValue) is not ok
