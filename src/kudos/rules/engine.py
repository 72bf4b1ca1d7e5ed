"""Campaign evaluation, pure: compiled program + customer state + one event → decisions.

``compile_program`` indexes the campaigns by the event names their rules mention, and turns
each simple condition into a predicate. ``evaluate_event`` advances the customer's progress
state for one event (the caller owns the state, a JSON-ready dict per campaign, and stores
it) and returns what was achieved; it never reads or writes anything else. The ingest
pipeline applies the decisions; the preview endpoint runs the same code on a copy of the
state and also asks for the explanation.

Semantics (documented in docs/campaigns.md):

- A rule counts an event when the name matches and every simple condition holds (a condition
  on a key the event lacks does not hold). Aggregate conditions then record the value:
  ``accumulativeTotal`` adds it to a running sum, ``differentValues`` and ``repeatedValue``
  count it per distinct value.
- A rule is satisfied when it counted ``after`` events and every aggregate reached its target.
  ``match: all`` needs every rule satisfied, ``any`` one of them.
- An achievement consumes what produced it: ``after`` counts from each satisfied rule, the
  target from a running sum, the distinct values of ``differentValues``, and the repeats of
  the value that reached ``repeatedValue``. A rule with an ``accumulativeTotal`` keeps its
  count, so one large event may complete a repeatable campaign several times.
- Caps (``maxAchievements``, ``perDay``), the schedule and the audience are checked before
  anything is counted: a campaign the customer cannot win now does not progress either.

Numbers are the client's and may be anything JSON holds; nothing here raises on them, and
what is stored stays bounded and finite:

- ``number`` reads a value as a finite float, or as no number at all (an integer beyond the
  float range reads like ``1e400``: out of range, so it meets no numeric condition).
- Running sums are clamped to ``±MAX_TOTAL``; one achievement earns at most ``MAX_AWARD``
  points and score, whatever ``pointsPer``'s quotient (infinite counts as the cap).
- ``differentValues`` remembers at most its target's number of values (all it needs),
  ``repeatedValue`` at most ``schema.MAX_REPEATED_VALUES`` per condition (the least seen,
  then the oldest, make room), and a value longer than ``schema.MAX_VALUE_CHARS`` or not
  printable is remembered as a short hash of its canonical text. Progress stored by earlier
  versions beyond these bounds, or with a sum lost to an overflow (null), is repaired once,
  as it is read (``state_of``).
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kudos.rules.schema import (
    AGGREGATE_OPERATORS,
    MAX_AWARD,
    MAX_TOTAL,
    MAX_VALUE_CHARS,
    Campaign,
    Condition,
    Program,
    remembered_values,
)

MAX_TIMES_PER_EVENT = 1000
_HASH_BYTES = 8  # 16 hex digits: collisions are out of reach for a customer's values

# A customer's progress in one campaign, JSON-ready and stored as it is:
# ``[achieved, day, dayCount, *rules]``; a rule's state is its count, or
# ``[count, sums, values, BOUNDED]`` when it has aggregate conditions (``sums``: condition index
# → running total; ``values``: condition index → {value: times seen}; ``BOUNDED`` marks sums and
# values kept within today's bounds: earlier versions wrote three items, and such a state is
# repaired once, as it is read). Lists rather than dicts keep the stored row small and need
# no conversion between the store and the engine.
State = list[Any]
ACHIEVED, DAY, DAY_COUNT, RULES = 0, 1, 2, 3
BOUNDED = 1
Predicate = Callable[[Any], bool]


@dataclass(frozen=True, slots=True)
class Aggregate:
    """An aggregate condition with what recording and consuming read of it."""

    condition: Condition
    slot: str  # its index in ``where``: the key of its sum or values in the rule's state
    op: str
    target: float
    keep: int  # distinct values remembered (``schema.remembered_values``)
    take: int  # what an achievement takes from the value that reached a repeatedValue


@dataclass(frozen=True, slots=True)
class CompiledRule:
    event: str
    after: int
    simple: tuple[tuple[Condition, Predicate], ...]
    aggregates: tuple[Aggregate, ...]
    # Every condition as (key, test on the present value): simple ones, then aggregates
    # (whose values must be recordable); what ``_conditions_hold`` runs on every event.
    checks: tuple[tuple[str, Predicate], ...] = ()
    # Has an accumulativeTotal (keeps its count), and has nothing else among its aggregates
    # (so an achievement may take several targets from its sums at once).
    accumulative: bool = False
    summing_only: bool = False


@dataclass(frozen=True, slots=True)
class CompiledCampaign:
    """A campaign with what evaluation reads on every event taken out of the spec."""

    spec: Campaign
    id: str
    rules: tuple[CompiledRule, ...]
    match_all: bool
    start: datetime | None
    end: datetime | None
    tags: frozenset[str]
    min_tier: int | None
    max_achievements: int  # -1: unlimited
    per_day: int | None
    gated: bool = True  # has a schedule or an audience (checked before the caps)
    limited: bool = True  # gated, or capped (maxAchievements, perDay): may be blocked
    counting: bool = False  # one rule without aggregates: achieved by its count alone
    # Per rule, its position in a ``State`` and whether it has aggregate conditions.
    shapes: tuple[tuple[int, bool], ...] = ()


# A campaign and the rules of it (index in ``rules``, rule) that one event name triggers.
Slot = tuple[CompiledCampaign, tuple[tuple[int, CompiledRule], ...]]


@dataclass(frozen=True, slots=True)
class CompiledProgram:
    program: Program
    version: int
    campaigns: tuple[CompiledCampaign, ...]
    by_event: Mapping[str, tuple[CompiledCampaign, ...]]
    # by_event with each campaign's rules on that name picked out: what evaluation loops on.
    slots: Mapping[str, tuple[Slot, ...]] = field(default_factory=dict)


@dataclass(slots=True)  # not frozen: built for every event, and a frozen __init__ is slower
class Facts:
    """What evaluation needs to know of the customer besides their progress."""

    now: datetime
    tags: frozenset[str] = frozenset()
    tier_order: int | None = None
    day: str = ""  # the UTC day of ``now`` (filled in when not given)

    def __post_init__(self) -> None:
        if not self.day:
            self.day = self.now.astimezone(UTC).date().isoformat()


@dataclass(slots=True)
class Achievement:
    campaign: CompiledCampaign
    times: int
    points: int
    score: int
    badge: str | None


@dataclass(slots=True)
class ConditionCheck:
    key: str
    op: str
    expected: Any
    actual: Any
    matched: bool


@dataclass(slots=True)
class RuleCheck:
    event: str
    counted: bool
    count: int
    after: int
    conditions: list[ConditionCheck] = field(default_factory=list)


@dataclass(slots=True)
class CampaignCheck:
    """Why a campaign did or did not react to an event (the preview's explanation)."""

    campaign: CompiledCampaign
    eligible: bool
    reason: str
    times: int = 0
    points: int = 0
    progress_before: float = 0.0
    progress_after: float = 0.0
    rules: list[RuleCheck] = field(default_factory=list)


@dataclass(slots=True)
class Evaluation:
    achievements: list[Achievement] = field(default_factory=list)
    checks: list[CampaignCheck] = field(default_factory=list)
    # Campaigns the event could have moved but for a cap the customer reached (analytics).
    capped: list[str] = field(default_factory=list)


# --- compiling -------------------------------------------------------------------------------


def compile_program(program: Program, version: int) -> CompiledProgram:
    """Index the campaigns by event name and build the condition predicates."""
    campaigns = tuple(_compile_campaign(spec) for spec in program.campaigns)
    by_event: dict[str, list[CompiledCampaign]] = {}
    for campaign in campaigns:
        for name in dict.fromkeys(rule.event for rule in campaign.rules):
            by_event.setdefault(name, []).append(campaign)
    slots = {
        name: tuple(
            (c, tuple((i, rule) for i, rule in enumerate(c.rules) if rule.event == name))
            for c in found
        )
        for name, found in by_event.items()
    }
    return CompiledProgram(
        program,
        version,
        campaigns,
        {name: tuple(found) for name, found in by_event.items()},
        slots,
    )


def _compile_campaign(spec: Campaign) -> CompiledCampaign:
    rules = []
    for rule in spec.trigger.rules:
        simple = tuple(
            (condition, predicate(condition))
            for condition in rule.where
            if condition.op not in AGGREGATE_OPERATORS
        )
        aggregates = tuple(
            _compile_aggregate(index, condition)
            for index, condition in enumerate(rule.where)
            if condition.op in AGGREGATE_OPERATORS
        )
        checks = tuple((condition.key, test) for condition, test in simple) + tuple(
            (a.condition.key, _aggregate_test(a.condition)) for a in aggregates
        )
        summing = [a.op == "accumulativeTotal" for a in aggregates]
        rules.append(
            CompiledRule(
                rule.event,
                rule.after,
                simple,
                aggregates,
                checks,
                accumulative=any(summing),
                summing_only=bool(summing) and all(summing),
            )
        )
    gated = (
        spec.schedule.start is not None
        or spec.schedule.end is not None
        or bool(spec.audience.tags)
        or spec.audience.min_tier is not None
    )
    return CompiledCampaign(
        spec=spec,
        id=spec.id,
        rules=tuple(rules),
        match_all=spec.trigger.match == "all",
        start=_utc(spec.schedule.start),
        end=_utc(spec.schedule.end),
        tags=frozenset(spec.audience.tags),
        min_tier=spec.audience.min_tier,
        max_achievements=spec.repeat.max_achievements,
        per_day=spec.repeat.per_day,
        gated=gated,
        limited=gated or spec.repeat.max_achievements != -1 or spec.repeat.per_day is not None,
        counting=len(rules) == 1 and not rules[0].aggregates,
        shapes=tuple((RULES + i, bool(rule.aggregates)) for i, rule in enumerate(rules)),
    )


def _compile_aggregate(index: int, condition: Condition) -> Aggregate:
    target = float(condition.value)  # type: ignore[arg-type]
    keep = remembered_values(condition)
    return Aggregate(condition, str(index), condition.op, target, keep, math.ceil(target))


def predicate(condition: Condition) -> Predicate:
    """The test a simple condition applies to an event's value (never called when absent)."""
    op, expected = condition.op, condition.value
    if op == "exists":
        return lambda actual: actual is not None
    if op in ("equals", "notEquals"):
        same = _equality(expected)
        return same if op == "equals" else lambda actual: actual is not None and not same(actual)
    if op == "contains":
        needle = str(expected).casefold()
        return lambda actual: _contains(actual, needle)
    if op == "between":
        low, high = (float(v) for v in expected)  # type: ignore[union-attr]
        return lambda actual: (n := number(actual)) is not None and low <= n <= high
    bound = float(expected)  # type: ignore[arg-type]
    # One closure per operator (not a shared one calling a comparison): a call less per test.
    if op == "gte":
        return lambda actual: (n := number(actual)) is not None and n >= bound
    if op == "gt":
        return lambda actual: (n := number(actual)) is not None and n > bound
    if op == "lte":
        return lambda actual: (n := number(actual)) is not None and n <= bound
    if op == "lt":
        return lambda actual: (n := number(actual)) is not None and n < bound
    raise ValueError(f"unknown operator {op!r}")


def _equality(expected: Any) -> Predicate:
    if isinstance(expected, int | float) and not isinstance(expected, bool):
        target = float(expected)
        return lambda actual: number(actual) == target
    options = frozenset(part.strip().casefold() for part in str(expected).split(","))
    return lambda actual: actual is not None and canonical(actual) in options


# What the text operators read of a value: a metadata string is up to 1 MiB and a program up
# to 1,000 conditions, so without a bound one event could make the writer (which serves every
# account) casefold a megabyte a thousand times (measured: 2.6 s for one event). Strings are
# compared by their first ``MAX_COMPARED_CHARS`` characters (and their folded form is cached,
# so conditions on one value fold it once); ``contains`` looks at the first ``MAX_LIST_ITEMS``
# items of a list.
MAX_COMPARED_CHARS = 1_000
MAX_LIST_ITEMS = 100
# A string longer than this spells no number for the numeric operators (a double needs ~25).
MAX_NUMBER_CHARS = 100


@functools.lru_cache(maxsize=1024)  # keys are at most MAX_COMPARED_CHARS long: ~4 MB at most
def _folded(text: str) -> str:
    return text.casefold()


def _contains(actual: Any, needle: str) -> bool:
    if isinstance(actual, str):
        return needle in _folded(actual[:MAX_COMPARED_CHARS])
    if isinstance(actual, list):
        return any(canonical(item) == needle for item in actual[:MAX_LIST_ITEMS])
    return False


def number(value: Any) -> float | None:
    """A metadata value as a finite number: numbers, and strings that spell one. What has no
    finite float (``1e400``, an integer of 309 digits, ``"inf"``) is out of range and reads
    as no number; this never raises."""
    kind = type(value)  # decoded JSON: exact types, tested first (the common cases)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is int:
        try:
            return float(value)
        except OverflowError:  # beyond the float range: out of range, like 1e400
            return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return number(int(value))
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        if len(value) > MAX_NUMBER_CHARS:  # parsing is linear: no number is spelled that long
            return None
        try:
            parsed = float(value)
        except ValueError:
            return None
        return parsed if math.isfinite(parsed) else None
    return None


def canonical(value: Any) -> str:
    """The text a value compares as: case-folded; 150.0 and 150 read the same."""
    if type(value) is str:  # the common case first
        return _folded(value[:MAX_COMPARED_CHARS]).strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    try:
        return str(value).strip().casefold()
    except ValueError:  # an integer past Python's digit limit for str(): its hex is exact
        return hex(value)


def remembered(value: Any) -> str:
    """How ``differentValues`` and ``repeatedValue`` remember a value: its canonical text,
    or a short hash of it when it is long or not printable (a customer's progress row stays
    small, and holds only text every store takes)."""
    text = canonical(value)
    if len(text) <= MAX_VALUE_CHARS and text.isprintable():
        return text
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=_HASH_BYTES)
    return "#" + digest.hexdigest()


# --- evaluating ------------------------------------------------------------------------------


# What ``blocked_reason`` reads of a new state (it never reads the rules).
_UNTOUCHED: State = [0, None, 0]


def new_state(campaign: CompiledCampaign) -> State:
    """The progress of a customer who never sent a matching event."""
    return [0, None, 0, *([0, {}, {}, BOUNDED] if valued else 0 for _, valued in campaign.shapes)]


def state_of(campaign: CompiledCampaign, states: Mapping[str, State]) -> State | None:
    """The customer's progress in ``campaign``, or ``None`` when there is none or it was made
    for a version of the campaign with another number of rules (applying a program that adds
    or removes a campaign's rules starts its progress over). A rule that gained or lost its
    aggregate conditions since keeps its count; sums and values stored beyond today's bounds
    (by an earlier version) are brought within them."""
    state = states.get(campaign.id)
    if state is None or len(state) != RULES + len(campaign.shapes):
        return None
    for position, valued in campaign.shapes:
        rule_state = state[position]
        if (type(rule_state) is list) is not valued:
            state[position] = [rule_state, {}, {}, BOUNDED] if valued else rule_state[0]
        elif valued and len(rule_state) == 3:  # written by an earlier version (see ``State``)
            _repair(campaign.rules[position - RULES], rule_state)
    return state


def _repair(rule: CompiledRule, rule_state: list[Any]) -> None:
    """Bring the sums and values an earlier version stored within today's bounds, and mark
    them so (see ``State``)."""
    sums, values = rule_state[1], rule_state[2]
    for slot, total in sums.items():
        if total is None:
            # What an earlier version stored for a sum it let overflow to infinity (JSON has
            # none): its value is lost, so it starts over. A finite sum beyond the bound is
            # clamped by the next addition.
            sums[slot] = 0.0
    for aggregate in rule.aggregates:
        seen = values.get(aggregate.slot)
        if seen:
            values[aggregate.slot] = _bounded(aggregate, seen)
    rule_state.append(BOUNDED)


def _bounded(aggregate: Aggregate, seen: dict[str, Any]) -> dict[str, int]:
    """Stored values within the bounds: re-keyed as ``remembered`` keys them today (the
    stored keys are canonical texts, so a value seen again finds its count), then the most
    seen kept (the oldest first among equals)."""
    merged: dict[str, int] = {}
    for value, times in seen.items():
        if type(times) is int and times > 0:  # earlier versions kept spent values at 0
            key = remembered(value)
            merged[key] = merged.get(key, 0) + times
    kept = set(sorted(merged, key=lambda key: -merged[key])[: aggregate.keep])  # stable
    return {key: times for key, times in merged.items() if key in kept}


def conform(compiled: CompiledProgram, states: dict[str, State]) -> None:
    """Bring a customer's progress, as loaded, to the program in force (``state_of`` for every
    campaign; progress made for another number of rules is dropped, so it starts over). The
    ingest path does this once per request and then reads states as they are."""
    for campaign in compiled.campaigns:
        if campaign.id in states and state_of(campaign, states) is None:
            del states[campaign.id]


def rule_count(rule_state: Any) -> int:
    """How many events a rule's state has counted (see ``State``)."""
    return rule_state if type(rule_state) is int else int(rule_state[0])


def standing(state: State) -> tuple[int, int]:
    """How far along a state is: achievements, then events counted (merges keep the
    further one)."""
    return int(state[ACHIEVED]), sum(rule_count(rule) for rule in state[RULES:])


def evaluate_event(
    compiled: CompiledProgram,
    states: dict[str, State],
    name: str,
    metadata: Mapping[str, Any],
    facts: Facts,
    *,
    explain: bool = False,
) -> Evaluation:
    """Advance ``states`` (campaign id → state, added once a campaign progresses, and as
    ``conform`` leaves it) for one event."""
    if not explain:
        return _evaluate(compiled, states, name, metadata, facts)
    result = Evaluation()
    for campaign in compiled.by_event.get(name, ()):
        found = state_of(campaign, states)
        state = new_state(campaign) if found is None else found
        check = _explain(campaign, state, name, metadata)
        blocked = blocked_reason(campaign, state, facts)
        counted = False
        if blocked is None:
            for position, rule in enumerate(campaign.rules, RULES):
                if rule.event == name and _conditions_hold(rule, metadata):
                    _count_held(rule, state, position, metadata)
                    counted = True
        times = _achieve(campaign, state, facts) if blocked is None else 0
        points = 0
        if counted and found is None:
            states[campaign.id] = state
        if times:
            achievement = _achievement(campaign, times, metadata)
            result.achievements.append(achievement)
            points = achievement.points
        _conclude(check, state, blocked=blocked, counted=counted, times=times, points=points)
        result.checks.append(check)
    return result


def _evaluate(
    compiled: CompiledProgram,
    states: dict[str, State],
    name: str,
    metadata: Mapping[str, Any],
    facts: Facts,
) -> Evaluation:
    """``evaluate_event`` without the explanation: the ingest hot path, so each rule's
    conditions are tested at most once per event and nothing is built for a campaign the
    event leaves alone."""
    result = Evaluation()
    for campaign, rules in compiled.slots.get(name, ()):
        state = states.get(campaign.id)  # conformed: no ``state_of`` on the hot path
        held: list[bool] | None = None
        if state is None:
            held = [_conditions_hold(rule, metadata) for _, rule in rules]
            if True not in held:
                continue  # no progress to record, and nothing to achieve without any
            if campaign.limited and blocked_reason(campaign, _UNTOUCHED, facts) is not None:
                continue  # a new state would not be kept: do not build it
            state = new_state(campaign)
        elif campaign.limited and (blocked := blocked_reason(campaign, state, facts)) is not None:
            if blocked in CAPS:
                result.capped.append(campaign.id)
            continue  # counts nothing, achieves nothing
        counted = False
        for nth, (index, rule) in enumerate(rules):
            if held[nth] if held is not None else _conditions_hold(rule, metadata):
                if rule.aggregates:
                    _count_held(rule, state, RULES + index, metadata)
                else:
                    state[RULES + index] += 1
                counted = True
        times = _achieve(campaign, state, facts)
        if counted and held is not None:
            states[campaign.id] = state
        if times:
            result.achievements.append(_achievement(campaign, times, metadata))
    return result


def could_count(compiled: CompiledProgram, name: str, metadata: Mapping[str, Any]) -> bool:
    """Whether the event meets the conditions of any rule at all (the customer's state aside):
    when it does not, evaluating it changes nothing and needs no state."""
    return any(_any_rule_holds(c, name, metadata) for c in compiled.by_event.get(name, ()))


def _any_rule_holds(campaign: CompiledCampaign, name: str, metadata: Mapping[str, Any]) -> bool:
    return any(rule.event == name and _conditions_hold(rule, metadata) for rule in campaign.rules)


def _conditions_hold(rule: CompiledRule, metadata: Mapping[str, Any]) -> bool:
    # A plain loop: all() over a generator costs a frame per call on this hot path.
    for key, test in rule.checks:  # noqa: SIM110
        if key not in metadata or not test(metadata[key]):
            return False
    return True


def _explain(
    campaign: CompiledCampaign, state: State, name: str, metadata: Mapping[str, Any]
) -> CampaignCheck:
    """What the campaign sees in the event, before it is counted (the preview's why)."""
    check = CampaignCheck(campaign, eligible=True, reason="")
    check.progress_before = progress(campaign, state)
    for rule, rule_state in zip(campaign.rules, state[RULES:], strict=True):
        if rule.event != name:
            continue
        tests: list[tuple[Condition, Predicate]] = [
            *rule.simple,
            *((a.condition, _aggregate_test(a.condition)) for a in rule.aggregates),
        ]
        conditions = [
            ConditionCheck(
                condition.key,
                condition.op,
                condition.value,
                metadata.get(condition.key),
                condition.key in metadata and test(metadata[condition.key]),
            )
            for condition, test in tests
        ]
        counted = all(c.matched for c in conditions)
        check.rules.append(
            RuleCheck(rule.event, counted, rule_count(rule_state) + counted, rule.after, conditions)
        )
    return check


def _aggregate_test(condition: Condition) -> Predicate:
    return lambda actual: _aggregable(condition, actual)


def _conclude(
    check: CampaignCheck,
    state: State,
    *,
    blocked: str | None,
    counted: bool,
    times: int,
    points: int,
) -> None:
    check.eligible = blocked is None
    check.times, check.points = times, points
    check.progress_after = progress(check.campaign, state)
    if blocked is not None:
        check.reason = blocked
        for rule in check.rules:  # nothing counts while the campaign is out of reach
            rule.count -= rule.counted
            rule.counted = False
    elif times:
        reward = check.campaign.spec.reward
        check.reason = "Rewarded" if points or reward.points_per else "NonPointsReward"
    else:
        check.reason = "ProgressOnly" if counted else "NoMatchingConditions"


CAPS = frozenset({"MaxAchievementsReached", "DailyLimitReached"})


def blocked_reason(campaign: CompiledCampaign, state: State, facts: Facts) -> str | None:
    """Why this customer cannot win the campaign now, or ``None``."""
    if campaign.gated:
        reason = _outside(campaign, facts)
        if reason is not None:
            return reason
    if campaign.max_achievements != -1 and state[ACHIEVED] >= campaign.max_achievements:
        return "MaxAchievementsReached"
    per_day = campaign.per_day
    if per_day is not None and state[DAY_COUNT] >= per_day and state[DAY] == facts.day:
        return "DailyLimitReached"
    return None


def _outside(campaign: CompiledCampaign, facts: Facts) -> str | None:
    """Why the schedule or the audience leaves this customer out now, or ``None``."""
    if campaign.start is not None and facts.now < campaign.start:
        return "NotStarted"
    if campaign.end is not None and facts.now >= campaign.end:
        return "Ended"
    if campaign.tags and not facts.tags.intersection(campaign.tags):
        return "NotInAudience"
    if campaign.min_tier is not None and (facts.tier_order or 0) < campaign.min_tier:
        return "TierTooLow"
    return None


def _count_held(
    rule: CompiledRule, state: State, position: int, metadata: Mapping[str, Any]
) -> None:
    """Count an event whose conditions hold for the rule at ``position`` of ``state``, and
    record its aggregate values."""
    if not rule.aggregates:
        state[position] += 1
        return
    rule_state = state[position]
    for aggregate in rule.aggregates:
        _record(aggregate, rule_state, metadata[aggregate.condition.key])
    rule_state[0] += 1


def _aggregable(condition: Condition, actual: Any) -> bool:
    if condition.op == "accumulativeTotal":
        return number(actual) is not None
    return actual is not None and not isinstance(actual, dict | list)


def _record(aggregate: Aggregate, rule_state: list[Any], actual: Any) -> None:
    slot = aggregate.slot
    if aggregate.op == "accumulativeTotal":
        sums = rule_state[1]
        total = sums.get(slot, 0.0) + (number(actual) or 0.0)
        sums[slot] = total if -MAX_TOTAL <= total <= MAX_TOTAL else bounded_total(total)
        return
    values = rule_state[2].setdefault(slot, {})
    value = remembered(actual)
    if value in values:
        values[value] += 1
    elif len(values) < aggregate.keep:
        values[value] = 1
    elif aggregate.op == "repeatedValue":  # full: the least seen (then the oldest) gives way
        del values[min(values, key=values.__getitem__)]
        values[value] = 1
    # differentValues, full: it has all the distinct values its target needs


def bounded_total(total: float) -> float:
    """A running sum within ``±MAX_TOTAL``. Adding a finite number to a sum kept within the
    bound never reaches infinity, so clamping after each addition keeps every sum finite."""
    return -float(MAX_TOTAL) if total < -MAX_TOTAL else min(total, float(MAX_TOTAL))


def _achieve(campaign: CompiledCampaign, state: State, facts: Facts) -> int:
    """Record as many achievements as the state allows now; return how many. Each step takes
    as many as the satisfied rules allow at once (a large sum may complete a campaign many
    times: one step, not one per time), within the caps and ``MAX_TIMES_PER_EVENT``."""
    if campaign.counting:
        return _achieve_counted(campaign, state, facts)
    times = 0
    while times < MAX_TIMES_PER_EVENT and (
        times == 0 or blocked_reason(campaign, state, facts) is None
    ):
        satisfied = [
            (rule, position)
            for position, rule in enumerate(campaign.rules, RULES)
            if _satisfied(rule, state[position])
        ]
        if not satisfied or (campaign.match_all and len(satisfied) < len(campaign.rules)):
            break
        chosen = satisfied if campaign.match_all else satisfied[:1]
        step = MAX_TIMES_PER_EVENT
        for rule, position in chosen:  # a loop, not min() over a generator: a hot path
            capacity = _capacity(rule, state[position])
            if capacity < step:
                step = capacity
        if step > 1:  # one is always allowed: the caller found the campaign not blocked
            step = min(step, MAX_TIMES_PER_EVENT - times, _room(campaign, state, facts))
        for rule, position in chosen:
            state[position] = _consume(rule, state[position], step)
        _tally(state, facts, step)
        times += step
    return times


def _achieve_counted(campaign: CompiledCampaign, state: State, facts: Facts) -> int:
    """``_achieve`` for the common campaign of one rule that only counts events: the same
    steps, without the generic bookkeeping (this runs for most campaigns on every event)."""
    after = campaign.rules[0].after
    times = state[RULES] // after
    if times > 1:  # counts stored for a larger ``after``: as many as the caps allow now
        times = min(times, MAX_TIMES_PER_EVENT, _room(campaign, state, facts))
    if times > 0:
        state[RULES] -= times * after
        _tally(state, facts, times)
    return int(times)


def _room(campaign: CompiledCampaign, state: State, facts: Facts) -> int:
    """How many more achievements the caps allow now (the schedule and audience do not
    change within an event)."""
    room = MAX_TIMES_PER_EVENT
    if campaign.max_achievements != -1:
        room = min(room, campaign.max_achievements - state[ACHIEVED])
    if campaign.per_day is not None:
        today = state[DAY_COUNT] if state[DAY] == facts.day else 0
        room = min(room, campaign.per_day - today)
    return max(room, 0)


def _tally(state: State, facts: Facts, times: int) -> None:
    """Count achievements, overall and today."""
    state[ACHIEVED] += times
    if state[DAY] != facts.day:
        state[DAY], state[DAY_COUNT] = facts.day, 0
    state[DAY_COUNT] += times


def _satisfied(rule: CompiledRule, rule_state: Any) -> bool:
    if not rule.aggregates:
        return bool(rule_state >= rule.after)
    return rule_state[0] >= rule.after and all(
        _aggregate_progress(aggregate, rule_state) >= 1.0 for aggregate in rule.aggregates
    )


def _capacity(rule: CompiledRule, rule_state: Any) -> int:
    """How many achievements a satisfied rule can give before it must count again: its
    count over ``after``, or the times its sums hold their targets (a rule that also
    remembers values gives one at a time: the values change with each)."""
    if not rule.aggregates:
        return int(rule_state // rule.after)
    if not rule.summing_only:
        return 1
    times = MAX_TIMES_PER_EVENT
    for aggregate in rule.aggregates:
        share = rule_state[1].get(aggregate.slot, 0.0) / aggregate.target  # may be inf
        if share < times:
            times = int(share)
    return max(times, 1)


def _consume(rule: CompiledRule, rule_state: Any, times: int) -> Any:
    """The rule's state once ``times`` achievements took what produced them."""
    if not rule.aggregates:
        return rule_state - times * rule.after
    sums, values = rule_state[1], rule_state[2]
    for aggregate in rule.aggregates:
        slot = aggregate.slot
        if aggregate.op == "accumulativeTotal":
            sums[slot] = bounded_total(sums.get(slot, 0.0) - times * aggregate.target)
        elif aggregate.op == "differentValues":
            values[slot] = {}
        else:
            seen = values.get(slot, {})
            top = max(seen, key=seen.__getitem__)
            seen[top] -= times * aggregate.take
            if seen[top] <= 0:
                del seen[top]  # nothing left to remember of it
    if not rule.accumulative:
        rule_state[0] -= times * rule.after
    return rule_state


def _aggregate_progress(aggregate: Aggregate, rule_state: list[Any]) -> float:
    slot = aggregate.slot
    if aggregate.op == "accumulativeTotal":
        reached = float(rule_state[1].get(slot, 0.0))
    elif aggregate.op == "differentValues":
        reached = len(rule_state[2].get(slot, {}))
    else:
        reached = max(rule_state[2].get(slot, {}).values(), default=0)
    return reached / aggregate.target


def progress(campaign: CompiledCampaign, state: State) -> float:
    """How far the customer is towards the next achievement, 0 to 100."""
    shares = []
    for rule, rule_state in zip(campaign.rules, state[RULES:], strict=True):
        parts = [float(rule_count(rule_state)) / rule.after] + [
            _aggregate_progress(aggregate, rule_state) for aggregate in rule.aggregates
        ]
        shares.append(max(0.0, min(1.0, *parts)))  # every part must be reached
    if not shares:
        return 0.0
    share = sum(shares) / len(shares) if campaign.match_all else max(shares)
    return round(100.0 * share, 2)


def reward_points(campaign: Campaign, metadata: Mapping[str, Any]) -> int:
    """Points for one achievement: fixed, or floored per ``every`` units of a metadata key;
    at most ``MAX_AWARD`` (a quotient too large to hold, infinite included, is the cap)."""
    reward = campaign.reward
    if reward.points_per is None:
        return reward.points or 0
    per = reward.points_per
    amount = number(metadata.get(per.key))
    if amount is None or amount <= 0:
        return 0
    units = amount / per.every  # finite over positive: at worst infinite, never an error
    if not units < MAX_AWARD:
        return MAX_AWARD
    return min(math.floor(units) * per.points, MAX_AWARD)


def _achievement(
    campaign: CompiledCampaign, times: int, metadata: Mapping[str, Any]
) -> Achievement:
    """What ``times`` achievements at once earn: at most ``MAX_AWARD`` points and score."""
    reward = campaign.spec.reward
    points = reward_points(campaign.spec, metadata) * times
    score = (reward.score or 0) * times
    return Achievement(
        campaign,
        times,
        points if points < MAX_AWARD else MAX_AWARD,
        score if score < MAX_AWARD else MAX_AWARD,
        reward.badge,
    )


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
