"""On SQLite, `kudos serve` delivers webhooks itself: a real server, a real receiver."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from kudos.webhooks import signing
from tests.conftest import LiveServer, events_body, start_server, stop_server
from tests.webhooks.conftest import Receiver

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
