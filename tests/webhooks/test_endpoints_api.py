"""Webhook endpoints through the management API: add, list, change, remove; errors."""

from __future__ import annotations

import httpx

from kudos.bootstrap import Runtime, run_in_transaction
from kudos.services import accounts
from tests.webhooks.conftest import HOOKS, add_endpoint


async def test_adding_an_endpoint_shows_its_secret_once(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    created = await add_endpoint(client, auth, "https://example.com/hook", "campaign.rewarded")
    assert str(created["secret"]).startswith("whsec_")
    assert created["active"] is True and created["topics"] == ["campaign.rewarded"]
    listed = (await client.get(HOOKS, headers=auth)).json()
    one = (await client.get(f"{HOOKS}/{created['id']}", headers=auth)).json()
    assert [row["id"] for row in listed] == [created["id"]]
    assert "secret" not in listed[0] and "secret" not in one
    assert str(created["secret"]) not in str(listed) + str(one)


async def test_the_secret_is_stored_encrypted(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    created = await add_endpoint(client, auth, "https://example.com/hook", "customer.created")
    stored = run_in_transaction(
        runtime.db, lambda tx: tx.one("SELECT secret_encrypted FROM webhook_endpoints")
    )
    assert stored is not None and str(created["secret"]) not in stored[0]
    assert runtime.context.keyring.decrypt(stored[0]) == created["secret"]


async def test_patch_changes_url_topics_and_active(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    created = await add_endpoint(client, auth, "https://example.com/a", "customer.created")
    changed = await client.patch(
        f"{HOOKS}/{created['id']}",
        json={"url": "https://example.com/b", "topics": ["tier.changed"], "active": False},
        headers=auth,
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["url"], body["topics"], body["active"]) == (
        "https://example.com/b",
        ["tier.changed"],
        False,
    )


async def test_delete_removes_the_endpoint(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    created = await add_endpoint(client, auth, "https://example.com/a", "customer.created")
    assert (await client.delete(f"{HOOKS}/{created['id']}", headers=auth)).status_code == 204
    gone = await client.get(f"{HOOKS}/{created['id']}", headers=auth)
    assert gone.status_code == 404 and gone.json()["code"] == 4004
    again = await client.delete(f"{HOOKS}/{created['id']}", headers=auth)
    assert again.status_code == 404


async def test_bad_input_gets_a_documented_error_and_changes_nothing(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    cases = [
        ({"url": "ftp://example.com", "topics": ["customer.created"]}, 422, 3003),
        ({"url": "not a url", "topics": ["customer.created"]}, 422, 3003),
        ({"url": "https://example.com", "topics": ["customer.deleted"]}, 422, 3003),
        ({"url": "https://example.com", "topics": []}, 422, 3003),
        ({"url": "https://example.com"}, 400, 3000),
        ({"topics": ["customer.created"]}, 400, 3000),
    ]
    for body, status, code in cases:
        response = await client.post(HOOKS, json=body, headers=auth)
        assert (response.status_code, response.json()["code"]) == (status, code), body
    assert (await client.get(HOOKS, headers=auth)).json() == []


async def test_a_bad_patch_changes_nothing(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    created = await add_endpoint(client, auth, "https://example.com/a", "customer.created")
    refused = await client.patch(
        f"{HOOKS}/{created['id']}",
        json={"url": "https://example.com/b", "topics": ["nope"]},
        headers=auth,
    )
    assert refused.status_code == 422 and refused.json()["code"] == 3003
    kept = (await client.get(f"{HOOKS}/{created['id']}", headers=auth)).json()
    assert kept["url"] == "https://example.com/a"


async def test_endpoints_need_both_keys_and_belong_to_one_account(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    created = await add_endpoint(client, auth, "https://example.com/a", "customer.created")
    only_api_key = {"apikey": auth["apikey"]}
    assert (await client.get(HOOKS, headers=only_api_key)).json()["code"] == 1001
    keyring = runtime.context.keyring
    other = run_in_transaction(runtime.db, lambda tx: accounts.create(tx, keyring, "other"))
    other_auth = {"apikey": other.api_key, "secretkey": other.secret_key}
    assert (await client.get(HOOKS, headers=other_auth)).json() == []
    foreign = await client.get(f"{HOOKS}/{created['id']}", headers=other_auth)
    assert foreign.status_code == 404
    deleted = await client.delete(f"{HOOKS}/{created['id']}", headers=other_auth)
    assert deleted.status_code == 404
    assert len((await client.get(HOOKS, headers=auth)).json()) == 1


def test_the_api_schema_knows_every_topic() -> None:
    from typing import get_args

    from kudos.api.schemas import Topic
    from kudos.webhooks.outbox import TOPICS

    assert get_args(Topic) == TOPICS
