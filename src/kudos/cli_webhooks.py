"""``kudos webhooks …`` (endpoints, redelivery) and ``kudos worker`` (delivery processes)."""

from __future__ import annotations

import asyncio
import json
import logging

import click

from kudos import errors
from kudos.bootstrap import build_database, build_keyring, run_worker
from kudos.cli_support import db_option, in_transaction, settings_from
from kudos.services import accounts, webhooks
from kudos.webhooks.outbox import TOPICS

account_option = click.option("--account", "account_name", required=True, help="The account.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group("webhooks")
def webhooks_group() -> None:
    """Add, list and remove webhook endpoints; redeliver past messages."""


@webhooks_group.command("add")
@click.argument("url")
@click.option(
    "--topic",
    "topics",
    multiple=True,
    required=True,
    type=click.Choice(TOPICS),
    help="A topic to receive (repeat for several).",
)
@account_option
@db_option
@json_option
def add(
    url: str, topics: tuple[str, ...], account_name: str, database_url: str | None, as_json: bool
) -> None:
    """Register an endpoint and print its signing secret (shown only now)."""
    settings = settings_from(database_url)
    keyring = build_keyring(settings)
    rules = webhooks.EndpointRules(
        max_endpoints=settings.webhook_max_endpoints,
        allow_private=settings.webhook_allow_private,
    )
    try:  # the API's checks; the lookup before the transaction, which must not wait on DNS
        webhooks.check_url(url, allow_private=rules.allow_private)
        webhooks.check_resolved(url, allow_private=rules.allow_private)
    except errors.KudosError as exc:
        raise click.ClickException(exc.message) from None
    created = in_transaction(
        settings,
        lambda tx: webhooks.create_endpoint(
            tx, accounts.named(tx, account_name), keyring, url=url, topics=list(topics), rules=rules
        ),
    )
    if as_json:
        click.echo(json.dumps(created))
        return
    click.echo(f"endpoint {created['id']}: {created['url']} ({', '.join(created['topics'])})")
    click.echo(f"signing secret: {created['secret']}")
    click.echo("The secret is shown only now: store it where your receiver can read it.")


@webhooks_group.command("list")
@account_option
@db_option
@json_option
def list_endpoints(account_name: str, database_url: str | None, as_json: bool) -> None:
    """List the account's endpoints (never their secrets)."""
    rows = in_transaction(
        settings_from(database_url),
        lambda tx: webhooks.list_endpoints(tx, accounts.named(tx, account_name)),
    )
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        state = "active" if row["active"] else f"disabled: {row['disabledReason'] or 'by hand'}"
        click.echo(f"{row['id']:>5}  {row['url']}  [{', '.join(row['topics'])}]  {state}")


@webhooks_group.command("remove")
@click.argument("endpoint_id", type=int)
@account_option
@db_option
def remove(endpoint_id: int, account_name: str, database_url: str | None) -> None:
    """Remove an endpoint with its undelivered messages and delivery log."""
    in_transaction(
        settings_from(database_url),
        lambda tx: webhooks.delete_endpoint(tx, accounts.named(tx, account_name), endpoint_id),
    )
    click.echo(f"endpoint {endpoint_id} removed")


@webhooks_group.command("redeliver")
@click.argument("message_id", required=False)
@click.option(
    "--dead-letters",
    "endpoint_id",
    type=int,
    default=None,
    help="Instead of one message: every dead letter of this endpoint.",
)
@account_option
@db_option
def redeliver(
    message_id: str | None, endpoint_id: int | None, account_name: str, database_url: str | None
) -> None:
    """Send a past message (by its webhook-id) again, or every dead letter of an endpoint."""
    if (message_id is None) == (endpoint_id is None):
        raise click.UsageError("give a MESSAGE_ID or --dead-letters ENDPOINT_ID")
    settings = settings_from(database_url)
    if message_id is not None:
        done = in_transaction(
            settings,
            lambda tx: webhooks.redeliver(tx, accounts.named(tx, account_name), message_id),
        )
        note = "" if done["endpointActive"] else " (its endpoint is disabled: enable it first)"
        click.echo(f"{message_id} queued for delivery{note}")
        return
    assert endpoint_id is not None
    replayed = in_transaction(
        settings,
        lambda tx: webhooks.redeliver_dead(tx, accounts.named(tx, account_name), endpoint_id),
    )
    click.echo(f"{replayed['requeued']} dead letter(s) of endpoint {endpoint_id} queued")


@click.command("worker")
@db_option
def worker(database_url: str | None) -> None:
    """Deliver webhooks (PostgreSQL; run several for more throughput). Stops on SIGTERM."""
    settings = settings_from(database_url)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    db = build_database(settings)
    if db.dialect == "sqlite":
        raise click.UsageError(
            "on SQLite, `kudos serve` delivers webhooks itself; `kudos worker` is for PostgreSQL"
        )
    if pending := db.pending_migrations():
        raise click.ClickException(f"the database needs migrations {pending}: run `kudos migrate`")
    asyncio.run(run_worker(settings))
