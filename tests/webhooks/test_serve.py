"""On SQLite, `kudos serve` delivers webhooks itself: a real server, a real receiver."""

from __future__ import annotations

import contextlib
import signal
import sqlite3
from pathlib import Path

import httpx
import pytest

from kudos.webhooks import signing
from tests.conftest import LiveServer, events_body, start_server, stop_server
from tests.webhooks.conftest import Receiver

TIMEOUT = 2.0  # KUDOS_WEBHOOK_TIMEOUT_SECONDS of the server that stops

pytestmark = pytest.mark.filterwarnings(
    r"ignore:unclosed file <_io.BufferedWriter name='[^']*server\.log'>:ResourceWarning"
)


def test_kudos_serve_on_sqlite_delivers_what_it_ingests(receiver: Receiver, tmp_path: Path) -> None:
    """(On PostgreSQL, `kudos worker` processes deliver: see test_worker_processes.)"""
    live_server = start_server(f"sqlite:///{tmp_path}/kudos.db", tmp_path / "server.log")
    try:
        _deliver_through(live_server, receiver)
    finally:
        stop_server(live_server)


def _deliver_through(live_server: LiveServer, receiver: Receiver) -> None:
    headers = live_server.headers()
    created = httpx.post(
        f"{live_server.url}/api/kudos/v1/webhooks",
        json={"url": receiver.url(), "topics": ["customer.created"]},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    sent = httpx.post(
        f"{live_server.url}/api/v4.0/integrations/events",
        json=events_body("served-1"),
        headers=headers,
    )
    assert sent.status_code == 200
    [delivery] = receiver.wait_for(1)
    signing.verify(created.json()["secret"], delivery.headers, delivery.body)
    assert delivery.json()["data"]["customerId"] == "served-1"


def test_sigterm_returns_within_about_the_timeout_while_receivers_trickle(
    receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Receivers that answer a byte at a time for ever: `kudos serve` still stops within
    about one webhook timeout, records the attempts it had started and gives back the rest."""
    monkeypatch.setenv("KUDOS_WEBHOOK_TIMEOUT_SECONDS", str(TIMEOUT))
    database = tmp_path / "kudos.db"
    live_server = start_server(f"sqlite:///{database}", tmp_path / "server.log")
    try:
        receiver.trickle("/slow")
        created = httpx.post(
            f"{live_server.url}/api/kudos/v1/webhooks",
            json={"url": receiver.url("/slow"), "topics": ["customer.created", "event.received"]},
            headers=live_server.headers(),
        )
        assert created.status_code == 201, created.text
        for n in range(4):
            sent = httpx.post(
                f"{live_server.url}/api/v4.0/integrations/events",
                json=events_body(f"slow-{n}"),
                headers=live_server.headers(),
            )
            assert sent.status_code == 200
        receiver.wait_for(1, "/slow")
        live_server.process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then raises the signal it caught again
        assert live_server.process.wait(timeout=TIMEOUT + 10) == -signal.SIGTERM
    finally:
        stop_server(live_server)
    assert "Traceback" not in live_server.log_path.read_text()
    with contextlib.closing(sqlite3.connect(database)) as conn:
        rows = conn.execute("SELECT state, attempts FROM webhook_messages").fetchall()
    assert len(rows) == 12 and {"delivered", "pending"} >= {state for state, _ in rows}
    assert all(attempts == (state == "delivered") for state, attempts in rows)
