"""Value objects shared by services and entrypoints."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

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
    timezone: str = "UTC"  # IANA name: analytics' buckets follow it


@dataclass(slots=True)  # not frozen: built for every request, and a frozen __init__ is slower
class Credentials:
    """What a request presented: the raw header values, never logged."""

    api_key: str | None = field(repr=False)
    secret_key: str | None = field(repr=False)
    secret_required: bool = False


_second: list[Any] = [None, ""]


def utc_now() -> str:
    """Now as an ISO-8601 UTC timestamp with microseconds, the stored time format.

    On the ingest hot path: the date and time part is formatted once per second.
    """
    now = time.time()
    second = int(now)
    if _second[0] != second:
        _second[:] = [second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))]
    return f"{_second[1]}.{int((now - second) * 1_000_000):06d}Z"


_hours: dict[str, int] = {}


def utc_hour(stamp: str) -> int:
    """The hour (Unix seconds // 3600) of a stored-format timestamp, cached by its hour."""
    prefix = stamp[:13]
    found = _hours.get(prefix)
    if found is None:
        if len(_hours) >= 4096:
            _hours.clear()
        moment = datetime.fromisoformat(prefix).replace(tzinfo=UTC)
        found = _hours[prefix] = int(moment.timestamp()) // 3600
    return found


def iso(value: object) -> str:
    """A stored timestamp (ISO text on SQLite, ``datetime`` on PostgreSQL) as ISO-8601 UTC."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return str(value)


def iso_at(seconds: float) -> str:
    """The stored-format timestamp of a Unix time (an injected clock's reading)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def epoch(value: object) -> float:
    """A stored timestamp as Unix time."""
    return datetime.fromisoformat(iso(value).replace("Z", "+00:00")).timestamp()


def iso_before(now_iso: str, delta: timedelta) -> str:
    """The stored-format timestamp ``delta`` before ``now_iso``."""
    now = datetime.fromisoformat(now_iso.replace("Z", "+00:00"))
    return iso(now - delta)
