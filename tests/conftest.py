"""Shared fixtures: one fresh store per test (a SQLite file, or a PostgreSQL schema).

Tests that take ``database_url`` run once on SQLite and once on PostgreSQL when
``KUDOS_TEST_POSTGRES_URL`` is set. With ``CI=true`` a PostgreSQL run that cannot happen
(variable unset, server unreachable, or any PostgreSQL test skipped) fails the session.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from kudos.api.app import KudosApp, create_app
from kudos.bootstrap import Runtime, run_in_transaction
from kudos.config import Settings
from kudos.services import accounts
from kudos.services.security import KeyPair

POSTGRES_URL = os.environ.get("KUDOS_TEST_POSTGRES_URL")
IN_CI = os.environ.get("CI", "").lower() == "true"
SERVER_KEY = "test-server-key-not-secret"

_postgres_results = {"passed": 0, "skipped": 0}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "[postgres" in report.nodeid and report.when == "call" and report.passed:
        _postgres_results["passed"] += 1
    if "[postgres" in report.nodeid and report.skipped:
        _postgres_results["skipped"] += 1


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not IN_CI or session.config.option.collectonly:
        return
    if _postgres_results["skipped"] or not _postgres_results["passed"]:
        print(  # noqa: T201 - the reason CI fails must reach the log
            f"\nCI=true but the PostgreSQL tests did not all run: {_postgres_results}"
        )
        session.exitstatus = 1


def _postgres_admin() -> psycopg.Connection[Any]:
    assert POSTGRES_URL is not None
    return psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store for this test only."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/kudos.db"
        return
    if not POSTGRES_URL:
        if IN_CI:
            pytest.fail("CI=true needs KUDOS_TEST_POSTGRES_URL")
        pytest.skip("KUDOS_TEST_POSTGRES_URL is not set")
    schema = f"kudos_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = _postgres_admin()
    except psycopg.OperationalError as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}schema={schema}"
    finally:
        admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.close()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        server_key=SERVER_KEY,
        server_key_file=tmp_path / "server.key",
        read_threads=2,
        webhook_worker="off",  # webhook tests drive a worker with their own clock
        webhook_retry_schedule="1s,2s,4s",
    )


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    runtime = Runtime.build(settings)
    runtime.start(migrate=True, ensure_default_account=False)
    try:
        yield runtime
    finally:
        await runtime.stop()


@pytest.fixture
def app(settings: Settings, runtime: Runtime) -> KudosApp:
    return create_app(settings, runtime=runtime)


def documented_error_codes() -> set[int]:
    """Codes in docs/errors.md: the v4 codes of the first column and the legacy ones of the last."""
    table = (Path(__file__).resolve().parent.parent / "docs" / "errors.md").read_text()
    rows = re.findall(r"^\| (\d{4}) \|.*\| (\d+) \|$", table, flags=re.MULTILINE)
    return {int(code) for row in rows for code in row}


async def _error_codes_are_documented(response: httpx.Response) -> None:
    """Every error any test provokes must carry a code that docs/errors.md lists."""
    if response.status_code < 400:
        return
    await response.aread()
    code = response.json().get("code")
    assert code in documented_error_codes(), f"undocumented error code {code}: {response.text}"


@pytest.fixture
async def client(app: KudosApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    hooks = {"response": [_error_codes_are_documented]}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://kudos", event_hooks=hooks
    ) as client:
        yield client


@pytest.fixture
def keys(runtime: Runtime) -> KeyPair:
    """An account named "shop" and its keys."""
    keyring = runtime.context.keyring
    return run_in_transaction(runtime.db, lambda tx: accounts.create(tx, keyring, "shop"))


@pytest.fixture
def auth(keys: KeyPair) -> dict[str, str]:
    """Headers of the "shop" account with both keys."""
    return {"apikey": keys.api_key, "secretkey": keys.secret_key}


def configure_account(runtime: Runtime, name: str = "shop", **changes: Any) -> None:
    run_in_transaction(runtime.db, lambda tx: accounts.configure(tx, name, **changes))


def events_body(customer_id: str = "cust-1", **overrides: Any) -> dict[str, Any]:
    """A seed-style Send Events body."""
    body: dict[str, Any] = {
        "customerId": customer_id,
        "events": {
            "write_review": {"product_id": "1653503260", "review": "5 Stars Product", "rating": 5},
            "place_order": {"order_id": "ORD12345", "order_amount": 150.75, "currency": "USD"},
        },
    }
    body.update(overrides)
    return body


# --- a real server in a subprocess, for end-to-end tests --------------------------------------


@dataclass
class LiveServer:
    url: str
    database_url: str
    api_key: str
    secret_key: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def headers(self) -> dict[str, str]:
        return {"apikey": self.api_key, "secretkey": self.secret_key}


def customer_events(client: httpx.Client, customer: str) -> list[dict[str, Any]]:
    """Every event of a customer's profile through the API, page by page."""
    events: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 1000}
    while True:
        page = client.get(f"/api/v4.0/integrations/customers/{customer}/events", params=params)
        assert page.status_code == 200, page.text
        data = page.json()
        events.extend(data["events"])
        if not data["hasMore"]:
            return events
        params["startAfter"] = data["events"][-1]["eventId"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def kudos_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "kudos", *args]


def server_env() -> dict[str, str]:
    return {**os.environ, "KUDOS_SERVER_KEY": SERVER_KEY, "KUDOS_LOG_LEVEL": "warning"}


def start_server(
    database_url: str,
    log_path: Path,
    *,
    port: int | None = None,
    workers: int = 1,
    keys: tuple[str, str] | None = None,
) -> LiveServer:
    """Migrate, create an account (unless ``keys`` given) and start ``kudos serve``."""
    env = server_env()
    subprocess.run(
        kudos_command("migrate", "--db", database_url), env=env, check=True, capture_output=True
    )
    if keys is None:
        created = subprocess.run(
            kudos_command("accounts", "create", "live", "--db", database_url, "--json"),
            env=env,
            check=True,
            capture_output=True,
        )
        data = json.loads(created.stdout)
        keys = (data["apiKey"], data["secretKey"])
    port = port or free_port()
    with log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            kudos_command(
                "serve", "--port", str(port), "--db", database_url, "--workers", str(workers)
            ),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = LiveServer(
        f"http://127.0.0.1:{port}", database_url, keys[0], keys[1], process, log_path
    )
    wait_until_up(server)
    return server


def wait_until_up(server: LiveServer, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"kudos serve exited: {server.log_path.read_text()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"kudos serve did not come up: {server.log_path.read_text()}")


def stop_server(server: LiveServer) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@pytest.fixture
def live_server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """``kudos serve`` in a subprocess on a free port, with an account "live"."""
    server = start_server(database_url, tmp_path / "server.log")
    try:
        yield server
    finally:
        stop_server(server)
