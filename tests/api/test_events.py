"""Send Events over HTTP: success, every error code, legacy routes, idempotency."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from kudos.bootstrap import Runtime
from kudos.services.security import KeyPair
from tests.conftest import configure_account, events_body

EVENTS = "/api/v4.0/integrations/events"


async def history(client: httpx.AsyncClient, auth: dict[str, str], customer_id: str) -> list[Any]:
    response = await client.get(
        f"/api/v4.0/integrations/customers/{customer_id}/events",
        params={"limit": 1000},
        headers=auth,
    )
    if response.status_code == 404:
        return []
    assert response.status_code == 200, response.text
    events: list[Any] = response.json()["events"]
    return events


async def test_send_events_stores_each_event_and_answers_after_commit(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await client.post(
        EVENTS, json=events_body("c-1"), headers={"apikey": auth["apikey"]}
    )
    assert response.status_code == 200
    assert response.json() == {"success": True, "message": "Events processed"}
    stored = await history(client, auth, "c-1")
    assert {e["name"] for e in stored} == {"write_review", "place_order"}
    order = next(e for e in stored if e["name"] == "place_order")
    assert order["metadata"] == {"order_id": "ORD12345", "order_amount": 150.75, "currency": "USD"}
    assert order["customerId"] == "c-1"


@pytest.mark.parametrize("path", ["/api/v4/integrations/events", "/api/v4.1/integrations/events"])
async def test_aliases_accept_events(
    client: httpx.AsyncClient, auth: dict[str, str], path: str
) -> None:
    response = await client.post(path, json=events_body("c-alias"), headers=auth)
    assert response.status_code == 200
    assert len(await history(client, auth, "c-alias")) == 2


async def test_null_and_empty_metadata_are_stored_as_empty_objects(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    body = {"customerId": "c-2", "events": {"a": None, "b": {}}}
    assert (await client.post(EVENTS, json=body, headers=auth)).status_code == 200
    assert [e["metadata"] for e in await history(client, auth, "c-2")] == [{}, {}]


async def test_metadata_with_characters_that_bulk_writes_escape_reads_back_as_sent(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """Events are written in bulk (PostgreSQL: COPY, whose text format escapes tabs, newlines
    and backslashes): what comes back is what was sent."""
    metadata = {
        "note": 'tab\there, newline\nthere, back\\slash, quote " and \\N',
        "name": "Zoë 李 🎉",
        "path": "C:\\temp\\new",
        "list": ["a\tb", "\\."],
    }
    body = {"customerId": "c-esc|1", "events": {"odd\\event": metadata}}
    assert (await client.post(EVENTS, json=body, headers=auth)).status_code == 200
    (stored,) = await history(client, auth, "c-esc|1")
    assert (stored["name"], stored["metadata"]) == ("odd\\event", metadata)


def _code(response: httpx.Response) -> int:
    body = response.json()
    assert set(body) == {"code", "type", "message", "requestId"}, body
    code: int = body["code"]
    return code


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"events": {"a": {}}}, 400, 3000),
        ({"customerId": "x"}, 400, 3000),
        ({"customerId": None, "events": {"a": {}}}, 422, 3001),
        ({"customerId": "x", "events": None}, 422, 3001),
        ({"customerId": 5, "events": {"a": {}}}, 422, 3003),
        ({"customerId": "", "events": {"a": {}}}, 422, 3003),
        ({"customerId": "x" * 101, "events": {"a": {}}}, 422, 3003),
        ({"customerId": "x", "events": {}}, 422, 3003),
        ({"customerId": "x", "events": []}, 422, 3003),
        ({"customerId": "x", "events": {"a": 5}}, 422, 3003),
        ({"customerId": "x", "events": {"": {}}}, 422, 3003),
        ({"customerId": "x", "events": {"a" * 101: {}}}, 422, 3003),
        ({"customerId": "x", "events": {"a": {"k": "nul\x00"}}}, 422, 3003),
        ({"customerId": "x", "email": 7, "events": {"a": {}}}, 422, 3003),
        ([1, 2], 400, 3016),
    ],
)
async def test_bad_bodies_get_coded_errors_and_store_nothing(
    client: httpx.AsyncClient, auth: dict[str, str], body: Any, status: int, code: int
) -> None:
    response = await client.post(EVENTS, json=body, headers=auth)
    assert response.status_code == status, response.text
    assert _code(response) == code
    assert await history(client, auth, "x") == []


async def test_metadata_nested_too_deep_is_refused(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    deep: dict[str, Any] = {}
    cursor = deep
    for _ in range(12):
        cursor["k"] = {}
        cursor = cursor["k"]
    response = await client.post(
        EVENTS, json={"customerId": "x", "events": {"a": deep}}, headers=auth
    )
    assert (response.status_code, _code(response)) == (422, 3003)


@pytest.mark.parametrize(
    "raw",
    [b'{"customerId": ', b'{"customerId": "a\xed\xa0\x80", "events": {"a": {}}}', b"\x00"],
    ids=["truncated", "not-utf8", "nul-byte"],
)
async def test_malformed_json_is_3016(
    client: httpx.AsyncClient, auth: dict[str, str], raw: bytes
) -> None:
    response = await client.post(
        EVENTS, content=raw, headers={**auth, "content-type": "application/json"}
    )
    assert (response.status_code, _code(response)) == (400, 3016)


@pytest.mark.parametrize(
    ("escape", "status", "code"),
    [("\\u0000", 422, 3003), ("\\ud800", 400, 3016)],  # a lone surrogate is not valid JSON text
)
async def test_escaped_nul_or_lone_surrogate_in_metadata_is_refused(
    client: httpx.AsyncClient, auth: dict[str, str], escape: str, status: int, code: int
) -> None:
    raw = ('{"customerId": "x", "events": {"a": {"k": "v' + escape + '"}}}').encode()
    response = await client.post(
        EVENTS, content=raw, headers={**auth, "content-type": "application/json"}
    )
    assert (response.status_code, _code(response)) == (status, code)


async def test_non_json_content_type_is_415(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await client.post(
        EVENTS, content=b"customerId=x", headers={**auth, "content-type": "text/plain"}
    )
    assert (response.status_code, _code(response)) == (415, 3013)


async def test_body_over_one_mebibyte_is_413(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    big = events_body("big", events={"a": {"blob": "x" * (1024 * 1024)}})
    response = await client.post(EVENTS, json=big, headers=auth)
    assert (response.status_code, _code(response)) == (413, 3014)
    assert await history(client, auth, "big") == []


@pytest.mark.parametrize("headers", [{}, {"apikey": "not-a-key"}])
async def test_missing_or_unknown_api_key_is_401_1000(
    client: httpx.AsyncClient, auth: dict[str, str], headers: dict[str, str]
) -> None:
    response = await client.post(EVENTS, json=events_body("nobody"), headers=headers)
    assert (response.status_code, _code(response)) == (401, 1000)
    assert await history(client, auth, "nobody") == []


async def test_wrong_secret_key_is_refused(client: httpx.AsyncClient, keys: KeyPair) -> None:
    response = await client.post(
        EVENTS, json=events_body(), headers={"apikey": keys.api_key, "secretkey": "wrong"}
    )
    assert (response.status_code, _code(response)) == (401, 1000)


async def test_v41_requires_the_secret_key(client: httpx.AsyncClient, keys: KeyPair) -> None:
    response = await client.post(
        "/api/v4.1/integrations/events", json=events_body(), headers={"apikey": keys.api_key}
    )
    assert (response.status_code, _code(response)) == (401, 1001)


async def test_high_security_accounts_require_the_secret_key_on_v40(
    client: httpx.AsyncClient, runtime: Runtime, keys: KeyPair
) -> None:
    configure_account(runtime, high_security=True)
    without = await client.post(EVENTS, json=events_body(), headers={"apikey": keys.api_key})
    assert (without.status_code, _code(without)) == (401, 1001)
    with_secret = await client.post(
        EVENTS, json=events_body(), headers={"apikey": keys.api_key, "secretkey": keys.secret_key}
    )
    assert with_secret.status_code == 200


async def test_rate_limit_answers_429_with_retry_after(
    client: httpx.AsyncClient, runtime: Runtime, auth: dict[str, str]
) -> None:
    configure_account(runtime, rate_limit="3")
    runtime.context.clock = lambda: 1000.5  # one fixed second: the window cannot roll over
    statuses = [
        (await client.post(EVENTS, json=events_body("rl"), headers=auth)).status_code
        for _ in range(5)
    ]
    assert statuses == [200, 200, 200, 429, 429]
    limited = await client.post(EVENTS, json=events_body("rl"), headers=auth)
    assert limited.headers["retry-after"] == "1"
    assert _code(limited) == 2003
    assert len(await history(client, auth, "rl")) == 6  # three accepted requests, two events each


async def test_get_is_405_on_the_events_route(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await client.get(EVENTS, headers=auth)
    assert (response.status_code, _code(response)) == (405, 4005)
    assert response.headers["allow"] == "POST"


class TestIdempotencyKey:
    async def test_a_repeat_returns_the_first_answer_and_stores_nothing(
        self, client: httpx.AsyncClient, auth: dict[str, str]
    ) -> None:
        headers = {**auth, "Idempotency-Key": "order-1"}
        first = await client.post(EVENTS, json=events_body("idem"), headers=headers)
        second = await client.post(EVENTS, json=events_body("idem"), headers=headers)
        assert first.status_code == second.status_code == 200
        assert first.json() == second.json()
        assert len(await history(client, auth, "idem")) == 2

    async def test_the_same_key_with_another_body_is_refused(
        self, client: httpx.AsyncClient, auth: dict[str, str]
    ) -> None:
        headers = {**auth, "Idempotency-Key": "order-2"}
        assert (
            await client.post(EVENTS, json=events_body("idem2"), headers=headers)
        ).status_code == 200
        other = await client.post(EVENTS, json=events_body("idem2", email="a@b.c"), headers=headers)
        assert (other.status_code, _code(other)) == (422, 2002)
        assert len(await history(client, auth, "idem2")) == 2

    async def test_keys_belong_to_one_account(
        self, client: httpx.AsyncClient, runtime: Runtime, auth: dict[str, str]
    ) -> None:
        from kudos.bootstrap import run_in_transaction
        from kudos.services import accounts

        keyring = runtime.context.keyring
        other = run_in_transaction(runtime.db, lambda tx: accounts.create(tx, keyring, "other"))
        body = events_body("shared")
        key = {"Idempotency-Key": "k"}
        assert (await client.post(EVENTS, json=body, headers={**auth, **key})).status_code == 200
        response = await client.post(EVENTS, json=body, headers={"apikey": other.api_key, **key})
        assert response.status_code == 200
        other_auth = {"apikey": other.api_key, "secretkey": other.secret_key}
        assert len(await history(client, other_auth, "shared")) == 2


class TestLegacyRoutes:
    async def test_v3_takes_player_unique_id_and_case_insensitive_headers(
        self, client: httpx.AsyncClient, keys: KeyPair, auth: dict[str, str]
    ) -> None:
        response = await client.post(
            "/api/v3.0/integrations/event",
            json={"playerUniqueId": "p-1", "events": {"login": {"source": "web"}}},
            headers={"APIKey": keys.api_key, "secretKey": keys.secret_key},
        )
        assert response.status_code == 200
        assert [e["name"] for e in await history(client, auth, "p-1")] == ["login"]

    async def test_v2_player_attributes_update_the_profile(
        self, client: httpx.AsyncClient, keys: KeyPair, auth: dict[str, str]
    ) -> None:
        body = {
            "playerUniqueId": "p-2",
            "events": {"login": {}},
            "playerAttributes": {"displayName": "Jane", "custom": {"vip": True}},
        }
        response = await client.post(
            "/api/v2.0/integrations/event", json=body, headers={"APIKey": keys.api_key}
        )
        assert response.status_code == 200
        profile = (await client.get("/api/v4.0/integrations/customers/p-2", headers=auth)).json()
        assert profile["customerAttributes"]["displayName"] == "Jane"
        assert profile["customerAttributes"]["custom"] == {"vip": True}

    async def test_legacy_errors_use_code_and_message(
        self, client: httpx.AsyncClient, keys: KeyPair
    ) -> None:
        response = await client.post(
            "/api/v3.0/integrations/event",
            json={"events": {"a": {}}},
            headers={"APIKey": keys.api_key},
        )
        assert response.status_code == 400
        assert response.json() == {
            "code": 4,
            "message": "Missing arguments: 'playerUniqueId' is required.",
        }


class TestIdempotencyExpiry:
    @staticmethod
    def age_key(runtime: Runtime, key: str, created_at: str) -> None:
        from kudos.bootstrap import run_in_transaction

        run_in_transaction(
            runtime.db,
            lambda tx: tx.execute(
                "UPDATE idempotency_keys SET created_at = ? WHERE key = ?", (created_at, key)
            ),
        )

    async def test_a_key_older_than_24_hours_starts_over(
        self, client: httpx.AsyncClient, runtime: Runtime, auth: dict[str, str]
    ) -> None:
        headers = {**auth, "Idempotency-Key": "old"}
        assert (
            await client.post(EVENTS, json=events_body("exp"), headers=headers)
        ).status_code == 200
        self.age_key(runtime, "old", "2000-01-01T00:00:00.000000Z")
        again = await client.post(EVENTS, json=events_body("exp", email="x@y.z"), headers=headers)
        assert again.status_code == 200
        assert len(await history(client, auth, "exp")) == 4

    async def test_housekeeping_purges_only_expired_keys(
        self, client: httpx.AsyncClient, runtime: Runtime, auth: dict[str, str]
    ) -> None:
        from kudos.services.maintenance import purge_expired_idempotency_keys

        for key in ("fresh", "stale"):
            body = events_body(f"purge-{key}")
            await client.post(EVENTS, json=body, headers={**auth, "Idempotency-Key": key})
        self.age_key(runtime, "stale", "2000-01-01T00:00:00.000000Z")
        assert await runtime.writer.submit(purge_expired_idempotency_keys()) == 1
        replay = await client.post(
            EVENTS,
            json=events_body("purge-fresh", email="changed@x.io"),
            headers={**auth, "Idempotency-Key": "fresh"},
        )
        assert replay.status_code == 422  # the fresh key is still remembered
