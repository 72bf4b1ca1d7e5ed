"""What one event costs the campaign engine under the worst program the limits allow.

    .venv/bin/python bench/program_cost.py [--events 300] [--rounds 5]

Builds the largest programs ``rules.schema`` accepts (every campaign on the one event name
the load sends, every rule and condition the limits allow, in two shapes: as many campaigns
as allowed, and as many rules and conditions per campaign as allowed) and, for reference, the
500 campaigns x 20 rules x 20 conditions that earlier limits let through (fewer events, one
run: it is that slow). Each is evaluated by
the pure engine (``rules.engine.evaluate_event``, the ingest path without the store) on one
customer's events, with metadata that meets every condition ("satisfied": every rule counts,
every campaign achieves, sums and values are recorded) and with metadata that fails only the
last condition each rule tests ("nearly": every condition but one is tested, nothing counts).
``examples/shop-program.yaml`` is measured in the same run, and every cost is also given as a
ratio to it: absolute numbers drift between machines and runs, ratios less so.

It also prints the size of the customer's progress after as many orders of products never
seen before (the most it can hold: what the store reads and writes per request) and the time
to encode and decode it as JSON.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from kudos.rules import schema
from kudos.rules.engine import CompiledProgram, Facts, State, compile_program, evaluate_event

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "examples" / "shop-program.yaml"
EVENT = "place_order"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SKUS = 50  # distinct products the customer orders, in turn

# Conditions a rule cycles through (simple ones first, as the engine tests them); the last
# simple one is what "nearly" metadata fails.
SIMPLE: list[dict[str, Any]] = [
    {"key": "currency", "op": "equals", "value": "USD,EUR"},
    {"key": "order_amount", "op": "gte", "value": 10},
    {"key": "order_amount", "op": "between", "value": [1, 100_000]},
    {"key": "title", "op": "contains", "value": "shoe"},
    {"key": "coupon", "op": "exists"},
    {"key": "country", "op": "notEquals", "value": "XX"},
    {"key": "items", "op": "lt", "value": 100},
]
AGGREGATE: list[dict[str, Any]] = [
    {"key": "order_amount", "op": "accumulativeTotal", "value": 500},
    {"key": "sku", "op": "differentValues", "value": 3},
    {"key": "sku", "op": "repeatedValue", "value": 2},
]
LAST: dict[str, Any] = {"key": "channel", "op": "equals", "value": "web"}


def metadata(step: int, *, satisfied: bool, distinct: bool = False) -> dict[str, Any]:
    """An order that meets every condition above, or all but ``LAST``; ``distinct``: with a
    product never seen before, as long as a remembered value may be (the largest progress)."""
    sku = f"sku-{step:0{schema.MAX_VALUE_CHARS - 4}d}" if distinct else f"sku-{step % SKUS}"
    return {
        "order_id": f"o-{step}",
        "order_amount": 150.75,
        "currency": "USD",
        "title": "Red running shoes",
        "coupon": "SPRING",
        "country": "DE",
        "items": 3,
        "sku": sku,
        "channel": "web" if satisfied else "app",
    }


def large_metadata(step: int, *, satisfied: bool) -> dict[str, Any]:
    """``metadata`` with the largest values a request may carry where the conditions look:
    900 KB of text (the ``contains`` still matches, at its start), a currency and a country
    of 200 KB each, an amount and an item count spelled in 100,000 digits."""
    order = metadata(step, satisfied=satisfied)
    order |= {
        "title": "Red running shoes " + "é" * 450_000,
        "currency": "usd" + " " * 200_000,
        "country": "D" * 200_000,
        "order_amount": "1" * 100_000,
        "items": "9" * 100_000,
        "sku": f"sku-{step % SKUS}" + "x" * 100_000,
    }
    return order


class Budget:
    """What the program-wide limits leave: rules, conditions and remembered values."""

    def __init__(self, rules: int, conditions: int, values: int) -> None:
        self.rules, self.conditions, self.values = rules, conditions, values

    def where(self, count: int) -> list[dict[str, Any]]:
        """Up to ``count`` conditions: aggregates while values are left, then simple ones,
        with ``LAST`` the last simple one (the engine tests simple ones first, in order)."""
        count = min(count, self.conditions)
        if count == 0:
            return []
        pool = itertools.cycle([*AGGREGATE, *SIMPLE])
        chosen: list[dict[str, Any]] = []
        while len(chosen) < count - 1:
            condition = next(pool)
            cost = schema.remembered_values(schema.Condition.model_validate(condition))
            if cost <= self.values:
                self.values -= cost
                chosen.append(condition)
        self.conditions -= count
        aggregates = [c for c in chosen if c["op"] in schema.AGGREGATE_OPERATORS]
        simple = [c for c in chosen if c["op"] not in schema.AGGREGATE_OPERATORS]
        return [*simple, LAST, *aggregates]


def program(campaigns: int, rules: int, per_rule: int, budget: Budget) -> Any:
    """``campaigns`` campaigns of up to ``rules`` rules of up to ``per_rule`` conditions,
    within the ``budget``."""
    documents = []
    for index in range(campaigns):
        rule_list = []
        for _ in range(min(rules, budget.rules)):
            rule_list.append({"event": EVENT, "where": budget.where(per_rule)})
            budget.rules -= 1
        if not rule_list:
            break
        documents.append(
            {
                "id": f"c{index}",
                "name": f"Campaign {index}",
                "trigger": {"match": "all", "rules": rule_list},
                "repeat": {"maxAchievements": -1},
                "reward": {"pointsPer": {"key": "order_amount", "every": 10, "points": 1}},
            }
        )
    return {"campaigns": documents}


def worst_programs() -> dict[str, Any]:
    """The largest programs the limits accept, in their two extreme shapes."""

    def most() -> Budget:
        return Budget(
            schema.MAX_PROGRAM_RULES, schema.MAX_PROGRAM_CONDITIONS, schema.MAX_PROGRAM_VALUES
        )

    spread = max(1, schema.MAX_PROGRAM_RULES // schema.MAX_CAMPAIGNS)
    return {
        "worst, most campaigns": program(
            schema.MAX_CAMPAIGNS, min(spread, schema.MAX_RULES), schema.MAX_CONDITIONS, most()
        ),
        "worst, fullest campaigns": program(
            schema.MAX_CAMPAIGNS, schema.MAX_RULES, schema.MAX_CONDITIONS, most()
        ),
    }


def compiled(document: Any) -> CompiledProgram:
    return compile_program(schema.load_program(document), version=1)


def compiled_unchecked(document: Any) -> CompiledProgram:
    """A program past today's limits (the earlier ones'), built without validating them."""
    campaigns = [
        schema.Campaign.model_construct(
            id=campaign["id"],
            name=campaign["name"],
            trigger=schema.Trigger.model_construct(
                match="all",
                rules=[
                    schema.Rule.model_construct(
                        event=rule["event"],
                        after=1,
                        where=[schema.Condition.model_validate(c) for c in rule["where"]],
                    )
                    for rule in campaign["trigger"]["rules"]
                ],
            ),
            repeat=schema.Repeat.model_validate(campaign["repeat"]),
            schedule=schema.Schedule(),
            audience=schema.Audience(),
            reward=schema.Reward.model_validate(campaign["reward"]),
            notification=None,
        )
        for campaign in document["campaigns"]
    ]
    return compile_program(schema.Program.model_construct(campaigns=campaigns), version=1)


def per_event_us(
    program: CompiledProgram,
    events: int,
    *,
    satisfied: bool,
    make: Callable[..., dict[str, Any]] = metadata,
) -> float:
    """Mean µs per event over ``events`` events of one customer, from an empty progress."""
    states: dict[str, State] = {}
    orders = [make(step, satisfied=satisfied) for step in range(events)]
    facts = Facts(now=NOW)
    started = time.perf_counter()
    for order in orders:
        evaluate_event(program, states, EVENT, order, facts)
    return (time.perf_counter() - started) / events * 1e6


def largest_progress(program: CompiledProgram, events: int) -> dict[str, State]:
    """A customer's progress after ``events`` orders, each of a product never seen before."""
    states: dict[str, State] = {}
    facts = Facts(now=NOW)
    for step in range(events):
        order = metadata(step, satisfied=True, distinct=True)
        evaluate_event(program, states, EVENT, order, facts)
    return states


def round_trip_us(states: dict[str, State], repeats: int = 20) -> float:
    started = time.perf_counter()
    for _ in range(repeats):
        msgspec.json.decode(msgspec.json.encode(states))
    return (time.perf_counter() - started) / repeats * 1e6


def median_of(rounds: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(rounds))


def line(
    name: str,
    target: CompiledProgram,
    costs: tuple[float, float],
    reference: tuple[float, float],
    events: int,
) -> str:
    """One program's row: its size, costs and ratios, and its largest progress after
    ``events`` orders (none: not measured)."""
    rules = sum(len(c.rules) for c in target.campaigns)
    conds = sum(len(r.simple) + len(r.aggregates) for c in target.campaigns for r in c.rules)
    size, json_us = "-", "-"
    if events:
        states = largest_progress(target, events)
        size, json_us = f"{len(msgspec.json.encode(states)):,}", f"{round_trip_us(states):,.1f}"
    full, near = costs
    return (
        f"{name:<40} {len(target.campaigns):>9} {rules:>6} {conds:>6}"
        f" {full:>13,.1f} {full / reference[0]:>7.1f} {near:>10,.1f}"
        f" {near / reference[1]:>7.1f} {size:>10} {json_us:>8}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=300, help="events per measured run")
    parser.add_argument("--rounds", type=int, default=5, help="runs per program (median)")
    args = parser.parse_args()

    targets: dict[str, CompiledProgram] = {
        "reference (examples/shop-program.yaml)": compiled(yaml.safe_load(REFERENCE.read_text()))
    }
    targets |= {name: compiled(document) for name, document in worst_programs().items()}
    old = program(500, 20, 20, Budget(500 * 20, 500 * 20 * 20, 500 * 20 * 20 * 100))
    targets["earlier limits, 500 x 20 x 20"] = compiled_unchecked(old)

    print(
        f"limits: {schema.MAX_CAMPAIGNS} campaigns, {schema.MAX_RULES} rules per campaign,"
        f" {schema.MAX_CONDITIONS} conditions per rule, {schema.MAX_PROGRAM_RULES} rules and"
        f" {schema.MAX_PROGRAM_CONDITIONS} conditions in all"
    )
    print(f"{args.events} events per run, median of {args.rounds} runs\n")
    header = (
        f"{'program':<40} {'campaigns':>9} {'rules':>6} {'conds':>6}"
        f" {'satisfied µs':>13} {'ratio':>7} {'nearly µs':>10} {'ratio':>7}"
        f" {'row bytes':>10} {'JSON µs':>8}"
    )
    print(header)
    print("-" * len(header))
    reference: tuple[float, float] | None = None
    for name, target in targets.items():
        legal = sum(len(c.rules) for c in target.campaigns) <= schema.MAX_PROGRAM_RULES
        events, rounds = (args.events, args.rounds) if legal else (20, 1)
        costs = (
            median_of(rounds, partial(per_event_us, target, events, satisfied=True)),
            median_of(rounds, partial(per_event_us, target, events, satisfied=False)),
        )
        reference = reference or costs
        print(line(name, target, costs, reference, events if legal else 0), flush=True)
    assert reference is not None
    for name, document in worst_programs().items():
        target = compiled(document)
        measure = partial(per_event_us, target, max(10, args.events // 10), make=large_metadata)
        costs = (
            median_of(args.rounds, partial(measure, satisfied=True)),
            median_of(args.rounds, partial(measure, satisfied=False)),
        )
        print(line(f"{name}, MB values", target, costs, reference, 0), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
