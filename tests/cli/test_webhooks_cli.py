"""``kudos webhooks add|list|remove|redeliver`` against both stores."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from kudos.bootstrap import build_database, run_in_transaction
from kudos.cli import main
from kudos.config import Settings
from kudos.services import accounts
from kudos.services.security import Keyring
from kudos.storage import webhooks as webhook_rows
from kudos.webhooks.signing import SECRET_BYTES
from tests.conftest import SERVER_KEY, events_body

URL = "https://example.com/hooks/kudos"
WEBHOOKS = "/api/kudos/v1/webhooks"
Run = Callable[..., Result]


def invoke(database_url: str, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(
        main,
        [*args, "--db", database_url],
        env={"KUDOS_SERVER_KEY": SERVER_KEY, **(env or {})},
        catch_exceptions=False,
    )


@pytest.fixture
def run(database_url: str) -> Run:
    """``kudos …`` on a migrated store with an account "shop"."""

    def run(*args: str) -> Result:
        return invoke(database_url, *args)

    assert run("migrate").exit_code == 0
    assert run("accounts", "create", "shop").exit_code == 0
    return run


def add(run: Run, *topics: str) -> dict[str, Any]:
    args = [arg for topic in topics for arg in ("--topic", topic)]
    result = run("webhooks", "add", URL, *args, "--account", "shop", "--json")
    assert result.exit_code == 0, result.output
    created: dict[str, Any] = json.loads(result.output)
    return created


def stored_secret(database_url: str, endpoint_id: int) -> str:
    """The endpoint's signing secret as stored (encrypted under the server key)."""
    db = build_database(Settings(database_url=database_url))

    def read(tx: Any) -> str:
        row = webhook_rows.endpoint(tx, accounts.named(tx, "shop").id, endpoint_id)
        assert row is not None
        return row.secret_encrypted

    return Keyring(SERVER_KEY).decrypt(run_in_transaction(db, read))


def test_add_prints_the_signing_secret_it_stores(run: Run, database_url: str) -> None:
    result = run(
        "webhooks",
        "add",
        URL,
        "--topic",
        "customer.created",
        "--topic",
        "campaign.rewarded",
        "--account",
        "shop",
    )
    assert result.exit_code == 0, result.output
    secret = next(w for w in result.output.split() if w.startswith("whsec_"))
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == SECRET_BYTES
    endpoint_id = int(result.output.split()[1].rstrip(":"))
    assert stored_secret(database_url, endpoint_id) == secret
    assert "customer.created, campaign.rewarded" in result.output


def test_add_as_json(run: Run, database_url: str) -> None:
    created = add(run, "customer.created", "event.received")
    assert {"id", "url", "topics", "active", "secret"} <= set(created)
    assert (created["url"], created["topics"], created["active"]) == (
        URL,
        ["customer.created", "event.received"],
        True,
    )
    assert created["secret"].startswith("whsec_")
    assert stored_secret(database_url, created["id"]) == created["secret"]


def test_list_shows_the_endpoint_but_never_its_secret(run: Run) -> None:
    created = add(run, "tier.changed")
    listed = run("webhooks", "list", "--account", "shop")
    assert listed.exit_code == 0, listed.output
    assert str(created["id"]) in listed.output and URL in listed.output
    assert "[tier.changed]" in listed.output and "active" in listed.output
    rows = json.loads(run("webhooks", "list", "--account", "shop", "--json").output)
    assert [(r["id"], r["url"], r["topics"]) for r in rows] == [
        (created["id"], URL, ["tier.changed"])
    ]
    for output in (listed.output, json.dumps(rows)):
        assert created["secret"] not in output and "whsec_" not in output
    assert "secret" not in rows[0]


def test_an_unknown_topic_is_refused(run: Run) -> None:
    result = run("webhooks", "add", URL, "--topic", "order.shipped", "--account", "shop")
    assert result.exit_code == 2
    assert "Invalid value for '--topic'" in result.output and "order.shipped" in result.output
    assert json.loads(run("webhooks", "list", "--account", "shop", "--json").output) == []


def test_remove_then_list_is_empty(run: Run) -> None:
    created = add(run, "customer.created")
    removed = run("webhooks", "remove", str(created["id"]), "--account", "shop")
    assert removed.exit_code == 0, removed.output
    assert f"endpoint {created['id']} removed" in removed.output
    assert json.loads(run("webhooks", "list", "--account", "shop", "--json").output) == []
    assert run("webhooks", "list", "--account", "shop").output == ""


def test_removing_an_unknown_endpoint_fails(run: Run) -> None:
    created = add(run, "customer.created")
    result = run("webhooks", "remove", str(created["id"] + 1), "--account", "shop")
    assert result.exit_code == 1
    assert "Webhook endpoint not found." in result.output
    rows = json.loads(run("webhooks", "list", "--account", "shop", "--json").output)
    assert [r["id"] for r in rows] == [created["id"]]


def test_an_unknown_account_fails(run: Run) -> None:
    result = run("webhooks", "add", URL, "--topic", "customer.created", "--account", "nobody")
    assert result.exit_code == 1
    assert "No account named 'nobody'." in result.output


def test_redelivering_an_unknown_message_fails(run: Run) -> None:
    result = run("webhooks", "redeliver", "msg_000000000000000000000000", "--account", "shop")
    assert result.exit_code == 1
    assert "Webhook message not found." in result.output


def test_redelivering_dead_letters(run: Run) -> None:
    created = add(run, "customer.created")
    replayed = run(
        "webhooks", "redeliver", "--dead-letters", str(created["id"]), "--account", "shop"
    )
    assert replayed.exit_code == 0, replayed.output
    assert f"0 dead letter(s) of endpoint {created['id']} queued" in replayed.output
    unknown = run(
        "webhooks", "redeliver", "--dead-letters", str(created["id"] + 1), "--account", "shop"
    )
    assert unknown.exit_code == 1 and "Webhook endpoint not found." in unknown.output


@pytest.mark.parametrize(
    "args",
    [[], ["msg_000000000000000000000000", "--dead-letters", "1"]],
    ids=["neither", "both"],
)
def test_redeliver_takes_a_message_id_or_dead_letters(run: Run, args: list[str]) -> None:
    result = run("webhooks", "redeliver", *args, "--account", "shop")
    assert result.exit_code == 2
    assert "give a MESSAGE_ID or --dead-letters ENDPOINT_ID" in result.output


async def test_redeliver_queues_a_known_message(
    client: httpx.AsyncClient, auth: dict[str, str], database_url: str
) -> None:
    created = await client.post(
        WEBHOOKS, json={"url": URL, "topics": ["customer.created"]}, headers=auth
    )
    assert created.status_code == 201, created.text
    endpoint_id = created.json()["id"]
    sent = await client.post(
        "/api/v4.0/integrations/events",
        json=events_body("cust-1"),
        headers={"apikey": auth["apikey"]},
    )
    assert sent.status_code == 200, sent.text
    page = await client.get(f"{WEBHOOKS}/{endpoint_id}/messages", headers=auth)
    (message,) = page.json()["items"]

    queued = invoke(
        database_url, "webhooks", "redeliver", message["messageId"], "--account", "shop"
    )
    assert queued.exit_code == 0, queued.output
    assert queued.output == f"{message['messageId']} queued for delivery\n"

    paused = await client.patch(f"{WEBHOOKS}/{endpoint_id}", json={"active": False}, headers=auth)
    assert paused.status_code == 200, paused.text
    noted = invoke(database_url, "webhooks", "redeliver", message["messageId"], "--account", "shop")
    assert noted.exit_code == 0, noted.output
    assert "its endpoint is disabled: enable it first" in noted.output


@pytest.mark.parametrize(
    "url",
    [
        "https://user:secret@example.com/hook",  # credentials, which `list` would print
        "https://example.com:99999/hook",
        "https://example.com/ho\x00ok",
        "http://169.254.169.254/latest/meta-data/",
        "http://2852039166/",
        "http://[::ffff:169.254.169.254]/",
    ],
)
def test_add_refuses_what_the_api_refuses(run: Run, url: str) -> None:
    result = run("webhooks", "add", url, "--topic", "customer.created", "--account", "shop")
    assert result.exit_code == 1, result.output
    assert "Invalid value: 'url'" in result.output and "secret" not in result.output
    assert json.loads(run("webhooks", "list", "--account", "shop", "--json").output) == []


def test_add_keeps_to_the_endpoint_limit(database_url: str, run: Run) -> None:
    def add_one(n: int) -> Result:
        args = ("webhooks", "add", f"{URL}/{n}", "--topic", "customer.created")
        limit = {"KUDOS_WEBHOOK_MAX_ENDPOINTS": "2"}
        return invoke(database_url, *args, "--account", "shop", env=limit)

    assert [add_one(n).exit_code for n in range(2)] == [0, 0]
    third = add_one(2)
    assert third.exit_code == 1 and "at most 2 webhook endpoints" in third.output
    assert len(json.loads(run("webhooks", "list", "--account", "shop", "--json").output)) == 2


def test_add_refuses_private_targets_when_they_are_off(database_url: str, run: Run) -> None:
    args = ("webhooks", "add", "http://127.0.0.1:5432/", "--topic", "customer.created")
    off = {"KUDOS_WEBHOOK_ALLOW_PRIVATE": "false"}
    result = invoke(database_url, *args, "--account", "shop", env=off)
    assert result.exit_code == 1 and "does not deliver to" in result.output


def test_list_never_shows_credentials_of_an_endpoint_stored_before_they_were_refused(
    run: Run, database_url: str
) -> None:
    created = add(run, "customer.created")
    db = build_database(Settings(database_url=database_url))
    run_in_transaction(
        db,
        lambda tx: tx.execute(
            "UPDATE webhook_endpoints SET url = ? WHERE id = ?",
            ("https://user:hunter2@example.com/hook", created["id"]),
        ),
    )
    listed = run("webhooks", "list", "--account", "shop")
    as_json = run("webhooks", "list", "--account", "shop", "--json")
    for output in (listed.output, as_json.output):
        assert "hunter2" not in output and "user" not in output
        assert "https://***@example.com/hook" in output
