"""bench/analytics.py at a very small size: the shop it draws, the store it loads (and resumes),
and one run of every query on it."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from bench import analytics, analytics_load, analytics_shop
from kudos.storage.db import Tx

END = 1_790_000_000.5  # a Unix time in the afternoon (UTC), so the last day is partial
SMALL = {"events": 4_000, "customers": 40, "days": 21, "seed": 7}


def small_shape(**overrides: Any) -> analytics_shop.Shape:
    return analytics_shop.Shape(**(SMALL | {"end": END} | overrides))


def test_a_day_is_the_same_every_time_and_in_time_order() -> None:
    plan = analytics_shop.make_plan(small_shape())
    again = analytics_shop.make_plan(small_shape())
    day = analytics_shop.make_day(plan, 10)
    assert day == analytics_shop.make_day(again, 10)
    stamps = [event[-1] for event in day.events]
    assert stamps == sorted(stamps)
    assert {stamp[:10] for stamp in stamps} == {"2026-09-11"}  # day 0: 2026-09-01
    assert {"view_product", "add_to_cart", "place_order"} <= {event[2] for event in day.events}


def test_the_events_are_about_as_many_as_asked_and_end_at_the_build_end() -> None:
    plan = analytics_shop.make_plan(small_shape())
    days = [analytics_shop.make_day(plan, day) for day in range(SMALL["days"])]
    total = sum(len(day.events) for day in days)
    assert 0.9 * SMALL["events"] < total < 1.1 * SMALL["events"]
    assert days[-1].events[-1][-1] < "2026-09-21T14:13:20.5Z"
    joined = sum(kind == analytics_shop.MAIN for day in days for _, kind, _ in day.new_customers)
    assert joined == SMALL["customers"]


def test_too_few_events_for_the_customers_are_refused() -> None:
    with pytest.raises(ValueError, match="too few"):
        analytics_shop.make_plan(small_shape(events=100))


def stored_events(url: str) -> list[tuple[Any, ...]]:
    db = analytics_load.Store("s", url).database()
    conn = db.connect(writer=False)
    try:
        return Tx(db, conn).all(
            "SELECT id, customer_id, name, metadata, received_at FROM events ORDER BY id"
        )
    finally:
        conn.close()


def test_an_interrupted_build_resumes_where_it_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = analytics_load.Store("sqlite", analytics_load.sqlite_url(tmp_path / "a.db"))
    write_day = analytics_load._write_day

    def fail_on_day_12(*args: Any) -> None:
        write_day(*args)
        if args[-1].day == 12:
            raise RuntimeError("interrupted")

    monkeypatch.setattr(analytics_load, "_write_day", fail_on_day_12)
    build: dict[str, Any] = dict(SMALL, timezone="UTC", progress=lambda text: None)
    with pytest.raises(RuntimeError, match="interrupted"):
        analytics_load.ensure_built(store, reuse=False, **build)
    monkeypatch.setattr(analytics_load, "_write_day", write_day)
    done = analytics_load.ensure_built(store, reuse=True, **build)

    plan = analytics_shop.make_plan(analytics_shop.Shape(**done.shape))
    drawn = [
        e[1:] for day in range(SMALL["days"]) for e in analytics_shop.make_day(plan, day).events
    ]
    stored = stored_events(store.url)
    assert [row[0] for row in stored] == list(range(1, len(drawn) + 1))
    assert [tuple(row[1:]) for row in stored] == drawn
    assert done.loaded and done.events == len(drawn) and done.rebuild_events == len(drawn)
    assert program_mismatches(store.url) == []


def program_mismatches(url: str) -> list[tuple[Any, ...]]:
    """Customers whose totals differ from their ledger and their events (merged ones
    counted for the profile that absorbed them)."""
    db = analytics_load.Store("s", url).database()
    conn = db.connect(writer=False)
    try:
        return Tx(db, conn).all(
            "SELECT r.profile_id, r.points_balance, r.event_count,"
            " (SELECT coalesce(sum(points), 0) FROM history h WHERE h.profile_id = r.profile_id),"
            " (SELECT count(*) FROM events e JOIN profiles p ON p.id = e.profile_id"
            "  WHERE coalesce(p.merged_into, p.id) = r.profile_id) AS events"
            " FROM customer_rewards r"
            " WHERE r.points_balance <> (SELECT coalesce(sum(points), 0) FROM history h"
            "  WHERE h.profile_id = r.profile_id)"
            " OR r.event_count <> (SELECT count(*) FROM events e JOIN profiles p"
            "  ON p.id = e.profile_id WHERE coalesce(p.merged_into, p.id) = r.profile_id)"
            " OR EXISTS (SELECT 1 FROM profiles p WHERE p.id = r.profile_id"
            "  AND p.merged_into IS NOT NULL)"
        )
    finally:
        conn.close()


def test_every_query_runs_on_a_small_store(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backend, store = "postgres", ["--postgres", database_url]
    if database_url.startswith("sqlite:"):
        backend, store = "sqlite", ["--sqlite", str(tmp_path / "bench.db")]
    sizes = [f"--{key}={value}" for key, value in SMALL.items()]
    argv = [*sizes, "--only", backend, *store, "--runs", "1", "--raw-runs", "1", "--json"]
    assert analytics.main(argv) == 0
    answer = json.loads(capsys.readouterr().out)
    (built,) = answer["stores"]
    assert built["build"]["events"] == built["build"]["rebuild_events"] > 3_000
    keys = [query["key"] for query in answer["queries"]]
    assert keys == [query.key for query in analytics.queries(date(2026, 9, 21))]
    for query in answer["queries"]:
        assert query["timing"]["error"] is None and len(query["timing"]["runs_ms"]) == 1
        assert query["agree"] is (True if query["raw"] else None)
