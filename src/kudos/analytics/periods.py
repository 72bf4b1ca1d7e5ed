"""Time for analytics: the account's zone, local days, date ranges and buckets.

Two clocks meet here. Rollups are kept per UTC hour (``hour``: Unix seconds // 3600) and
per-customer activity per local day of the account's zone (``day``: days since 1970-01-01 in
that zone). A query's range and buckets are local (midnights, ISO weeks from Monday, calendar
months; DST days last 23 or 25 hours) and are turned here into UTC instants and day numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kudos import errors

EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
INTERVALS = ("hour", "day", "week", "month")
MAX_BUCKETS = 1000
# What ``last`` may ask for: "30d", "12w", "24h", "6m".
_LAST = re.compile(r"([1-9][0-9]{0,3})([hdwm])")
# Dates a range may name: far enough for any history, near enough that every bucket has a date.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def checked_zone(name: str) -> str:
    """An IANA time zone name this machine knows, or ``InvalidValue``."""
    if not isinstance(name, str) or not 0 < len(name) <= 64 or not name.isprintable():
        raise errors.InvalidValue("Invalid value: the time zone must be an IANA name.")
    try:
        zone_of(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise errors.InvalidValue(
            f"Invalid value: unknown time zone {name!r} (an IANA name, such as Africa/Cairo)."
        ) from None
    return name


@lru_cache(maxsize=64)
def zone_of(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def day_number(moment: datetime) -> int:
    """The local day of an aware ``moment`` in its own zone, as days since 1970-01-01."""
    return moment.date().toordinal() - EPOCH_ORDINAL


def day_date(day: int) -> date:
    return date.fromordinal(day + EPOCH_ORDINAL)


_stamps: dict[tuple[str, str], tuple[int, int]] = {}


def hour_and_day(received_at: str, zone: str) -> tuple[int, int]:
    """The UTC hour and the zone's local day of a stored timestamp (ISO text, UTC). Cached by
    minute: ingest asks once per request, and most requests share their minute."""
    key = (zone, received_at[:16])
    found = _stamps.get(key)
    if found is None:
        if len(_stamps) >= 4096:
            _stamps.clear()
        moment = datetime.fromisoformat(received_at[:16]).replace(tzinfo=UTC)
        found = _stamps[key] = (
            int(moment.timestamp()) // 3600,
            day_number(moment.astimezone(zone_of(zone))),
        )
    return found


@dataclass(frozen=True, slots=True)
class Bucket:
    """One bucket: its label, and where it starts and ends (clipped to the range) as UTC
    instants (Unix seconds) and local days (``end_day`` exclusive)."""

    label: str
    start: float
    end: float
    start_day: int
    end_day: int


@dataclass(frozen=True, slots=True)
class Range:
    """A query's range in the account's zone: [start, end) as aware local datetimes."""

    zone: str
    start: datetime
    end: datetime

    @property
    def whole_days(self) -> bool:
        """Whether both ends are local midnights (day-based answers are exact then)."""
        return all(m.time() == datetime.min.time() for m in (self.start, self.end))

    @property
    def days(self) -> tuple[int, int]:
        """The local days it covers, [first, last + 1)."""
        last = self.end - timedelta(microseconds=1)
        return day_number(self.start), day_number(last) + 1

    def length(self) -> timedelta:
        return self.end.astimezone(UTC) - self.start.astimezone(UTC)

    def previous(self) -> Range:
        """The period of the same length just before (``compare: previousPeriod``): as many
        local days for a range of whole days (a DST change between them changes its hours),
        else the same duration."""
        if self.whole_days:
            days = (self.end.date() - self.start.date()).days
            tz = self.start.tzinfo
            assert isinstance(tz, ZoneInfo)
            return Range(
                self.zone, _midnight(self.start.date() - timedelta(days=days), tz), self.start
            )
        span = self.length()
        start = (self.start.astimezone(UTC) - span).astimezone(self.start.tzinfo)
        return Range(self.zone, start, self.start)

    def iso(self) -> tuple[str, str]:
        return self.start.isoformat(), self.end.isoformat()


def parse_range(raw: object, zone: str, now: float, *, where: str = "dateRange") -> Range:
    """``{"from", "to"}`` or ``{"last": "30d"}`` in the account's zone (problems by path)."""
    tz = zone_of(zone)
    if raw is None:
        raw = {"last": "30d"}
    if not isinstance(raw, dict):
        raise _invalid(f"{where}: an object with from and to, or last")
    if "last" in raw:
        if set(raw) != {"last"}:
            raise _invalid(f"{where}: give either last or from and to")
        return _last(raw["last"], tz, zone, now, where)
    if set(raw) != {"from", "to"}:
        raise _invalid(f"{where}: give from and to (ISO 8601 dates or times), or last")
    prefix = f"{where}." if where else ""
    problems: list[str] = []
    moments = []
    for key in ("from", "to"):
        try:
            moments.append(parse_moment(raw[key], tz, f"{prefix}{key}"))
        except errors.QueryInvalid as exc:
            problems += exc.problems
    if problems:
        raise errors.QueryInvalid(problems)
    start, end = moments
    if not start < end:
        raise _invalid(f"{where or 'from'}: from must be before to")
    return Range(zone, start, end)


def parse_moment(value: object, tz: ZoneInfo, where: str) -> datetime:
    """An ISO 8601 date (local midnight) or date-time (local when it has no offset)."""
    if not isinstance(value, str) or not 0 < len(value) <= 40:
        raise _invalid(f"{where}: an ISO 8601 date or date-time")
    try:
        if len(value) == 10:
            moment = datetime.combine(date.fromisoformat(value), datetime.min.time(), tz)
        else:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            moment = moment.replace(tzinfo=tz) if moment.tzinfo is None else moment.astimezone(tz)
    except (ValueError, OverflowError):
        raise _invalid(f"{where}: {value!r} is not an ISO 8601 date or date-time") from None
    if not EARLIEST <= moment < LATEST:
        raise _invalid(f"{where}: between 1970 and 9000")
    return moment


def _last(value: object, tz: ZoneInfo, zone: str, now: float, where: str) -> Range:
    match = _LAST.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise _invalid(f"{where}.last: a count and a unit, such as 30d, 12w, 24h or 6m")
    count, unit = int(match[1]), match[2]
    local_now = datetime.fromtimestamp(now, tz)
    if unit == "h":
        end = local_now.replace(minute=0, second=0, microsecond=0)
        end = (end.astimezone(UTC) + timedelta(hours=1)).astimezone(tz)
        start = (end.astimezone(UTC) - timedelta(hours=count)).astimezone(tz)
        return Range(zone, start, end)
    end_date = local_now.date() + timedelta(days=1)
    if unit == "m":
        start_date = _add_months(end_date, -count)
    else:
        start_date = end_date - timedelta(days=count * (7 if unit == "w" else 1))
    return Range(zone, _midnight(start_date, tz), _midnight(end_date, tz))


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, datetime.min.time(), tz)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1) if day.day == 1 else _clip_day(index, day.day)


def _clip_day(index: int, wanted: int) -> date:
    year, month = index // 12, index % 12 + 1
    following = date(year + (month == 12), month % 12 + 1, 1)
    return date(year, month, min(wanted, (following - timedelta(days=1)).day))


def auto_interval(span: Range) -> str:
    """Open Loyalty's rule of thumb: hours up to 2 days, days up to a month, weeks up to
    half a year, months beyond."""
    seconds = span.length().total_seconds()
    if seconds <= 2 * 86400:
        return "hour"
    if seconds <= 31 * 86400:
        return "day"
    return "week" if seconds <= 180 * 86400 else "month"


def align(moment: datetime, interval: str) -> datetime:
    """The start of the interval-aligned bucket holding local ``moment``."""
    tz = moment.tzinfo
    assert isinstance(tz, ZoneInfo)
    if interval == "hour":
        utc = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        return utc.astimezone(tz)
    day = moment.date()
    if interval == "week":
        day -= timedelta(days=day.weekday())
    elif interval == "month":
        day = day.replace(day=1)
    return _midnight(day, tz)


def step(moment: datetime, interval: str) -> datetime:
    """The start of the bucket after the one starting at ``moment``."""
    tz = moment.tzinfo
    assert isinstance(tz, ZoneInfo)
    if interval == "hour":
        return (moment.astimezone(UTC) + timedelta(hours=1)).astimezone(tz)
    day = moment.date()
    if interval == "day":
        return _midnight(day + timedelta(days=1), tz)
    if interval == "week":
        return _midnight(day + timedelta(days=7), tz)
    return _midnight(_add_months(day, 1), tz)


def label(moment: datetime, interval: str) -> str:
    return moment.isoformat() if interval == "hour" else moment.date().isoformat()


def buckets(span: Range, interval: str, *, limit: int = MAX_BUCKETS) -> list[Bucket]:
    """The interval-aligned buckets that overlap the range, clipped to it."""
    found: list[Bucket] = []
    start = align(span.start, interval)
    while start < span.end:
        end = step(start, interval)
        if len(found) == limit:
            raise errors.QueryTooLarge(
                f"Query too large: more than {limit:,} {interval} buckets; use a longer"
                " interval or a shorter range."
            )
        low, high = max(start, span.start), min(end, span.end)
        last = high - timedelta(microseconds=1)
        found.append(
            Bucket(
                label(start, interval),
                low.timestamp(),
                high.timestamp(),
                day_number(low),
                day_number(last) + 1,
            )
        )
        start = end
    return found


def aligned_days(span: Range, interval: str, count: int) -> list[tuple[int, int]]:
    """``count`` whole buckets of local days ``[start, end)``, the first holding the range's
    start (retention's periods, lifecycle's previous bucket)."""
    start = align(span.start, interval)
    found = []
    for _ in range(count):
        end = step(start, interval)
        found.append((day_number(start), day_number(end)))
        start = end
    return found


def _invalid(problem: str) -> errors.QueryInvalid:
    return errors.QueryInvalid([problem])


_local_days: dict[tuple[str, int], int] = {}


def local_day(seconds: float, zone: str) -> int:
    """The zone's local day of a Unix time (cached by quarter hour: every zone's offset is a
    whole number of quarter hours)."""
    key = (zone, int(seconds // 900))
    found = _local_days.get(key)
    if found is None:
        if len(_local_days) >= 65536:
            _local_days.clear()
        moment = datetime.fromtimestamp(key[1] * 900, zone_of(zone))
        found = _local_days[key] = day_number(moment)
    return found
