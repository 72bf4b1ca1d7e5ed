"""``kudos analytics …`` and ``kudos accounts set --timezone`` against both stores."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner, Result

from kudos.bootstrap import build_database, build_keyring
from kudos.cli import main
from kudos.config import Settings
from kudos.domain.model import Credentials
from kudos.services import accounts
from tests.analytics.conftest import Store
from tests.analytics.test_keep import ingest
from tests.conftest import SERVER_KEY

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


@pytest.fixture
def run(database_url: str):  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(
            main, [*args, "--db", database_url], env={"KUDOS_SERVER_KEY": SERVER_KEY}
        )

    return invoke


@pytest.fixture
def shop(database_url: str):  # type: ignore[no-untyped-def]
    """An account "shop" with a few events of the last hours (stamped as ingest does)."""
    settings = Settings(database_url=database_url, server_key=SERVER_KEY)
    db = build_database(settings)
    db.migrate()
    store = Store(db, build_keyring(settings))
    keys = store.run(lambda tx: accounts.create(tx, store.keyring, "shop"))
    credentials = Credentials(api_key=keys.api_key, secret_key=None)
    earlier = NOW - timedelta(hours=3)
    ingest(
        store,
        credentials,
        [
            (earlier, "ann", {"view": {"price": 4}, "buy": {"amount": 10}}),
            (earlier, "bob", {"view": {"price": 6}}),
            (NOW, "ann", {"view": {"price": 5}}),
        ],
    )
    store.close()


def test_trends_as_a_table_and_as_json(run, shop) -> None:  # type: ignore[no-untyped-def]
    table = run("analytics", "trends", "--account", "shop", "--event", "view", "--last", "2d")
    assert table.exit_code == 0, table.output
    assert "view · count" in table.output
    answer = json.loads(
        run(
            "analytics",
            "trends",
            "--account",
            "shop",
            "--event",
            "view",
            "--math",
            "sum",
            "--property",
            "price",
            "--last",
            "2d",
            "--json",
        ).output
    )
    assert answer["series"][0]["total"] == 15
    filtered = json.loads(
        run(
            "analytics",
            "trends",
            "--account",
            "shop",
            "--event",
            "view",
            "--where",
            "price:gte:5",
            "--last",
            "2d",
            "--json",
        ).output
    )
    assert filtered["series"][0]["total"] == 2


def test_funnel_retention_and_summary(run, shop) -> None:  # type: ignore[no-untyped-def]
    funnel = json.loads(
        run(
            "analytics",
            "funnel",
            "--account",
            "shop",
            "--step",
            "view",
            "--step",
            "buy",
            "--window",
            "1d",
            "--last",
            "2d",
            "--json",
        ).output
    )
    assert [s["count"] for s in funnel["steps"]] == [2, 1]
    retention = json.loads(
        run(
            "analytics",
            "retention",
            "--account",
            "shop",
            "--period",
            "day",
            "--last",
            "3d",
            "--json",
        ).output
    )
    assert sum(c["size"] for c in retention["cohorts"]) == 2
    summary = json.loads(run("analytics", "summary", "--account", "shop", "--json").output)
    assert summary["events"]["value"] == 4 and summary["members"]["enrolled"]["value"] == 2
    assert run("analytics", "summary", "--account", "shop").exit_code == 0


def test_a_bad_query_says_what_is_wrong(run, shop) -> None:  # type: ignore[no-untyped-def]
    result = run("analytics", "trends", "--account", "shop", "--event", "view", "--math", "mode")
    assert result.exit_code == 1
    assert "series[0].math: unknown math 'mode'" in result.output
    result = run("analytics", "funnel", "--account", "shop", "--step", "a", "--window", "7y")
    assert result.exit_code == 2 and "--window" in result.output
    assert run("analytics", "trends", "--account", "nobody", "--event", "x").exit_code == 1


def test_a_new_time_zone_rebuilds_the_analytics(run, shop) -> None:  # type: ignore[no-untyped-def]
    refused = run("accounts", "set", "shop", "--timezone", "Mars/Olympus")
    assert refused.exit_code == 1 and "unknown time zone" in refused.output
    later = run("accounts", "set", "shop", "--timezone", "Asia/Tokyo", "--no-rebuild")
    assert later.exit_code == 0 and "time zone Asia/Tokyo" in later.output
    stale = json.loads(
        run(
            "analytics", "trends", "--account", "shop", "--event", "view", "--last", "2d", "--json"
        ).output
    )
    assert stale["exact"] is False and stale["timezone"] == "Asia/Tokyo"
    result = run("accounts", "set", "shop", "--timezone", "Europe/Paris")
    assert result.exit_code == 0, result.output
    assert "analytics rebuilt from 4 events" in result.output
    fresh = json.loads(
        run(
            "analytics",
            "trends",
            "--account",
            "shop",
            "--event",
            "view",
            "--math",
            "uniqueCustomers",
            "--interval",
            "day",
            "--last",
            "3d",
            "--json",
        ).output
    )
    assert fresh["exact"] is True and fresh["series"][0]["total"] == 2
    again = run("analytics", "rebuild", "--account", "shop")
    assert again.exit_code == 0 and "rebuilt from 4 events" in again.output
