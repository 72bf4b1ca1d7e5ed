"""Type inference for the event catalog: what kind of value each metadata key carries."""

from __future__ import annotations

from typing import Any

MIXED = "mixed"


_TYPE_NAMES: dict[type, str] = {
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    list: "array",
    dict: "object",
    type(None): "null",
}


def value_type(value: Any) -> str:
    """The JSON type name of a decoded JSON value."""
    return type_name(type(value))


def type_name(kind: type) -> str:
    """The JSON type name for the Python type of a decoded JSON value."""
    return _TYPE_NAMES.get(kind, "object")


def merge_types(known: str | None, seen: str) -> str:
    """Combine a key's known type with a newly seen one; nulls never change a known type."""
    if known is None or known == "null":
        return seen
    if seen in ("null", known):
        return known
    return MIXED
