"""Validation of Send Events bodies: decoded JSON in, an ``EventBatch`` out, or a coded error.

Limits (documented in docs/events.md):
- ``customerId``: a string of 1 to 100 characters, not only white space;
- ``events``: an object of 1 to 100 entries; each name 1 to 100 characters; each value an
  object, ``{}`` or ``null``;
- metadata: keys of at most 255 characters; values may be strings, numbers, booleans, null,
  arrays and objects, nested at most 10 levels deep (the metadata object is level 1);
- ``email``: at most 254 characters; ``mobile``: at most 50; both optional, ``null`` = absent;
- no string anywhere may contain a NUL character (PostgreSQL cannot store one);
- the whole body is at most 1 MiB (checked by the API before decoding).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec

from kudos import errors

MAX_ID_LENGTH = 100
MAX_EVENTS = 100
MAX_EVENT_NAME = 100
MAX_KEY_LENGTH = 255
MAX_DEPTH = 10
MAX_EMAIL = 254
MAX_MOBILE = 50

Metadata = dict[str, Any]


@dataclass(slots=True)  # not frozen: a frozen __init__ costs twice as much on the hot path
class EventBatch:
    """One customer and the named events sent for them in one request."""

    customer_id: str
    events: tuple[tuple[str, Metadata], ...]
    email: str | None = None
    mobile: str | None = None
    attributes: Metadata = field(default_factory=dict)


class _PlainBody(msgspec.Struct):
    """The common v4 body, checked by msgspec in C. Whatever it refuses goes through
    ``parse_event_batch``, which names the problem with its code."""

    customerId: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]
    events: Annotated[
        dict[
            Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_EVENT_NAME)],
            dict[Annotated[str, msgspec.Meta(max_length=MAX_KEY_LENGTH)], Any] | None,
        ],
        msgspec.Meta(min_length=1, max_length=MAX_EVENTS),
    ]
    email: Annotated[str, msgspec.Meta(max_length=MAX_EMAIL)] | None = None
    mobile: Annotated[str, msgspec.Meta(max_length=MAX_MOBILE)] | None = None


_decode_plain = msgspec.json.Decoder(_PlainBody).decode
_decode_any = msgspec.json.decode


def decode_event_batch(
    raw: bytes, *, id_field: str = "customerId", attributes_field: str | None = None
) -> EventBatch:
    """Decode and validate a raw Send Events body; ``InvalidPayload`` if it is not JSON.

    Fast path: a v4 body whose JSON has no ``\\u`` escape (so no NUL or lone surrogate can
    hide in it) is decoded straight into a typed struct; only nested metadata still needs
    the Python walk. Anything else takes the general path with its precise error codes.
    """
    escapes = b"\\u" in raw
    if id_field == "customerId" and attributes_field is None and not escapes:
        try:
            plain = _decode_plain(raw)
        except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
            pass
        else:
            batch = _from_plain(plain)
            if batch is not None:
                return batch
    try:
        decoded = _decode_any(raw)
    except (msgspec.DecodeError, UnicodeDecodeError):  # bad JSON, or bytes that are not UTF-8
        raise errors.InvalidPayload() from None
    return parse_event_batch(
        decoded, id_field=id_field, attributes_field=attributes_field, escapes=escapes
    )


def _from_plain(plain: _PlainBody) -> EventBatch | None:
    """The batch, or ``None`` when a rule msgspec cannot express fails (the general path
    then reports it)."""
    if not plain.customerId.strip():
        return None
    events = []
    for name, metadata in plain.events.items():
        if metadata is None:
            metadata = {}
        else:
            for value in metadata.values():
                if type(value) in _CONTAINERS and not _nests_within(value, depth=2):
                    return None
        events.append((name, metadata))
    return EventBatch(plain.customerId, tuple(events), plain.email, plain.mobile)


def _nests_within(value: Any, *, depth: int) -> bool:
    try:
        check_json_value(value, "", depth=depth, text=False)
    except errors.InvalidValue:
        return False
    return True


def parse_event_batch(
    body: Any,
    *,
    id_field: str = "customerId",
    attributes_field: str | None = None,
    escapes: bool = True,
) -> EventBatch:
    """Validate a decoded Send Events body; raise a ``PayloadError`` naming the first problem.

    ``escapes=False`` says the raw JSON held no ``\\u`` escape, so metadata strings need no
    NUL or surrogate check (the hot path's common case).
    """
    if not isinstance(body, dict):
        raise errors.InvalidPayload("Invalid payload: the body must be a JSON object.")
    customer_id = require_string(body, id_field, max_length=MAX_ID_LENGTH)
    events = _parse_events(body, text=escapes)
    attributes: Metadata = {}
    if attributes_field is not None:
        attributes = optional_object(body, attributes_field)
    return EventBatch(
        customer_id=customer_id,
        events=events,
        email=optional_string(body, "email", max_length=MAX_EMAIL),
        mobile=optional_string(body, "mobile", max_length=MAX_MOBILE),
        attributes=attributes,
    )


def require_string(body: dict[str, Any], name: str, *, max_length: int) -> str:
    """A required non-blank string field of at most ``max_length`` characters."""
    if name not in body:
        raise errors.MissingArguments(f"Missing arguments: '{name}' is required.")
    value = body[name]
    if value is None:
        raise errors.NullArguments(f"Null arguments: '{name}' must not be null.")
    if not isinstance(value, str):
        raise errors.InvalidValue(f"Invalid value: '{name}' must be a string.")
    if not value.strip() or len(value) > max_length:
        raise errors.InvalidValue(
            f"Invalid value: '{name}' must be 1 to {max_length} characters, not blank."
        )
    check_text(value, name)
    return value


def optional_string(body: dict[str, Any], name: str, *, max_length: int) -> str | None:
    """An optional string field; ``null`` counts as absent."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_length:
        raise errors.InvalidValue(
            f"Invalid value: '{name}' must be a string of at most {max_length} characters."
        )
    check_text(value, name)
    return value


def optional_object(body: dict[str, Any], name: str) -> Metadata:
    """An optional free-form object field, checked like metadata; ``null`` counts as absent."""
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise errors.InvalidValue(f"Invalid value: '{name}' must be an object.")
    check_json_value(value, name, depth=1)
    return value


def check_text(value: str, where: str) -> None:
    """Reject strings the stores cannot hold: NUL characters and lone surrogates."""
    if "\x00" in value:
        raise errors.InvalidValue(f"Invalid value: '{where}' contains a NUL character.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise errors.InvalidValue(
            f"Invalid value: '{where}' contains an unpaired surrogate."
        ) from None


def check_json_value(value: Any, where: str, *, depth: int, text: bool = True) -> None:
    """Walk a metadata value, enforcing the nesting depth, key lengths and text rules.

    ``text=False`` skips the per-string checks: the caller knows no string can break them
    (the raw JSON has no ``\\u`` escape, the only way to write NUL or a lone surrogate).
    """
    kind = type(value)
    if kind is str:
        if text:
            check_text(value, where)
    elif kind is dict:
        if depth > MAX_DEPTH:
            raise errors.InvalidValue(f"Invalid value: '{where}' nests deeper than {MAX_DEPTH}.")
        for key, item in value.items():
            if len(key) > MAX_KEY_LENGTH:
                raise errors.InvalidValue(
                    f"Invalid value: a key in '{where}' is longer than {MAX_KEY_LENGTH} characters."
                )
            if text:
                check_text(key, where)
            if type(item) in _CONTAINERS:
                check_json_value(item, f"{where}.{key}", depth=depth + 1, text=text)
            elif text and type(item) is str:
                check_text(item, where)
    elif kind is list:
        if depth > MAX_DEPTH:
            raise errors.InvalidValue(f"Invalid value: '{where}' nests deeper than {MAX_DEPTH}.")
        for item in value:
            if type(item) in _CONTAINERS or (text and type(item) is str):
                check_json_value(item, where, depth=depth + 1, text=text)


_CONTAINERS = (dict, list)


def _parse_events(body: dict[str, Any], *, text: bool) -> tuple[tuple[str, Metadata], ...]:
    if "events" not in body:
        raise errors.MissingArguments("Missing arguments: 'events' is required.")
    events = body["events"]
    if events is None:
        raise errors.NullArguments("Null arguments: 'events' must not be null.")
    if not isinstance(events, dict):
        raise errors.InvalidValue("Invalid value: 'events' must be an object of name → metadata.")
    if not 1 <= len(events) <= MAX_EVENTS:
        raise errors.InvalidValue(f"Invalid value: 'events' must hold 1 to {MAX_EVENTS} events.")
    parsed = []
    for name, metadata in events.items():
        if not name or len(name) > MAX_EVENT_NAME:
            raise errors.InvalidValue(
                f"Invalid value: event names must be 1 to {MAX_EVENT_NAME} characters."
            )
        check_text(name, "events")
        if metadata is None:
            metadata = {}
        elif not isinstance(metadata, dict):
            raise errors.InvalidValue(
                f"Invalid value: the metadata of event '{name}' must be an object or null."
            )
        check_json_value(metadata, f"events.{name}", depth=1, text=text)
        parsed.append((name, metadata))
    return tuple(parsed)
