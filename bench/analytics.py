"""The analytics benchmark: the issue's queries over a shop of ten million events, timed on
SQLite and on PostgreSQL, each next to the raw scan of the same query.

    .venv/bin/python bench/analytics.py [--events 10000000] [--customers N] [--days 90]
        [--only sqlite,postgres] [--sqlite PATH] [--postgres URL] [--runs 7] [--reuse] [--json]

It builds each store (``bench/analytics_load.py``: the raw rows of ``bench/analytics_shop.py``'s
shop written in bulk, then the analytics derived with ``kudos.analytics.rebuild``, the code
ingest uses), or with ``--reuse`` takes the build a store already holds (resuming it if it was
interrupted). Then it calls each query's function directly, in one read transaction per run:
one warm-up, then ``--runs`` timed runs (``--raw-runs`` for the raw scans, which may each take
seconds), and prints the median and the p95 (nearest rank: with 7 runs, the slowest) against
the issue's target. Date ranges end with the local day holding the build's last event (the
build's ``now``), so a store reused days later answers the same queries.

Exits non-zero when a query failed or when a query's answer from the rollups differs from its
raw scan's.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import analytics_load as load
from kudos import errors
from kudos.domain.model import Account
from kudos.storage.db import Tx

DEFAULT_SQLITE = "/tmp/kudos-bench/analytics.db"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test?schema=kudos_bench_analytics"
EVENTS_PER_CUSTOMER = 100  # --customers' default: --events / this


@dataclass(frozen=True)
class Query:
    """One of the issue's queries: a trends/funnel/retention body, or the summary (None)."""

    key: str
    label: str
    target_ms: float
    body: dict[str, Any] | None
    raw: bool = False  # also timed with "source": "raw"


def queries(end: date) -> list[Query]:
    """The issue's queries, over ranges ending with the local day ``end``."""

    def days(count: int) -> dict[str, str]:
        return {"from": (end - timedelta(days=count - 1)).isoformat(), "to": _after(end)}

    def trends(series: dict[str, Any], span: int, **extra: Any) -> dict[str, Any]:
        return {"kind": "trends", "series": [series], "dateRange": days(span)} | {
            "interval": "day",
            **extra,
        }

    web = [{"key": "channel", "op": "equals", "value": "web"}]
    steps = [{"event": name} for name in ("add_to_cart", "checkout", "place_order")]
    return [
        Query(
            "count-90d",
            "trends: $any count by day, 90 days",
            50,
            trends({"event": "$any", "math": "count"}, 90),
            raw=True,
        ),
        Query("summary", "summary (default range)", 50, None),
        Query(
            "unique-30d",
            "trends: $any uniqueCustomers by day, 30 days",
            300,
            trends({"event": "$any", "math": "uniqueCustomers"}, 30),
            raw=True,
        ),
        Query(
            "sum-web-30d",
            "trends: place_order sum(amount) by day, channel = web, 30 days",
            300,
            trends({"event": "place_order", "math": "sum", "property": "amount"}, 30, filters=web),
            raw=True,
        ),
        Query(
            "breakdown-30d",
            "trends: place_order count by day by channel, 30 days",
            300,
            trends(
                {"event": "place_order", "math": "count"}, 30, breakdown={"property": "channel"}
            ),
            raw=True,
        ),
        Query(
            "funnel-30d",
            "funnel: add_to_cart > checkout > place_order, 7-day window, 30 days",
            2000,
            {
                "kind": "funnel",
                "steps": steps,
                "window": {"value": 7, "unit": "day"},
                "dateRange": days(30),
            },
        ),
        Query(
            "retention-8w",
            "retention: first seen > any event, 8 weeks",
            2000,
            {
                "kind": "retention",
                "cohortEvent": "$firstSeen",
                "returnEvent": "$any",
                "period": "week",
                "periods": 8,
                "dateRange": days(56),
            },
        ),
    ]


def _after(day: date) -> str:
    return (day + timedelta(days=1)).isoformat()


# --- timing ------------------------------------------------------------------------------------


@dataclass
class Timing:
    """A query's runs on one store, and what its answer said."""

    runs_ms: list[float] = field(default_factory=list)
    error: str | None = None
    error_code: int | None = None
    source: str | None = None
    exact: bool | None = None

    @property
    def median_ms(self) -> float | None:
        return statistics.median(self.runs_ms) if self.runs_ms else None

    @property
    def p95_ms(self) -> float | None:
        """Nearest rank: the value 95% of the runs are at most."""
        if not self.runs_ms:
            return None
        ordered = sorted(self.runs_ms)
        return ordered[math.ceil(0.95 * len(ordered)) - 1]


@dataclass
class Measured:
    query: Query
    store: str
    timing: Timing
    raw: Timing | None  # the raw scan of the same query (None: no such path for this query)
    agree: bool | None = None  # the rollups' answer equals the raw scan's

    @property
    def passed(self) -> bool | None:
        median = self.timing.median_ms
        return None if median is None else median < self.query.target_ms


def run_query(
    tx: Tx, account: Account, query: Query, now: float, *, raw: bool = False
) -> dict[str, Any]:
    """The query's answer, from a read transaction of its own."""
    from kudos.analytics import query as analytics_query
    from kudos.analytics import summary as analytics_summary

    tx.memo.clear()
    tx.execute("BEGIN")
    try:
        if query.body is None:
            return analytics_summary.summary(tx, account, start=None, end=None, now=now)
        body = query.body | {"source": "raw"} if raw else query.body
        return analytics_query.run(tx, account, body, now=now)
    finally:
        tx.execute("ROLLBACK")


def time_query(
    call: Callable[[], dict[str, Any]], runs: int
) -> tuple[Timing, dict[str, Any] | None]:
    """One warm-up, then ``runs`` timed calls; the warm-up's answer."""
    timing = Timing()
    try:
        answer = call()
    except errors.KudosError as exc:
        timing.error, timing.error_code = str(exc), exc.code
        return timing, None
    timing.source, timing.exact = answer.get("source"), answer.get("exact")
    for _ in range(runs):
        started = time.perf_counter()
        call()
        timing.runs_ms.append((time.perf_counter() - started) * 1000)
    return timing, answer


def measure(store: load.Store, build: load.Build, args: argparse.Namespace) -> list[Measured]:
    """Every query on one store."""
    db = store.database()
    conn = db.connect(writer=False)
    tx = Tx(db, conn)
    results = []
    try:
        account = load.account(tx)
        end = build.shape["end"]
        local_end = datetime.fromtimestamp(end, ZoneInfo(account.timezone)).date()
        for query in queries(local_end):
            call = functools.partial(run_query, tx, account, query, end)
            timing, answer = time_query(call, args.runs)
            measured = Measured(query, store.name, timing, None)
            if query.raw and not args.no_raw:
                raw_call = functools.partial(call, raw=True)
                measured.raw, raw_answer = time_query(raw_call, args.raw_runs)
                if answer is not None and raw_answer is not None:
                    measured.agree = same_answer(answer, raw_answer)
            args.say(f"{store.name}: {line(measured)}")
            results.append(measured)
    finally:
        conn.close()
    return results


def same_answer(rollup: dict[str, Any], raw: dict[str, Any]) -> bool:
    """Whether two trends answers have the same buckets and numbers (up to float rounding)."""
    ignored = {"source", "exact"}
    return _close(
        {k: v for k, v in rollup.items() if k not in ignored},
        {k: v for k, v in raw.items() if k not in ignored},
    )


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return (
            isinstance(a, int | float)
            and isinstance(b, int | float)
            and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
        )
    return bool(a == b)


# --- report ------------------------------------------------------------------------------------


# A raw scan may stop at its budget or refuse a range: what rollups are for, not a failure.
SHORT_ERRORS = {errors.QueryTimeout.code: "timeout", errors.QueryTooLarge.code: "too large"}


def _raw_ok(m: Measured) -> bool:
    return m.raw is None or m.raw.error_code in (None, *SHORT_ERRORS)


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f}"


def line(m: Measured) -> str:
    verdict = {True: "pass", False: "FAIL", None: "error"}[m.passed]
    raw = "n/a" if m.raw is None else _ms(m.raw.median_ms)
    if m.raw is not None and m.raw.error_code is not None:
        raw = SHORT_ERRORS.get(m.raw.error_code, f"error {m.raw.error_code}")
    agree = {True: "yes", False: "NO", None: "-"}[m.agree]
    return (
        f"{m.query.label:<70} {m.store:<8} {_ms(m.timing.median_ms):>9} {_ms(m.timing.p95_ms):>9}"
        f" {m.query.target_ms:>7,.0f} {verdict:>5} {m.timing.source or '-':>6} {raw:>12}"
        f" {agree:>5}"
        + (f"  error {m.timing.error_code}: {m.timing.error}" if m.timing.error else "")
    )


HEADER = (
    f"{'query':<70} {'store':<8} {'median ms':>9} {'p95 ms':>9} {'target':>7} {'':>5}"
    f" {'source':>6} {'raw med ms':>12} {'agree':>5}"
)


def build_lines(store: load.Store, build: load.Build, size: tuple[int, dict[str, int]]) -> str:
    total, tables = size
    analytics = sum(v for k, v in tables.items() if k.startswith(("analytics_", "activity_")))
    rebuild = build.rebuild_seconds or 0.0
    return (
        f"{store.name}: {build.events:,} events, {build.shape['customers']:,} customers,"
        f" {build.shape['days']} days; raw load {build.load_seconds:,.0f} s + indexes"
        f" {build.index_seconds:,.0f} s; rebuild {rebuild:,.1f} s"
        f" ({build.events / rebuild if rebuild else 0:,.0f} events/s)"
        + (f"; VACUUM ANALYZE {build.vacuum_seconds:,.0f} s" if build.vacuum_seconds else "")
        + f"\n  size {total / 2**30:,.2f} GiB: events {tables.get('events', 0) / 2**30:,.2f} GiB"
        f" (with indexes), analytics tables {analytics / 2**20:,.1f} MiB"
    )


def as_json(
    builds: list[tuple[load.Store, load.Build, tuple[int, dict[str, int]]]],
    results: list[Measured],
) -> dict[str, Any]:
    def timing(t: Timing | None) -> dict[str, Any] | None:
        if t is None:
            return None
        return asdict(t) | {"median_ms": t.median_ms, "p95_ms": t.p95_ms}

    return {
        "stores": [
            {"store": s.name, "build": asdict(b), "size_bytes": size[0], "tables": size[1]}
            for s, b, size in builds
        ],
        "queries": [
            {
                "key": m.query.key,
                "label": m.query.label,
                "store": m.store,
                "target_ms": m.query.target_ms,
                "passed": m.passed,
                "body": m.query.body,
                "timing": timing(m.timing),
                "raw": timing(m.raw),
                "agree": m.agree,
            }
            for m in results
        ],
    }


# --- main --------------------------------------------------------------------------------------


def stores(args: argparse.Namespace) -> list[load.Store]:
    wanted = set(args.only.split(","))
    chosen = []
    if "sqlite" in wanted:
        Path(args.sqlite).parent.mkdir(parents=True, exist_ok=True)
        chosen.append(load.Store("sqlite", load.sqlite_url(args.sqlite)))
    if "postgres" in wanted:
        problem = load.postgres_reachable(args.postgres)
        if problem is None:
            chosen.append(load.Store("postgres", args.postgres))
        else:
            args.say(f"postgres: skipped, {problem}")
    return chosen


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--customers", type=int, help=f"default: --events / {EVENTS_PER_CUSTOMER}")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timezone", default="UTC", help="the account's time zone")
    parser.add_argument("--only", default="sqlite,postgres", help="stores to build and query")
    parser.add_argument("--sqlite", default=DEFAULT_SQLITE, help="the SQLite file")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="a URL with ?schema=")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per query")
    parser.add_argument("--raw-runs", type=int, default=3, help="timed runs per raw scan")
    parser.add_argument("--no-raw", action="store_true", help="skip the raw scans")
    parser.add_argument("--reuse", action="store_true", help="keep (or resume) a store's build")
    parser.add_argument("--json", action="store_true", help="JSON on stdout (the rest: stderr)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.raw_runs < 1:
        parser.error("--runs and --raw-runs take at least 1")
    if args.customers is None:
        args.customers = max(1, args.events // EVENTS_PER_CUSTOMER)
    return args


def cpu_reference() -> float:
    """Seconds a fixed pure-Python loop (ten million additions) takes now: this machine's
    speed drifts (a shared VM), and every query here runs mostly Python, so the figures are
    read against it (on a quiet run here it took about 0.6 s)."""
    started = time.perf_counter()
    total = 0
    for number in range(10_000_000):
        total += number
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    out = sys.stderr if args.json else sys.stdout
    started = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - started:7.1f} s] {text}", file=out, flush=True)

    args.say = say
    builds = []
    for store in stores(args):
        build = load.ensure_built(
            store,
            events=args.events,
            customers=args.customers,
            days=args.days,
            seed=args.seed,
            timezone=args.timezone,
            reuse=args.reuse,
            progress=say,
        )
        builds.append((store, build, store.size()))
    before = cpu_reference()
    results = [m for store, build, _ in builds for m in measure(store, build, args)]
    after = cpu_reference()
    print(file=out)
    print(
        f"CPU reference (10M-addition Python loop): {before:.2f} s before the queries,"
        f" {after:.2f} s after (about 0.6 s on a quiet machine)",
        file=out,
    )
    for store, build, size in builds:
        print(build_lines(store, build, size), file=out)
    print(f"\n{HEADER}", file=out)
    for measured in results:
        print(line(measured), file=out)
    if args.json:
        answer = as_json(builds, results)
        answer["cpuReferenceSeconds"] = [round(before, 3), round(after, 3)]
        print(json.dumps(answer, indent=2))
    failed = [m for m in results if m.timing.error or not _raw_ok(m) or m.agree is False]
    return 1 if failed or not builds else 0


if __name__ == "__main__":
    sys.exit(main())
