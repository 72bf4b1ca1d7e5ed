"""The program document: validated into typed models, or refused whole with every problem.

A program (one per account, YAML or JSON, camelCase like Gameball's JSON) holds the points
expiry, the tiering method, the tiers and the campaigns. ``load_program`` turns a decoded
document into a ``Program`` or raises ``ProgramInvalid`` listing each problem by its path,
for example ``campaigns[2].trigger.rules[0].where[1].op: unknown operator "gte "``.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kudos import errors

MAX_CAMPAIGNS = 500
MAX_RULES = 20
MAX_CONDITIONS = 20

# Operators that look at one event's value, and those that aggregate over many events.
SIMPLE_OPERATORS = frozenset(
    {"equals", "notEquals", "contains", "gte", "gt", "lte", "lt", "between", "exists"}
)
AGGREGATE_OPERATORS = frozenset({"differentValues", "repeatedValue", "accumulativeTotal"})
OPERATORS = SIMPLE_OPERATORS | AGGREGATE_OPERATORS
NUMERIC_OPERATORS = frozenset({"gte", "gt", "lte", "lt"})

Id = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Scalar = str | int | float | bool


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


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
    after: Annotated[int, Field(ge=1)] = 1
    where: Annotated[list[Condition], Field(max_length=MAX_CONDITIONS)] = []


class Trigger(Model):
    match: Literal["all", "any"] = "all"
    rules: Annotated[list[Rule], Field(min_length=1, max_length=MAX_RULES)]


class Repeat(Model):
    max_achievements: Annotated[int, Field(alias="maxAchievements", ge=-1)] = 1
    per_day: Annotated[int | None, Field(alias="perDay", ge=1)] = None


class Schedule(Model):
    start: datetime | None = None
    end: datetime | None = None


class Audience(Model):
    tags: list[Annotated[str, Field(min_length=1, max_length=100)]] = []
    min_tier: Annotated[int | None, Field(alias="minTier")] = None


class PointsPer(Model):
    key: Annotated[str, Field(min_length=1, max_length=255)]
    every: Annotated[float, Field(gt=0)]
    points: Annotated[int, Field(ge=1)]


class Reward(Model):
    points: Annotated[int | None, Field(ge=0)] = None
    points_per: Annotated[PointsPer | None, Field(alias="pointsPer")] = None
    score: Annotated[int | None, Field(ge=0)] = None
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
    order: Annotated[int, Field(ge=1)]
    name: Name
    min_progress: Annotated[float, Field(alias="minProgress", ge=0)]
    entry_reward_points: Annotated[int, Field(alias="entryRewardPoints", ge=0)] = 0


class Program(Model):
    points_expiry_days: Annotated[int | None, Field(alias="pointsExpiryDays", ge=1)] = None
    tiering: Tiering = Tiering()
    tiers: list[Tier] = []
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
    for index, raw in enumerate(raw_campaigns):
        found = _validated(Campaign, raw, f"campaigns[{index}]")
        if isinstance(found, list):
            problems.extend(found)
        else:
            campaigns.append((index, found))
    if isinstance(settings, Program):
        problems.extend(_cross_checks(settings, campaigns))
    if problems:
        raise errors.ProgramInvalid(problems)
    assert isinstance(settings, Program)
    return settings.model_copy(update={"campaigns": [campaign for _, campaign in campaigns]})


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
        return None if _is_number(value) and value > 0 else f"{op} takes a number above 0"  # type: ignore[operator]
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
