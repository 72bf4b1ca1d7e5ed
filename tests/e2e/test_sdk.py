"""The official Gameball Python SDK (``gb-alpha`` 3.0.0) against a live kudos server.

The SDK speaks the legacy v3 route (``POST {api_base}integrations/event`` with
``playerUniqueId``). It returns the decoded body on 200 and, for a JSON error body with a
code and a message, *returns* (does not raise) a ``GameballException``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gameball
import gameball.constants
import gameball.http_client
import httpx
import pytest
import requests
from gameball.exceptions.gameball_exception import GameballException

from tests.conftest import LiveServer

SUCCESS = {"success": True, "message": "Events processed"}


@pytest.fixture
def sdk(live_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    """The SDK's module globals pointed at the live server; restored afterwards."""
    session = requests.Session()
    monkeypatch.setattr(gameball, "api_key", live_server.api_key)
    monkeypatch.setattr(gameball, "transaction_key", live_server.secret_key)
    monkeypatch.setattr(gameball.constants, "api_base", f"{live_server.url}/api/v3.0/")
    # Our own HTTP client, so its session (and its sockets) are closed after the test.
    client = gameball.http_client.HTTPClient(timeout=10, session=session)
    monkeypatch.setattr(gameball, "default_http_client", client)
    try:
        yield live_server
    finally:
        session.close()


def stored_events(server: LiveServer, customer_id: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{server.url}/api/v4.0/integrations/customers/{customer_id}/events",
        params={"limit": 1000},
        headers=server.headers(),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json()["hasMore"] is False
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def test_send_event_through_the_sdk_stores_the_events(sdk: LiveServer) -> None:
    event = gameball.eventObject("sdk-player-1", events={})
    event.add_event("place_order", {"order_id": "ORD-1", "amount": 150.75, "currency": "USD"})
    event.add_event("review", {"rating": 5, "tags": ["fast", "cheap"], "extra": {"a": None}})

    assert gameball.send_event(event) == SUCCESS

    events = stored_events(sdk, "sdk-player-1")
    assert {e["name"]: e["metadata"] for e in events} == {
        "place_order": {"order_id": "ORD-1", "amount": 150.75, "currency": "USD"},
        "review": {"rating": 5, "tags": ["fast", "cheap"], "extra": {"a": None}},
    }
    assert {e["customerId"] for e in events} == {"sdk-player-1"}


def test_repeated_sdk_calls_append_to_one_customer(sdk: LiveServer) -> None:
    for n in range(3):
        event = gameball.eventObject("sdk-player-2", events={})
        event.add_event("visit", {"n": n})
        assert gameball.send_event(event) == SUCCESS

    events = stored_events(sdk, "sdk-player-2")
    assert [e["metadata"]["n"] for e in events] == [2, 1, 0]  # newest first
    profile = httpx.get(
        f"{sdk.url}/api/v4.0/integrations/customers/sdk-player-2", headers=sdk.headers(), timeout=10
    )
    assert profile.status_code == 200 and profile.json()["linkedCustomerIds"] == ["sdk-player-2"]


@pytest.mark.parametrize("wrong", ["api_key", "transaction_key"])
def test_wrong_keys_come_back_as_a_gameball_exception_with_code_1000(
    sdk: LiveServer, monkeypatch: pytest.MonkeyPatch, wrong: str
) -> None:
    monkeypatch.setattr(gameball, wrong, "not-a-real-key")
    event = gameball.eventObject("sdk-player-3", events={})
    event.add_event("visit", {})

    result = gameball.send_event(event)

    assert isinstance(result, GameballException)
    assert "(GameballException with error code 1000)" in str(result)
    # gb-alpha 3.0.0 passes its arguments positionally into the wrong slots: the decoded
    # error body lands in ``headers`` and the HTTP status in ``json_body``.
    assert result.headers["code"] == 1000
    assert result.json_body == 401
    assert result.http_body is not None and b'"code":1000' in result.http_body.replace(b" ", b"")
    missing = httpx.get(
        f"{sdk.url}/api/v4.0/integrations/customers/sdk-player-3", headers=sdk.headers(), timeout=10
    )
    assert missing.status_code == 404  # nothing was written


def test_the_sdk_sends_nothing_without_a_transaction_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """What docs/events.md warns about: gb-alpha 3.0.0 refuses to send unless
    ``gameball.transaction_key`` is set too (and its message then blames the API key)."""
    from gameball.exceptions.gameball_exception import AuthenticationError

    monkeypatch.setattr(gameball, "api_key", "some-api-key")
    monkeypatch.setattr(gameball, "transaction_key", None)
    event = gameball.eventObject("sdk-player-4", events={})
    event.add_event("visit", {})
    with pytest.raises(AuthenticationError, match="No API key provided"):
        gameball.send_event(event)


def test_the_sdk_crashes_on_email_or_mobile(monkeypatch: pytest.MonkeyPatch) -> None:
    """Also in docs/events.md: the SDK's ``email=``/``mobile=`` arguments fail inside the SDK
    before anything is sent, so channel merging needs the v4 route."""
    monkeypatch.setattr(gameball, "api_key", "some-api-key")
    monkeypatch.setattr(gameball, "transaction_key", "some-secret-key")
    event = gameball.eventObject("sdk-player-5", events={}, email="jane@example.com")
    event.add_event("visit", {})
    with pytest.raises(AttributeError, match="email"):
        gameball.send_event(event)
