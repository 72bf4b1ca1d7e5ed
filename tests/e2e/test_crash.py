"""Crash test: SIGKILL ``kudos serve`` under load; every acknowledged request survives once.

The server answers 200 only after the writer's COMMIT, so after a hard kill and a restart on
the same store: each request that got 200 is stored exactly once (both of its events), no
request is stored twice, and requests whose outcome the client never learned are stored
completely or not at all. The store is read directly, not through the server under test.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter
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
THREADS = 16
CUSTOMERS = 50
LOAD_SECONDS = 1.5
# Two events per request: a request is stored with both or with neither.
NAMES = ("crash_probe", "crash_echo")


class Load:
    """Threads posting uniquely marked requests until told to stop."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acknowledged: dict[str, str] = {}  # seq → customerId: answered 200
        self.refused: dict[str, int] = {}  # seq → status: answered, but not 200
        self.unknown: dict[str, str] = {}  # seq → customerId: no answer (error, kill)
        self.threads = [
            threading.Thread(target=self._run, args=(t,), name=f"load-{t}") for t in range(THREADS)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=20)
            assert not thread.is_alive(), "a load thread did not finish"

    def _run(self, t: int) -> None:
        timeout = httpx.Timeout(10.0, connect=2.0)
        with httpx.Client(base_url=self.server.url, timeout=timeout) as client:
            n = 0
            while not self.stop.is_set():
                seq = f"{t}-{n}"
                customer = f"crash-{(t * 7 + n) % CUSTOMERS}"
                body = {
                    "customerId": customer,
                    "events": {NAMES[0]: {"seq": seq}, NAMES[1]: {"seq": seq, "n": n}},
                }
                try:
                    response = client.post(EVENTS, json=body, headers=self.server.headers())
                except httpx.HTTPError:
                    with self.lock:
                        self.unknown[seq] = customer
                else:
                    with self.lock:
                        if response.status_code == 200:
                            self.acknowledged[seq] = customer
                        else:
                            self.refused[seq] = response.status_code
                n += 1


def query_store(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows read from the store itself, not through the server under test."""
    if database_url.startswith("sqlite:"):
        # sqlite:///relative.db or sqlite:////absolute.db, as kudos reads it.
        path = database_url.removeprefix("sqlite:").removeprefix("//")
        path = path[1:] if path.startswith("/") else path
        conn = sqlite3.connect(path)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()
    parts = urlsplit(database_url)
    query = dict(parse_qsl(parts.query))
    schema = query.pop("schema")
    with psycopg.connect(urlunsplit(parts._replace(query=urlencode(query))), autocommit=True) as pg:
        pg.execute(f"SET search_path TO {schema}")
        return pg.execute(sql).fetchall()


def stored_events(database_url: str) -> list[tuple[str, str, dict[str, Any]]]:
    """``(customer_id, name, metadata)`` of every stored event."""
    rows = query_store(database_url, "SELECT customer_id, name, metadata FROM events")
    return [
        (customer, name, json.loads(metadata) if isinstance(metadata, str) else metadata)
        for customer, name, metadata in rows
    ]


def kill_group(server: LiveServer) -> None:
    """SIGKILL the server's whole process group (it runs in its own session)."""
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=10)


@pytest.mark.slow
def test_acknowledged_events_survive_sigkill_exactly_once(
    database_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "server.log"
    server = start_server(database_url, log)
    load = Load(server)
    try:
        subprocess.run(
            kudos_command("accounts", "set", "live", "--rate-limit", "off", "--db", database_url),
            env=server_env(),
            check=True,
            capture_output=True,
        )
        load.start()
        time.sleep(LOAD_SECONDS)
        os.killpg(server.process.pid, signal.SIGKILL)  # requests are in flight right now
        assert server.process.wait(timeout=10) == -signal.SIGKILL
    finally:
        load.join()
        kill_group(server)

    assert len(load.acknowledged) >= 50, f"too little load before the kill: {log.read_text()}"
    assert load.unknown, "no request was in flight at the kill"
    assert not load.refused, f"requests refused under load: {Counter(load.refused.values())}"

    restarted = start_server(database_url, log, keys=(server.api_key, server.secret_key))
    try:
        rows = stored_events(database_url)
        per_name: dict[str, Counter[str]] = {name: Counter() for name in NAMES}
        customer_of: dict[str, set[str]] = {}
        for customer, name, metadata in rows:
            assert name in per_name, f"unexpected event {name!r}"
            per_name[name][metadata["seq"]] += 1
            customer_of.setdefault(metadata["seq"], set()).add(customer)

        probes, echoes = per_name[NAMES[0]], per_name[NAMES[1]]
        duplicated = sorted({seq for seq, count in (*probes.items(), *echoes.items()) if count > 1})
        assert not duplicated, f"requests stored more than once: {duplicated[:10]}"
        assert set(probes) == set(echoes), "a request was stored with only one of its events"

        lost = sorted(set(load.acknowledged) - set(probes))
        assert not lost, f"{len(lost)} acknowledged requests lost, e.g. {lost[:10]}"
        sent = load.acknowledged.keys() | load.unknown.keys()
        assert set(probes) <= sent, "events stored that were never sent"
        expected_customer = {**load.unknown, **load.acknowledged}
        assert all(customer_of[seq] == {expected_customer[seq]} for seq in probes)
        # The catalog counters commit with the events they count.
        catalog = dict(query_store(database_url, "SELECT name, count FROM event_names"))
        assert catalog == {name: len(per_name[name]) for name in NAMES if per_name[name]}

        # The restarted server serves the old data and takes new events.
        with httpx.Client(base_url=restarted.url, headers=restarted.headers(), timeout=10) as c:
            after = c.post(
                EVENTS, json={"customerId": "after-crash", "events": {"restarted": {"ok": True}}}
            )
            assert after.status_code == 200, after.text
            page = c.get("/api/v4.0/integrations/customers/after-crash/events")
            assert page.status_code == 200, page.text
            assert [e["name"] for e in page.json()["events"]] == ["restarted"]
            customer = next(iter(load.acknowledged.values()))
            served = Counter(
                (e["name"], e["metadata"]["seq"]) for e in customer_events(c, customer)
            )
            in_store = Counter((n, m["seq"]) for cust, n, m in rows if cust == customer)
            assert served == in_store
        assert ("after-crash", "restarted", {"ok": True}) in stored_events(database_url)
    finally:
        stop_server(restarted)
