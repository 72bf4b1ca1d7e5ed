"""Validation of request bodies: raw JSON in, decoded values (or an ``EventBatch``) out, or a
coded error.

Every body (documented in docs/events.md and docs/errors.md):
- is at most 1 MiB (checked by the API before decoding) and strict JSON: numbers are finite
  doubles or integers (``1e400``, ``NaN``, ``Infinity``: refused), text is UTF-8 without lone
  surrogates (refused by the parser, 3016);
- nests at most ``MAX_JSON_DEPTH`` levels and holds at most ``MAX_BODY_VALUES`` keys and
  array items in all (3003), so nothing later (validation, storage, the JSON answer) walks an
  unbounded structure;
- holds no NUL character in any string or key (PostgreSQL cannot store one; 3003).

Send Events bodies besides:
- ``customerId``: a string of 1 to 100 characters, not only white space, that a URL path
  segment can carry: no ``/``, and not ``.`` or ``..`` (clients remove those segments);
- ``events``: an object of 1 to 100 entries; each name 1 to 100 characters; each value an
  object, ``{}`` or ``null``;
- metadata: at most 255 keys per event, keys of at most 255 characters; values may be
  strings, numbers, booleans, null, arrays and objects, nested at most 10 levels deep (the
  metadata object is level 1);
- at most 1,000 metadata keys at the top level of all a request's events together (each is a
  row of the event catalog to count), and at most 10,000 keys and array items (every level)
  in all of a request's metadata and attributes (v2's ``playerAttributes``), whose ``custom``
  is an object;
- ``email``: at most 254 characters; ``mobile``: at most 50; both optional, ``null`` = absent.
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
MAX_METADATA_KEYS = 255
# Top-level metadata keys of all a request's events: each costs the batch's catalog upsert
# ~9 µs on the writer (measured: 10,000 of them made one request cost ~95 ms there).
MAX_REQUEST_KEYS = 1_000
MAX_REQUEST_VALUES = 10_000
MAX_EMAIL = 254
MAX_MOBILE = 50
# Any body: deeper than msgspec's (and Python's) recursion could go is refused long before,
# and every later walk (pydantic, the stores' JSON, the answer's encoder) stays shallow.
MAX_JSON_DEPTH = 32
MAX_BODY_VALUES = 100_000
# customerIds that a URL path segment cannot carry (``/customers/{customerId}``): a slash
# splits the segment, even percent-encoded (servers decode it before routing), and clients
# normalise the dot segments away.
DOT_SEGMENTS = frozenset({".", ".."})

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
_NUL_ESCAPE = b"\\u0000"


def decode_json(raw: bytes) -> Any:
    """Decode any request body and check it against the rules every body follows."""
    value = _decode_strict(raw)
    _check_body(value, text=_NUL_ESCAPE in raw)
    return value


def _decode_strict(raw: bytes) -> Any:
    """``raw`` decoded, with msgspec's refusals turned into coded errors."""
    try:
        return _decode_any(raw)
    except RecursionError:  # msgspec recurses once per level: a body nested ~1,000 deep
        raise too_deep() from None
    except msgspec.ValidationError:  # untyped decoding refuses only numbers out of range
        raise errors.InvalidValue(
            "Invalid value: a number in the body is out of range (JSON numbers must be finite)."
        ) from None
    except (msgspec.DecodeError, UnicodeDecodeError):  # bad JSON, or bytes that are not UTF-8
        raise errors.InvalidPayload() from None


def too_deep() -> errors.InvalidValue:
    """The error of a body nested deeper than any body may be."""
    return errors.InvalidValue(
        f"Invalid value: the body nests deeper than {MAX_JSON_DEPTH} levels."
    )


def decode_event_batch(
    raw: bytes, *, id_field: str = "customerId", attributes_field: str | None = None
) -> EventBatch:
    """Decode and validate a raw Send Events body; ``InvalidPayload`` if it is not JSON.

    Fast path: a v4 body whose JSON has no ``\\u0000`` escape (so no NUL can hide in it;
    msgspec refuses lone surrogates itself) is decoded straight into a typed struct; only
    nested metadata still needs the Python walk. Anything else takes the general path with
    its precise error codes.
    """
    nul = _NUL_ESCAPE in raw
    if id_field == "customerId" and attributes_field is None and not nul:
        try:
            plain = _decode_plain(raw)
        except RecursionError:
            raise too_deep() from None
        except (msgspec.DecodeError, UnicodeDecodeError):  # ValidationError is one too
            pass
        else:
            batch = _from_plain(plain)
            if batch is not None:
                return batch
    decoded = _decode_strict(raw)
    return parse_event_batch(
        decoded, id_field=id_field, attributes_field=attributes_field, escapes=nul
    )


def _from_plain(plain: _PlainBody) -> EventBatch | None:
    """The batch, or ``None`` when the customerId breaks a rule msgspec cannot express (the
    general path then reports it first, as it would). The events' remaining rules raise here
    as they would there: no second decoding for a large refused body."""
    if not plain.customerId.strip() or not _routable(plain.customerId):
        return None
    events = []
    remaining, keys = MAX_REQUEST_VALUES, 0
    for name, metadata in plain.events.items():
        if metadata is None:
            metadata = {}
        else:
            # ``_metadata_values`` inlined for the common case (flat metadata, keys checked by
            # msgspec already); a refusal goes through it, to raise what the general path would.
            size = len(metadata)
            if size > MAX_METADATA_KEYS or size > remaining:
                _metadata_values(name, metadata, text=False, limit=remaining)
            keys += size
            if keys > MAX_REQUEST_KEYS:
                raise _too_many_keys()
            remaining -= size
            for key, value in metadata.items():
                if type(value) in _CONTAINERS:
                    where = f"events.{name}.{key}"
                    remaining -= check_json_value(
                        value, where, depth=2, text=False, limit=remaining
                    )
        events.append((name, metadata))
    return EventBatch(plain.customerId, tuple(events), plain.email, plain.mobile)


def parse_event_batch(
    body: Any,
    *,
    id_field: str = "customerId",
    attributes_field: str | None = None,
    escapes: bool = True,
) -> EventBatch:
    """Validate a decoded Send Events body; raise a ``PayloadError`` naming the first problem.

    ``escapes=False`` says the raw JSON held no ``\\u0000`` escape, so metadata strings need
    no NUL check (the hot path's common case).
    """
    if not isinstance(body, dict):
        raise errors.InvalidPayload("Invalid payload: the body must be a JSON object.")
    customer_id = require_customer_id(body, id_field)
    events, remaining = _parse_events(body, text=escapes)
    attributes: Metadata = {}
    if attributes_field is not None:
        attributes = optional_attributes(body, attributes_field, limit=remaining)
    return EventBatch(
        customer_id=customer_id,
        events=events,
        email=optional_string(body, "email", max_length=MAX_EMAIL),
        mobile=optional_string(body, "mobile", max_length=MAX_MOBILE),
        attributes=attributes,
    )


def require_customer_id(body: dict[str, Any], name: str) -> str:
    """A required customerId: a non-blank string that a URL path segment can carry."""
    value = require_string(body, name, max_length=MAX_ID_LENGTH)
    check_customer_id(value, name)
    return value


def check_customer_id(value: str, where: str) -> None:
    """Refuse a customerId that no ``/customers/{customerId}`` route could reach."""
    if not _routable(value):
        raise errors.InvalidValue(
            f"Invalid value: '{where}' may not contain '/' nor be '.' or '..': no URL path"
            " (/customers/{customerId}) could reach that customer."
        )


def _routable(customer_id: str) -> bool:
    return "/" not in customer_id and customer_id not in DOT_SEGMENTS


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


def optional_attributes(
    body: dict[str, Any], name: str, *, limit: int = MAX_REQUEST_VALUES
) -> Metadata:
    """Optional profile attributes, checked like metadata, whose ``custom`` (merged key by
    key into the stored one) must be an object; ``null`` counts as absent."""
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise errors.InvalidValue(f"Invalid value: '{name}' must be an object.")
    check_json_value(value, name, depth=1, limit=limit)
    check_custom(value, name)
    return value


def check_custom(attributes: Metadata, where: str) -> None:
    """``custom`` is an object (or ``null``: no change): anything else would replace it."""
    custom = attributes.get("custom")
    if custom is not None and not isinstance(custom, dict):
        raise errors.InvalidValue(f"Invalid value: '{where}.custom' must be an object.")


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


def check_json_value(
    value: Any, where: str, *, depth: int, text: bool = True, limit: int = MAX_REQUEST_VALUES
) -> int:
    """Walk a metadata value, enforcing the nesting depth, key lengths and text rules; return
    how many keys and array items it holds (every level), refusing more than ``limit``.

    ``text=False`` skips the per-string checks: the caller knows no string can break them
    (the raw JSON has no ``\\u0000`` escape, the only way to write NUL).
    """
    kind = type(value)
    if kind is str:
        if text:
            check_text(value, where)
        return 0
    if kind is not dict and kind is not list:
        return 0
    if depth > MAX_DEPTH:
        raise errors.InvalidValue(f"Invalid value: '{where}' nests deeper than {MAX_DEPTH}.")
    count = len(value)
    if count > limit:
        raise _too_many_values()
    if kind is dict:
        for key, item in value.items():
            if len(key) > MAX_KEY_LENGTH:
                raise errors.InvalidValue(
                    f"Invalid value: a key in '{where}' is longer than {MAX_KEY_LENGTH} characters."
                )
            if text:
                check_text(key, where)
            if type(item) in _CONTAINERS or (text and type(item) is str):
                path = f"{where}.{key}"
                count += check_json_value(
                    item, path, depth=depth + 1, text=text, limit=limit - count
                )
        return count
    for item in value:
        if type(item) in _CONTAINERS or (text and type(item) is str):
            count += check_json_value(item, where, depth=depth + 1, text=text, limit=limit - count)
    return count


def _too_many_keys() -> errors.InvalidValue:
    return errors.InvalidValue(
        f"Invalid value: a request's events hold at most {MAX_REQUEST_KEYS:,} metadata keys"
        " in all (at the top level of their metadata)."
    )


def _too_many_values() -> errors.InvalidValue:
    return errors.InvalidValue(
        f"Invalid value: a request's metadata and attributes hold at most"
        f" {MAX_REQUEST_VALUES:,} keys and array items in all."
    )


_CONTAINERS = (dict, list)


def _parse_events(
    body: dict[str, Any], *, text: bool
) -> tuple[tuple[tuple[str, Metadata], ...], int]:
    """The events, and what stays of the request's value budget after their metadata."""
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
    remaining, keys = MAX_REQUEST_VALUES, 0
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
        remaining -= _metadata_values(name, metadata, text=text, limit=remaining)
        keys += len(metadata)
        if keys > MAX_REQUEST_KEYS:
            raise _too_many_keys()
        parsed.append((name, metadata))
    return tuple(parsed), remaining


def _metadata_values(name: str, metadata: Metadata, *, text: bool, limit: int) -> int:
    """Check one event's metadata; return how many keys and array items it holds."""
    if len(metadata) > MAX_METADATA_KEYS:
        raise errors.InvalidValue(
            f"Invalid value: the metadata of event '{name}' has more than {MAX_METADATA_KEYS} keys."
        )
    return check_json_value(metadata, f"events.{name}", depth=1, text=text, limit=limit)


def _check_body(value: Any, *, text: bool) -> None:
    """Depth, size and (when the raw JSON may hold one) NUL characters of any decoded body."""
    if _body_values(value, depth=1, text=text, limit=MAX_BODY_VALUES) > MAX_BODY_VALUES:
        raise errors.InvalidValue(
            f"Invalid value: a body holds at most {MAX_BODY_VALUES:,} keys and array items."
        )


def _body_values(value: Any, *, depth: int, text: bool, limit: int) -> int:
    """Keys and array items in ``value`` (every level), counted until past ``limit``."""
    kind = type(value)
    if kind is str:
        if text and "\x00" in value:
            raise errors.InvalidValue("Invalid value: the body contains a NUL character.")
        return 0
    if kind is not dict and kind is not list:
        return 0
    if depth > MAX_JSON_DEPTH:
        raise too_deep()
    count = len(value)
    items = value.values() if kind is dict else value
    if text and kind is dict:
        for key in value:
            if "\x00" in key:
                raise errors.InvalidValue("Invalid value: the body contains a NUL character.")
    for item in items:
        if count > limit:
            break
        if type(item) in _CONTAINERS or (text and type(item) is str):
            count += _body_values(item, depth=depth + 1, text=text, limit=limit - count)
    return count
