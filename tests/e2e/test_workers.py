"""``kudos serve --workers 2`` on PostgreSQL: concurrent writers in two processes.

Identity resolution must hold across processes: concurrent first requests for one new
customer make one profile, and customerIds that share an email (channel merging on email)
end up on one profile, whichever process handled which request.
"""

from __future__ import annotations

import subprocess
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import psycopg
import pytest

from tests.conftest import (
    LiveServer,
    customer_events,
    kudos_command,
    server_env,
    start_server,
    stop_server,
)

EVENTS = "/api/v4.0/integrations/events"
REQUESTS = 60
MERGED_CUSTOMERS = 10


@pytest.fixture
def workers_server(database_url: str, tmp_path: Path) -> Any:
    if database_url.startswith("sqlite"):
        pytest.skip("--workers > 1 needs PostgreSQL")
    server = start_server(database_url, tmp_path / "server.log", workers=2)
    try:
        subprocess.run(
            kudos_command(
                "accounts",
                "set",
                "live",
                "--channel-merging",
                "email",
                "--rate-limit",
                "off",
                "--db",
                database_url,
            ),
            env=server_env(),
            check=True,
            capture_output=True,
        )
        yield server
    finally:
        stop_server(server)


def worker_processes(server: LiveServer) -> list[int]:
    """The uvicorn worker processes under the server's supervisor (Linux /proc)."""
    pid = server.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [
        int(child)
        for child in children
        if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
    ]


def table_counts(database_url: str, *tables: str) -> dict[str, int]:
    """Row counts read from the store itself (the test's own schema)."""
    parts = urlsplit(database_url)
    query = dict(parse_qsl(parts.query))
    schema = query.pop("schema")
    with psycopg.connect(urlunsplit(parts._replace(query=urlencode(query))), autocommit=True) as pg:
        pg.execute(f"SET search_path TO {schema}")
        counts = {}
        for table in tables:
            row = pg.execute(f"SELECT count(*) FROM {table}").fetchone()
            assert row is not None
            counts[table] = int(row[0])
        return counts


def test_two_workers_resolve_identities_once(workers_server: LiveServer) -> None:
    server = workers_server
    assert len(worker_processes(server)) == 2
    single = f"rush-{uuid.uuid4().hex[:8]}"
    merged = [f"shared-{n}" for n in range(MERGED_CUSTOMERS)]
    email = "Shared.Person@Example.com"
    bodies: list[dict[str, Any]] = []
    for n in range(REQUESTS):
        bodies.append({"customerId": single, "events": {"tap": {"marker": f"single-{n}"}}})
        bodies.append(
            {
                "customerId": merged[n % MERGED_CUSTOMERS],
                "email": email if n % 2 else email.lower(),
                "events": {"visit": {"marker": f"merged-{n}"}},
            }
        )

    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    with httpx.Client(
        base_url=server.url, headers=server.headers(), timeout=30, limits=limits
    ) as client:
        with ThreadPoolExecutor(max_workers=32) as pool:
            responses = list(pool.map(lambda body: client.post(EVENTS, json=body), bodies))
        assert [r.status_code for r in responses] == [200] * len(bodies), [
            r.text for r in responses if r.status_code != 200
        ][:5]

        # One new customer, hit 60 times at once: one profile, every event once.
        profile = client.get(f"/api/v4.0/integrations/customers/{single}")
        assert profile.status_code == 200, profile.text
        assert profile.json()["linkedCustomerIds"] == [single]
        again = client.get(f"/api/v4.0/integrations/customers/{single}")
        assert again.json()["gameballId"] == profile.json()["gameballId"]
        markers = Counter(e["metadata"]["marker"] for e in customer_events(client, single))
        assert markers == Counter(f"single-{n}" for n in range(REQUESTS))

        # Ten customerIds sharing one email: one profile holding all of their events.
        profiles = [client.get(f"/api/v4.0/integrations/customers/{c}").json() for c in merged]
        assert len({p["gameballId"] for p in profiles}) == 1, profiles
        assert profiles[0]["gameballId"] != profile.json()["gameballId"]
        assert sorted(profiles[0]["linkedCustomerIds"]) == sorted(merged)
        for customer in merged:
            events = customer_events(client, customer)
            markers = Counter(e["metadata"]["marker"] for e in events)
            assert markers == Counter(f"merged-{n}" for n in range(REQUESTS))
            by_customer = {e["metadata"]["marker"]: e["customerId"] for e in events}
            assert all(
                by_customer[f"merged-{n}"] == merged[n % MERGED_CUSTOMERS] for n in range(REQUESTS)
            )

    # Nothing was created twice and then merged away: two profiles, no merges, every event once.
    assert table_counts(
        server.database_url, "profiles", "profile_merges", "customer_ids", "events"
    ) == {
        "profiles": 2,
        "profile_merges": 0,
        "customer_ids": 1 + MERGED_CUSTOMERS,
        "events": 2 * REQUESTS,
    }
