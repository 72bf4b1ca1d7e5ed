"""Type inference for the event catalog: what kind of value each metadata key carries."""

from __future__ import annotations

from typing import Any

MIXED = "mixed"


def value_type(value: Any) -> str:
    """The JSON type name of a decoded value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def merge_types(known: str | None, seen: str) -> str:
    """Combine a key's known type with a newly seen one; nulls never change a known type."""
    if known is None or known == "null":
        return seen
    if seen in ("null", known):
        return known
    return MIXED
