"""What analytics keeps at ingest: a rebuild from the raw events derives the same rows; a
merge, a clock set back and a time-zone change keep the activity rows and their gaps right."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kudos.analytics import keep, query, rebuild, summary
from kudos.domain.model import Account, Credentials
from kudos.domain.payload import EventBatch
from kudos.services import accounts
from kudos.services.ingest import IngestContext, IngestEvents
from kudos.storage import analytics as analytics_rows
from kudos.storage.db import Tx
from tests.analytics.conftest import Store
from tests.analytics.test_oracle import apply_batch

START = datetime(2026, 3, 26, 22, 30, tzinfo=UTC)  # Paris changes to summer time on the 29th
# Each table's key columns (without the shard) and the values summed over shards.
TABLES = {
    "analytics_hours": ("name, hour", "sum(events)"),
    "analytics_numbers": ("name, key, hour", "sum(n), sum(total), min(low), max(high)"),
    "activity_days": ("name, day, profile_id, prev", "count(*)"),
    "activity_gaps": ("name, day, gap", "sum(customers)"),  # a merge may leave 0s: see below
    "ledger_hours": ("kind, direction, hour", "sum(points), sum(entries)"),
}


def new_account(store: Store, **settings: Any) -> tuple[Account, Credentials]:
    name = f"shop-{uuid.uuid4().hex[:10]}"
    keys = store.run(lambda tx: accounts.create(tx, store.keyring, name))
    account = store.run(lambda tx: accounts.configure(tx, name, rate_limit="off", **settings))
    return account, Credentials(api_key=keys.api_key, secret_key=None)


def ingest(
    store: Store,
    credentials: Credentials,
    requests: list[tuple[datetime, str, dict[str, Any]]],
    *,
    email: dict[str, str] | None = None,
    per_batch: int = 3,
) -> None:
    """Write ``(time, customerId, events)`` requests as the writer does, a few per batch."""
    context = IngestContext(keyring=store.keyring, clock=lambda: 0.0)
    works = [
        IngestEvents(
            context=context,
            batch=EventBatch(
                customer,
                [(name, data or {}) for name, data in events.items()],
                email=(email or {}).get(customer),
            ),
            credentials=credentials,
            received_at=at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        )
        for at, customer, events in requests
    ]
    for start in range(0, len(works), per_batch):
        store.run(lambda tx, batch=works[start : start + per_batch]: apply_batch(tx, batch))


def snapshot(store: Store, account_id: int) -> dict[str, list[tuple[Any, ...]]]:
    def read(tx: Tx) -> dict[str, list[tuple[Any, ...]]]:
        return {
            table: sorted(
                tuple(row)
                for row in tx.all(
                    f"SELECT {keys}, {values} FROM {table} WHERE account_id = ? GROUP BY {keys}",
                    (account_id,),
                )
            )
            for table, (keys, values) in TABLES.items()
        }

    def counted(found: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
        # A gap row whose count a merge took back to 0 counts nothing, as an absent one.
        found["activity_gaps"] = [row for row in found["activity_gaps"] if row[-1]]
        return found

    return counted(store.run(read))


def traffic() -> list[tuple[datetime, str, dict[str, Any]]]:
    """Three customers over a week that crosses a DST change, with numbers, strings and
    repeats in a day."""
    requests = []
    for hour in range(0, 24 * 7, 5):
        at = START + timedelta(hours=hour, minutes=hour % 60)
        customer = f"c{hour % 3}"
        requests.append(
            (at, customer, {"view": {"price": hour * 1.5, "sku": "a"}, "buy": {"amount": hour}})
        )
        if hour % 2:
            requests.append((at, customer, {"view": {"price": -1, "big": 10**30}}))
    return requests


def test_a_rebuild_derives_what_ingest_kept(store: Store) -> None:
    account, credentials = new_account(store, timezone="Europe/Paris")
    ingest(store, credentials, traffic())
    kept = snapshot(store, account.id)
    assert kept["activity_days"] and kept["analytics_numbers"]
    assert store.run(lambda tx: analytics_rows.stale_reason(tx, account.id)) is None
    read = rebuild.rebuild(store.db, account.id)
    assert read == sum(len(events) for _, _, events in traffic())
    assert snapshot(store, account.id) == kept


def gaps_from_days(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The gap table the activity rows imply (what ``activity_gaps`` must hold)."""
    counted: dict[tuple[str, int, int], int] = defaultdict(int)
    for name, day, _, prev, _ in rows:
        counted[(name, day, keep.gap_of(day, prev))] += 1
    return sorted((*key, n) for key, n in counted.items())


def chains_are_whole(rows: list[tuple[Any, ...]]) -> bool:
    """Each customer's days, per name, each pointing at the one before."""
    days: dict[tuple[str, int], list[tuple[int, Any]]] = defaultdict(list)
    for name, day, profile, prev, _ in rows:
        days[(name, profile)].append((day, prev))
    for chain in days.values():
        chain.sort()
        expected = [None] + [day for day, _ in chain[:-1]]
        if [prev for _, prev in chain] != expected:
            return False
    return True


def test_a_merge_joins_the_customers_days_and_recounts_their_gaps(store: Store) -> None:
    account, credentials = new_account(store, channel_merging="email")
    day = timedelta(days=1)
    ingest(
        store,
        credentials,
        [
            (START, "ann", {"view": None}),
            (START + 2 * day, "bob", {"view": None, "buy": None}),
            (START + 3 * day, "ann", {"view": None}),
            (START + 5 * day, "bob", {"view": None}),
        ],
        per_batch=1,
    )
    # bob sends ann's email: the two profiles become one, every earlier day included.
    ingest(store, credentials, [(START + 6 * day, "bob", {"view": None})], email={"bob": "a@x.io"})
    ingest(store, credentials, [(START + 6 * day, "ann", {"buy": None})], email={"ann": "a@x.io"})
    kept = snapshot(store, account.id)
    assert len({row[2] for row in kept["activity_days"]}) == 1
    assert chains_are_whole(kept["activity_days"])
    assert kept["activity_gaps"] == gaps_from_days(kept["activity_days"])
    body = {
        "kind": "trends",
        "series": [{"event": "view", "math": "uniqueCustomers"}],
        "dateRange": {"from": "2026-03-26", "to": "2026-04-03"},
        "interval": "day",
    }
    answer = store.run(lambda tx: query.run(tx, account, body, now=0.0))
    assert answer["series"][0]["total"] == 1
    assert answer["exact"] is True
    now = (START + timedelta(days=7)).timestamp()
    members = store.run(lambda tx: summary.summary(tx, account, now=now))["members"]
    assert (members["enrolled"]["value"], members["new"]["value"]) == (1, 1)
    assert members["active"]["value"] == 1
    assert snapshot(store, account.id) == kept
    rebuild.rebuild(store.db, account.id)
    assert snapshot(store, account.id) == kept


def test_a_day_older_than_the_latest_goes_between_its_neighbours(store: Store) -> None:
    account, credentials = new_account(store)
    day = timedelta(days=1)
    ingest(store, credentials, [(START + 4 * day, "ann", {"view": None})])
    ingest(store, credentials, [(START, "ann", {"view": None})])  # a clock set back
    ingest(store, credentials, [(START + 2 * day, "ann", {"view": None})])
    ingest(store, credentials, [(START + 2 * day, "ann", {"view": None})])
    kept = snapshot(store, account.id)
    assert chains_are_whole(kept["activity_days"])
    assert kept["activity_gaps"] == gaps_from_days(kept["activity_days"])
    assert len(kept["activity_days"]) == 6  # three days, of "view" and of any event


def test_a_new_time_zone_leaves_analytics_stale_until_a_rebuild(store: Store) -> None:
    account, credentials = new_account(store)
    ingest(store, credentials, [(START, "ann", {"view": None})])
    utc_days = {row[1] for row in snapshot(store, account.id)["activity_days"]}
    moved = store.run(
        lambda tx: accounts.configure(tx, account.name, timezone="Pacific/Kiritimati")
    )
    body = {"kind": "stickiness", "event": "view", "dateRange": {"last": "30d"}}
    now = (START + timedelta(days=1)).timestamp()
    stale = store.run(lambda tx: query.run(tx, moved, body, now=now))
    assert stale["exact"] is False and "rebuild" in stale["notes"][0]
    rebuild.rebuild(store.db, account.id)
    fresh = store.run(lambda tx: query.run(tx, moved, body, now=now))
    assert fresh["exact"] is True and "notes" not in fresh
    assert {row[1] for row in snapshot(store, account.id)["activity_days"]} == {
        day + 1
        for day in utc_days  # 22:30 UTC is the next day at UTC+14
    }


def test_a_rebuild_that_must_forget_reads_what_it_forgot(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rebuild remembers customers' latest days up to a bound; past it, it reads them from
    the store again (and derives the same rows)."""
    account, credentials = new_account(store, timezone="America/New_York")
    ingest(store, credentials, traffic())
    kept = snapshot(store, account.id)
    monkeypatch.setattr(rebuild, "REMEMBERED_DAYS", 4)
    rebuild.rebuild(store.db, account.id)
    assert snapshot(store, account.id) == kept
