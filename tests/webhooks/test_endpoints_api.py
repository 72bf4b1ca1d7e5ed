"""Webhook endpoints through the management API: add, list, change, remove; errors."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from kudos import errors
from kudos.bootstrap import Runtime, run_in_transaction
from kudos.config import Settings
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


# --- strict input (issue 6) --------------------------------------------------------------------

BAD_URLS = [
    "https://example.com:99999/hook",  # no such port
    "https://example.com:0/hook",
    "https://example.com:abc/hook",
    "https://user:secret@example.com/hook",  # credentials in the URL
    "https://token@example.com/hook",
    "https://@example.com/hook",
    "https://example.com/ho\x00ok",  # NUL and other control characters
    "https://example.com/hook\n",
    "https://example.com/ho ok",
    " https://example.com/hook",
    "https://exa_mple..com/hook",
    "https://[zz]/hook",
    "http:///hook",
    "ftp://example.com/hook",
    "https://example.com/" + "a" * 2000,
]


async def test_a_url_the_service_refuses_is_3003_on_post_and_on_patch(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    kept = await add_endpoint(client, auth, "https://example.com/a", "customer.created")
    for url in BAD_URLS:
        body = {"url": url, "topics": ["customer.created"]}
        posted = await client.post(HOOKS, json=body, headers=auth)
        assert (posted.status_code, posted.json()["code"]) == (422, 3003), url
        patched = await client.patch(f"{HOOKS}/{kept['id']}", json={"url": url}, headers=auth)
        assert (patched.status_code, patched.json()["code"]) == (422, 3003), url
    listed = (await client.get(HOOKS, headers=auth)).json()
    assert [(row["id"], row["url"]) for row in listed] == [(kept["id"], "https://example.com/a")]


async def test_unusual_but_valid_urls_are_accepted(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    for url in (
        "https://[2606:4700::1111]:8443/hook",
        "https://bücher.example/hook?x=1",
        "http://hooks.example.com:8080/a/b?c=d#e",
    ):
        created = await add_endpoint(client, auth, url, "customer.created")
        assert created["url"] == url


async def test_patch_refuses_null_fields_and_non_boolean_active(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    created = await add_endpoint(client, auth, "https://example.com/a", "customer.created")
    cases = [
        ({"active": "yes"}, 3003),
        ({"active": 1}, 3003),
        ({"active": "true"}, 3003),
        ({"active": None}, 3001),
        ({"url": None}, 3001),
        ({"topics": None}, 3001),
        ({"topics": "customer.created"}, 3003),
        ({"url": 5}, 3003),
    ]
    for body, code in cases:
        response = await client.patch(f"{HOOKS}/{created['id']}", json=body, headers=auth)
        assert (response.status_code, response.json()["code"]) == (422, code), body
    kept = (await client.get(f"{HOOKS}/{created['id']}", headers=auth)).json()
    assert (kept["url"], kept["topics"], kept["active"]) == (
        "https://example.com/a",
        ["customer.created"],
        True,
    )


# --- targets (issue 9) -------------------------------------------------------------------------

REFUSED_TARGETS = [
    "http://169.254.169.254/latest/meta-data/",
    "http://2852039166/",
    "http://0xA9FEA9FE/",
    "http://0251.0376.0251.0376/",
    "http://[::ffff:169.254.169.254]/",
    "http://[fe80::1]/",
    "http://0.0.0.0:8000/",
    "http://[::]/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
]


async def test_link_local_and_unspecified_targets_are_refused_on_post_and_patch(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    kept = await add_endpoint(client, auth, "https://example.com/a", "customer.created")
    for url in REFUSED_TARGETS:
        body = {"url": url, "topics": ["customer.created"]}
        posted = await client.post(HOOKS, json=body, headers=auth)
        assert (posted.status_code, posted.json()["code"]) == (422, 3003), url
        assert "does not deliver to" in posted.json()["message"]
        patched = await client.patch(f"{HOOKS}/{kept['id']}", json={"url": url}, headers=auth)
        assert (patched.status_code, patched.json()["code"]) == (422, 3003), url
    assert len((await client.get(HOOKS, headers=auth)).json()) == 1


async def test_private_targets_are_allowed_by_default(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    for url in ("http://127.0.0.1:9000/hook", "http://10.0.0.5/hook", "http://localhost/hook"):
        await add_endpoint(client, auth, url, "customer.created")


def fake_dns(answers: dict[str, list[str]]) -> Callable[..., list[tuple[Any, ...]]]:
    """A ``getaddrinfo`` that answers these names and asks the real one for the rest."""
    real = socket.getaddrinfo

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        if host not in answers:
            return real(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 443)) for a in answers[host]]

    return getaddrinfo


async def test_a_name_that_resolves_to_a_refused_address_is_refused(
    client: httpx.AsyncClient, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = {
        "metadata.example.com": ["169.254.169.254"],
        "mixed.example.com": ["93.184.216.34", "169.254.169.254"],
        "fine.example.com": ["93.184.216.34"],
    }
    monkeypatch.setattr(socket, "getaddrinfo", fake_dns(answers))
    kept = await add_endpoint(client, auth, "https://fine.example.com/a", "customer.created")
    for url in ("https://metadata.example.com/", "https://mixed.example.com/"):
        body = {"url": url, "topics": ["customer.created"]}
        posted = await client.post(HOOKS, json=body, headers=auth)
        assert (posted.status_code, posted.json()["code"]) == (422, 3003), url
        patched = await client.patch(f"{HOOKS}/{kept['id']}", json={"url": url}, headers=auth)
        assert (patched.status_code, patched.json()["code"]) == (422, 3003), url
    assert [row["url"] for row in (await client.get(HOOKS, headers=auth)).json()] == [
        "https://fine.example.com/a"
    ]


async def test_strangers_cannot_make_the_server_resolve_names(
    client: httpx.AsyncClient, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []

    def getaddrinfo(host: str, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        asked.append(host)
        raise socket.gaierror("unknown")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    body = {"url": "https://probe.example.com/", "topics": ["customer.created"]}
    wrong = {"apikey": auth["apikey"], "secretkey": "nope"}
    refused = await client.post(HOOKS, json=body, headers=wrong)
    assert refused.status_code == 401 and asked == []


# --- endpoints per account (issue 9) -----------------------------------------------------------


async def test_an_account_has_at_most_the_configured_number_of_endpoints(
    client: httpx.AsyncClient, auth: dict[str, str], settings: Settings
) -> None:
    most = settings.webhook_max_endpoints
    answers = await asyncio.gather(
        *(
            client.post(
                HOOKS,
                json={"url": f"https://example.com/{n}", "topics": ["event.received"]},
                headers=auth,
            )
            for n in range(most + 3)
        )
    )
    assert sorted(a.status_code for a in answers) == [201] * most + [422] * 3
    refused = next(a.json() for a in answers if a.status_code == 422)
    assert refused["code"] == 3003 and f"at most {most} webhook endpoints" in refused["message"]
    assert len((await client.get(HOOKS, headers=auth)).json()) == most


async def test_two_writers_cannot_both_pass_the_endpoint_limit(
    runtime: Runtime, settings: Settings, auth: dict[str, str]
) -> None:
    """Two processes' writers (on PostgreSQL) register at once: the limit still holds."""
    from kudos.domain.model import Credentials
    from kudos.services import webhooks
    from kudos.storage.writer import NoHooks, build_writer

    rules = webhooks.EndpointRules(max_endpoints=3, allow_private=True)
    credentials = Credentials(auth["apikey"], auth["secretkey"], secret_required=True)
    keyring = runtime.context.keyring
    writers = [build_writer(runtime.db, NoHooks(), max_batch=8, max_queue=64) for _ in range(2)]
    for writer in writers:
        writer.start()

    def add(n: int) -> webhooks.ManageWebhooks:
        return webhooks.ManageWebhooks(
            keyring,
            credentials,
            lambda tx, account: webhooks.create_endpoint(
                tx,
                account,
                keyring,
                url=f"https://example.com/{n}",
                topics=["tier.changed"],
                rules=rules,
            ),
        )

    try:
        answers = await asyncio.gather(
            *(writers[n % 2].submit(add(n)) for n in range(8)), return_exceptions=True
        )
    finally:
        for writer in writers:
            await writer.stop()
    created = [a for a in answers if isinstance(a, dict)]
    assert len(created) == 3
    assert all(isinstance(a, errors.InvalidValue) for a in answers if not isinstance(a, dict))
    count = run_in_transaction(
        runtime.db, lambda tx: tx.one("SELECT count(*) FROM webhook_endpoints")
    )
    assert count is not None and count[0] == 3
