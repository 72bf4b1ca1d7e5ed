"""Value objects shared by services and entrypoints."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from kudos.domain.identity import MergeMode


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    name: str
    channel_merging: MergeMode
    high_security: bool
    rate_limit: str
    secret_key_hash: str = field(repr=False)
    created_at: str


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a request presented: the raw header values, never logged."""

    api_key: str | None = field(repr=False)
    secret_key: str | None = field(repr=False)
    secret_required: bool = False


def utc_now() -> str:
    """Now as an ISO-8601 UTC timestamp with microseconds, the stored time format."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def iso(value: object) -> str:
    """A stored timestamp (ISO text on SQLite, ``datetime`` on PostgreSQL) as ISO-8601 UTC."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return str(value)
