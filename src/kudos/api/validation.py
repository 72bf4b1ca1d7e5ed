"""Map pydantic/FastAPI validation errors onto Gameball's payload error codes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kudos import errors


def error_from_validation(problems: Sequence[Any]) -> errors.KudosError:
    """The first problem decides: JSON syntax 3016, missing 3000, null 3001, else 3003."""
    first = problems[0] if problems else {}
    kind = str(first.get("type", ""))
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "body"
    if kind == "json_invalid":
        return errors.InvalidPayload()
    if kind == "missing":
        return errors.MissingArguments(f"Missing arguments: '{where}' is required.")
    if first.get("input", "") is None:
        return errors.NullArguments(f"Null arguments: '{where}' must not be null.")
    return errors.InvalidValue(f"Invalid value: '{where}': {first.get('msg', 'invalid')}.")
