"""The program document: validated into typed models, or refused whole with every problem.

A program (one per account, YAML or JSON, camelCase like Gameball's JSON) holds the points
expiry, the tiering method, the tiers and the campaigns. ``load_program`` turns a decoded
document into a ``Program`` or raises ``ProgramInvalid`` listing each problem by its path,
for example ``campaigns[2].trigger.rules[0].where[1].op: unknown operator "gte "``.

Every number a program holds is bounded, and every string is one both stores can hold: a
document is checked whole for those first (``document_problems``), so what is applied is what
reads back. The size limits keep the worst valid program to about a millisecond per event
(``bench/program_cost.py``); docs/campaigns.md lists every limit.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from kudos import errors

# Program size (bench/program_cost.py measures the worst program these allow).
MAX_CAMPAIGNS = 100
MAX_RULES = 10  # per campaign
MAX_CONDITIONS = 10  # per rule
MAX_PROGRAM_RULES = 300  # in all the campaigns
MAX_PROGRAM_CONDITIONS = 1000  # in all the rules
MAX_TIERS = 50
# What a customer's progress remembers of the values aggregate conditions see: a
# repeatedValue condition at most MAX_REPEATED_VALUES distinct values, a differentValues one
# as many as its target, MAX_PROGRAM_VALUES in all; a value longer than MAX_VALUE_CHARS
# (or not printable) as a short hash.
MAX_REPEATED_VALUES = 100
MAX_PROGRAM_VALUES = 1000
MAX_VALUE_CHARS = 40
MAX_TAGS = 50  # per campaign's audience
MAX_TEXT = 1000  # characters of a condition's string value
MAX_DOCUMENT_ITEMS = 100_000  # keys and values in a document (a valid program holds far fewer)

# Numbers. One award (an achievement's points or score, a tier's entry reward, a manual
# adjustment) is at most MAX_AWARD points; balances, points earned, score and running sums
# never pass MAX_TOTAL, the largest integer every store and every JSON client holds exactly.
MAX_AWARD = 1_000_000_000
MAX_TOTAL = 2**53 - 1
MAX_COUNT = 1_000_000  # after, maxAchievements, perDay, a repeatedValue target
MAX_DISTINCT = 1000  # a differentValues target: the distinct values a condition remembers
MAX_ORDER = 10_000  # a tier's order
MAX_EXPIRY_DAYS = 36_500  # about a century: every expiry date stays a valid date
MIN_YEAR, MAX_YEAR = 1970, 9998  # a schedule's bounds, in UTC
# Money (the burn side, docs/redemption.md): a point's value, a cashback rate's "every", an
# amount a client sends: positive, at most MAX_MONEY, with at most MONEY_PLACES decimals.
MAX_MONEY = 10**9  # with 6 decimals: 15 digits, which a JSON number (a double) holds exactly
MONEY_PLACES = 6
MAX_HOLD_MINUTES = 15 * 24 * 60  # fifteen days, Gameball's longest hold
MAX_RETURN_WINDOW_DAYS = 7300  # Gameball's returnWindow bound (20 years)

# Operators that look at one event's value, and those that aggregate over many events.
SIMPLE_OPERATORS = frozenset(
    {"equals", "notEquals", "contains", "gte", "gt", "lte", "lt", "between", "exists"}
)
AGGREGATE_OPERATORS = frozenset({"differentValues", "repeatedValue", "accumulativeTotal"})
OPERATORS = SIMPLE_OPERATORS | AGGREGATE_OPERATORS
NUMERIC_OPERATORS = frozenset({"gte", "gt", "lte", "lt"})
# The largest target of each aggregate: what a customer's progress remembers stays bounded.
AGGREGATE_TARGETS = {
    "differentValues": MAX_DISTINCT,
    "repeatedValue": MAX_COUNT,
    "accumulativeTotal": MAX_TOTAL,
}

Id = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Scalar = str | int | float | bool
Count = Annotated[int, Field(ge=1, le=MAX_COUNT)]
Award = Annotated[int, Field(ge=0, le=MAX_AWARD)]
Amount = Annotated[float, Field(ge=0, le=MAX_TOTAL)]
Order = Annotated[int, Field(ge=1, le=MAX_ORDER)]


class Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, frozen=True, allow_inf_nan=False
    )


class Condition(Model):
    key: Annotated[str, Field(min_length=1, max_length=255)]
    op: str
    value: Scalar | list[Scalar] | None = None

    @field_validator("op")
    @classmethod
    def _known(cls, op: str) -> str:
        if op not in OPERATORS:
            raise ValueError(f"unknown operator {_quote(op)}")
        return op


class Rule(Model):
    event: Annotated[str, Field(min_length=1, max_length=100)]
    after: Count = 1
    where: Annotated[list[Condition], Field(max_length=MAX_CONDITIONS)] = []


class Trigger(Model):
    match: Literal["all", "any"] = "all"
    rules: Annotated[list[Rule], Field(min_length=1, max_length=MAX_RULES)]


class Repeat(Model):
    max_achievements: Annotated[int, Field(alias="maxAchievements", ge=-1, le=MAX_COUNT)] = 1
    per_day: Annotated[Count | None, Field(alias="perDay")] = None


class Schedule(Model):
    start: datetime | None = None
    end: datetime | None = None

    @field_validator("start", "end")
    @classmethod
    def _representable(cls, moment: datetime | None) -> datetime | None:
        # Read back and shown in UTC: a moment that has no UTC date could never be shown.
        if moment is not None:
            try:
                year = _aware(moment).astimezone(UTC).year
            except OverflowError:
                year = 0
            if not MIN_YEAR <= year <= MAX_YEAR:
                raise ValueError(f"must be in the years {MIN_YEAR} to {MAX_YEAR} (UTC)")
        return moment


class Audience(Model):
    tags: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=100)]], Field(max_length=MAX_TAGS)
    ] = []
    min_tier: Annotated[Order | None, Field(alias="minTier")] = None


class PointsPer(Model):
    key: Annotated[str, Field(min_length=1, max_length=255)]
    every: Annotated[float, Field(gt=0, le=MAX_TOTAL)]
    points: Annotated[int, Field(ge=1, le=MAX_AWARD)]


class Reward(Model):
    points: Award | None = None
    points_per: Annotated[PointsPer | None, Field(alias="pointsPer")] = None
    score: Award | None = None
    badge: Annotated[str | None, Field(min_length=1, max_length=100)] = None


class Notification(Model):
    title: Annotated[str, Field(min_length=1, max_length=200)]
    body: Annotated[str, Field(min_length=1, max_length=1000)]


class Campaign(Model):
    id: Id
    name: Name
    trigger: Trigger
    repeat: Repeat = Repeat()
    schedule: Schedule = Schedule()
    audience: Audience = Audience()
    reward: Reward
    notification: Notification | None = None


class Tiering(Model):
    method: Literal["points", "score", "spend", "eventCount"] = "points"
    event: Annotated[str | None, Field(min_length=1, max_length=100)] = None
    key: Annotated[str | None, Field(min_length=1, max_length=255)] = None


class Tier(Model):
    order: Order
    name: Name
    min_progress: Annotated[Amount, Field(alias="minProgress")]
    entry_reward_points: Annotated[Award, Field(alias="entryRewardPoints")] = 0


def _money_places(value: float) -> float:
    """A money value typed with at most ``MONEY_PLACES`` decimals (its shortest repr)."""
    exponent = Decimal(repr(value)).as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MONEY_PLACES:
        raise ValueError(f"at most {MONEY_PLACES} decimals")
    return value


Money = Annotated[float, Field(gt=0, le=MAX_MONEY), AfterValidator(_money_places)]


class Redemption(Model):
    """Points as money: ``pointValue`` is what one point is worth (Gameball's
    ``redemptionFactor``); a hold lasts ``holdMinutes``."""

    point_value: Annotated[Money, Field(alias="pointValue")]
    min_points: Annotated[int, Field(alias="minPoints", ge=0, le=MAX_AWARD)] = 0
    hold_minutes: Annotated[int, Field(alias="holdMinutes", ge=1, le=MAX_HOLD_MINUTES)] = 10


class CashbackRate(Model):
    """``points`` for every ``every`` of the currency paid (in proportion, then floored)."""

    points: Annotated[int, Field(ge=0, le=MAX_AWARD)]
    every: Money = 1.0


class Cashback(CashbackRate):
    return_window_days: Annotated[
        int, Field(alias="returnWindowDays", ge=0, le=MAX_RETURN_WINDOW_DAYS)
    ] = 0
    by_tier: Annotated[dict[str, CashbackRate], Field(alias="byTier", max_length=MAX_TIERS)] = {}


class Program(Model):
    currency: Annotated[str | None, Field(pattern=r"^[A-Z]{3}$")] = None
    redemption: Redemption | None = None
    cashback: Cashback | None = None
    points_expiry_days: Annotated[
        int | None, Field(alias="pointsExpiryDays", ge=1, le=MAX_EXPIRY_DAYS)
    ] = None
    tiering: Tiering = Tiering()
    tiers: Annotated[list[Tier], Field(max_length=MAX_TIERS)] = []
    campaigns: Annotated[list[Campaign], Field(max_length=MAX_CAMPAIGNS)] = []

    def document(self) -> dict[str, Any]:
        """The program as a JSON-ready document (camelCase, defaults filled in)."""
        return self.model_dump(mode="json", by_alias=True)


EMPTY_PROGRAM = Program()
"""What an account runs before it applies a program: nothing."""


def load_program(document: Any) -> Program:
    """Validate a decoded program document; ``ProgramInvalid`` lists every problem.

    Each campaign is validated on its own, so one broken campaign does not hide the
    problems of the others, nor those that span fields (duplicate ids, tier references).
    """
    if not isinstance(document, dict):
        raise errors.ProgramInvalid(["(document): must be an object (a YAML or JSON mapping)"])
    unstorable = document_problems(document)
    if unstorable:  # what cannot be stored is named alone: other checks would garble it
        raise errors.ProgramInvalid(unstorable)
    problems: list[str] = []
    settings = _validated(Program, {k: v for k, v in document.items() if k != "campaigns"}, "")
    if isinstance(settings, list):
        problems.extend(settings)
    raw_campaigns = document.get("campaigns", [])
    if not isinstance(raw_campaigns, list):
        problems.append("campaigns: Input should be a valid list")
        raw_campaigns = []
    elif len(raw_campaigns) > MAX_CAMPAIGNS:
        problems.append(f"campaigns: at most {MAX_CAMPAIGNS} campaigns")
    campaigns: list[tuple[int, Campaign]] = []
    for index, raw in enumerate(raw_campaigns[:MAX_CAMPAIGNS]):
        found = _validated(Campaign, raw, f"campaigns[{index}]")
        if isinstance(found, list):
            problems.extend(found)
        else:
            campaigns.append((index, found))
    problems.extend(_size_problems([campaign for _, campaign in campaigns]))
    if isinstance(settings, Program):
        problems.extend(_cross_checks(settings, campaigns))
    if problems:
        raise errors.ProgramInvalid(problems)
    assert isinstance(settings, Program)
    return settings.model_copy(update={"campaigns": [campaign for _, campaign in campaigns]})


def document_problems(document: Any) -> list[str]:
    """What in a decoded document no store can hold or read back as it was: strings with NUL
    (PostgreSQL refuses them) or lone surrogates (not UTF-8), numbers that are not finite
    (JSON has no infinity: they would read back as null) or beyond ``MAX_TOTAL``. One walk
    over the whole document, keys included, whatever the fields."""
    problems = []
    for count, (path, value) in enumerate(_nodes(document)):
        if count == MAX_DOCUMENT_ITEMS:  # YAML aliases can make a small file endless
            return [f"(document): more than {MAX_DOCUMENT_ITEMS:,} keys and values"]
        if isinstance(value, str) and not _storable(value):
            problems.append(f"{path}: text with a NUL character or a lone surrogate")
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{path}: must be a finite number")
        elif _is_number(value) and abs(value) > MAX_TOTAL:
            problems.append(f"{path}: must be at most {MAX_TOTAL:,} either way")
    return problems


def _nodes(document: Any) -> Iterator[tuple[str, Any]]:
    """``(path, value)`` of every key, value and container of a document, in its order,
    without recursion (a deeply nested YAML file must not exhaust the stack)."""
    pending: list[tuple[str, Any]] = [("", document)]
    while pending:
        path, value = pending.pop()
        yield path or "(document)", value
        if isinstance(value, dict):
            for key, item in reversed(value.items()):  # popped in the document's order
                named = _printable(key) if isinstance(key, str) else repr(key)
                pending.append((f"{path}.{named}" if path else named, item))
                pending.append((path or "(document)", key))
        elif isinstance(value, list | tuple):
            pending.extend((f"{path}[{i}]", value[i]) for i in reversed(range(len(value))))


def _storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(key: str) -> str:
    """A key as a path shows it: escaped when it is not storable (the answer is JSON too)."""
    return key if _storable(key) else key.encode("unicode_escape").decode("ascii")


def _size_problems(campaigns: list[Campaign]) -> list[str]:
    """The limits on the whole program: what one event may cost to evaluate, and what a
    customer's progress may hold."""
    rules = [rule for campaign in campaigns for rule in campaign.trigger.rules]
    conditions = [condition for rule in rules for condition in rule.where]
    values = sum(remembered_values(condition) for condition in conditions)
    problems = []
    if len(rules) > MAX_PROGRAM_RULES:
        problems.append(f"campaigns: at most {MAX_PROGRAM_RULES} rules in all ({len(rules)})")
    if len(conditions) > MAX_PROGRAM_CONDITIONS:
        problems.append(
            f"campaigns: at most {MAX_PROGRAM_CONDITIONS} conditions in all ({len(conditions)})"
        )
    if values > MAX_PROGRAM_VALUES:
        problems.append(
            f"campaigns: differentValues targets and {MAX_REPEATED_VALUES} per repeatedValue"
            f" condition remember at most {MAX_PROGRAM_VALUES} values in all ({values})"
        )
    return problems


def remembered_values(condition: Condition) -> int:
    """How many distinct values a condition remembers at most (0: none)."""
    if condition.op == "repeatedValue":
        return MAX_REPEATED_VALUES
    if condition.op == "differentValues" and _is_number(condition.value):
        return math.ceil(condition.value)  # type: ignore[arg-type]
    return 0


def event_names(document: Any) -> frozenset[str] | None:
    """The event names a stored document's campaigns and tiering mention, read without
    validating it (best effort, for a program this version cannot load), or ``None`` when
    its shape does not tell."""
    if not isinstance(document, dict):
        return None
    names: set[str] = set()
    tiering = document.get("tiering", {})
    if not isinstance(tiering, dict) or not isinstance(tiering.get("event", ""), str | None):
        return None
    if tiering.get("event"):
        names.add(tiering["event"])
    campaigns = document.get("campaigns", [])
    if not isinstance(campaigns, list):
        return None
    for campaign in campaigns:
        trigger = campaign.get("trigger") if isinstance(campaign, dict) else None
        rules = trigger.get("rules") if isinstance(trigger, dict) else None
        if not isinstance(rules, list):
            return None
        for rule in rules:
            if not (isinstance(rule, dict) and isinstance(rule.get("event"), str)):
                return None
            names.add(rule["event"])
    return frozenset(names)


def tier_names(document: Any) -> dict[int, str]:
    """Tier order → name in a stored document, read without validating it (best effort: a
    program this version cannot load may hold anything; tiers it cannot read are left out)."""
    tiers = document.get("tiers") if isinstance(document, dict) else None
    if not isinstance(tiers, list):
        return {}
    return {
        tier["order"]: tier["name"]
        for tier in tiers
        if isinstance(tier, dict)
        and type(tier.get("order")) is int
        and isinstance(tier.get("name"), str)
    }


def _validated(model: type[Model], raw: Any, prefix: str) -> Any:
    """The validated model, or its problems with paths under ``prefix``."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        return [f"{_path(prefix, e['loc'])}: {_message(e)}" for e in exc.errors()]


def _cross_checks(program: Program, campaigns: list[tuple[int, Campaign]]) -> list[str]:
    """The rules that span fields: unique ids, operator values, tier order, schedules."""
    problems: list[str] = []
    seen: set[str] = set()
    for index, campaign in campaigns:
        where = f"campaigns[{index}]"
        if campaign.id in seen:
            problems.append(f"{where}.id: duplicate campaign id {_quote(campaign.id)}")
        seen.add(campaign.id)
        problems.extend(_campaign_problems(campaign, where, program))
    problems.extend(_tier_problems(program))
    tiering = program.tiering
    if tiering.method == "spend" and (tiering.event is None or tiering.key is None):
        problems.append("tiering: the spend method needs both event and key")
    if tiering.method == "eventCount" and tiering.event is None:
        problems.append("tiering: the eventCount method needs an event")
    tier_names = {tier.name for tier in program.tiers}
    for name in program.cashback.by_tier if program.cashback else ():
        if name not in tier_names:
            problems.append(f"cashback.byTier: {_quote(name)} is not one of the tiers")
    return problems


def _campaign_problems(campaign: Campaign, where: str, program: Program) -> list[str]:
    problems: list[str] = []
    for r, rule in enumerate(campaign.trigger.rules):
        for c, condition in enumerate(rule.where):
            problem = condition_problem(condition)
            if problem:
                problems.append(f"{where}.trigger.rules[{r}].where[{c}].value: {problem}")
    reward = campaign.reward
    if reward.points is not None and reward.points_per is not None:
        problems.append(f"{where}.reward: give either points or pointsPer, not both")
    if all(v is None for v in (reward.points, reward.points_per, reward.score, reward.badge)):
        problems.append(f"{where}.reward: give points, pointsPer, score or a badge")
    if campaign.repeat.max_achievements == 0:
        problems.append(f"{where}.repeat.maxAchievements: must be -1 (unlimited) or at least 1")
    start, end = campaign.schedule.start, campaign.schedule.end
    if start is not None and end is not None and _aware(start) >= _aware(end):
        problems.append(f"{where}.schedule: start must be before end")
    minimum = campaign.audience.min_tier
    if minimum is not None and minimum not in {tier.order for tier in program.tiers}:
        problems.append(f"{where}.audience.minTier: no tier has order {minimum}")
    return problems


def condition_problem(condition: Condition) -> str | None:
    """What is wrong with a condition's value for its operator, if anything."""
    op, value = condition.op, condition.value
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return f"text of at most {MAX_TEXT:,} characters"
    if op == "exists":
        return None if value in (None, True) else "exists takes no value"
    if op == "between":
        if not (isinstance(value, list) and len(value) == 2 and all(map(_is_number, value))):
            return "between takes [min, max] numbers"
        low, high = value
        return None if low <= high else "between needs min <= max"  # type: ignore[operator]
    if op in NUMERIC_OPERATORS:
        return None if _is_number(value) else f"{op} takes a number"
    if op in AGGREGATE_OPERATORS:
        most = AGGREGATE_TARGETS[op]
        if _is_number(value) and 0 < value <= most:  # type: ignore[operator]
            return None
        return f"{op} takes a number above 0, at most {most:,}"
    if op == "contains":
        return None if isinstance(value, str) and value else "contains takes a non-empty string"
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return f"{op} takes a string or a number"
    return None


def _tier_problems(program: Program) -> list[str]:
    problems: list[str] = []
    orders = [tier.order for tier in program.tiers]
    if len(set(orders)) != len(orders):
        problems.append("tiers: each tier needs its own order")
    names = [tier.name for tier in program.tiers]
    if len(set(names)) != len(names):
        problems.append("tiers: each tier needs its own name")
    by_order = sorted(program.tiers, key=lambda tier: tier.order)
    for lower, higher in itertools.pairwise(by_order):
        if higher.min_progress <= lower.min_progress:
            problems.append(
                f"tiers: {_quote(higher.name)} (order {higher.order}) needs a higher"
                f" minProgress than {_quote(lower.name)}"
            )
    return problems


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _path(prefix: str, loc: tuple[int | str, ...]) -> str:
    text = prefix
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in ("str", "int", "float", "bool", "list[...]") or "[" in str(part):
            continue  # union branches pydantic names in the location
        else:
            text += f".{part}" if text else str(part)
    return text or "(document)"


def _message(error: Any) -> str:
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _quote(text: str) -> str:
    return '"' + text.replace('"', '\\"') + '"'
