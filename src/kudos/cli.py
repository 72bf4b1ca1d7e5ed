"""The ``kudos`` command: serve, migrate, accounts, program (webhooks and worker:
``cli_webhooks``). Thin: it parses, calls services, prints."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from kudos import cli_analytics, cli_webhooks, errors
from kudos.bootstrap import build_database, build_keyring, run_in_transaction
from kudos.cli_support import db_option, in_transaction, settings_from
from kudos.rules.schema import load_program
from kudos.services import accounts, program
from kudos.services.security import KeyPair


def _print_keys(name: str, pair: KeyPair, *, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"name": name, "apiKey": pair.api_key, "secretKey": pair.secret_key}))
        return
    click.echo(f"account:    {name}")
    click.echo(f"api key:    {pair.api_key}")
    click.echo(f"secret key: {pair.secret_key}")
    click.echo("The secret key is shown only now: store it safely.")


@click.group()
@click.version_option(package_name="kudos")
def main() -> None:
    """kudos: a self-hostable events and rewards engine that speaks the Gameball API."""


@main.command()
@click.option("--host", default=None, help="Interface to bind (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 8000).")
@db_option
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="API processes (PostgreSQL only; SQLite has one writer process).",
)
@click.option("--access-log/--no-access-log", default=False, help="Log every request.")
def serve(
    host: str | None,
    port: int | None,
    database_url: str | None,
    workers: int | None,
    access_log: bool,
) -> None:
    """Start the API server (SQLite migrates itself; PostgreSQL needs `kudos migrate`)."""
    import uvicorn

    settings = settings_from(database_url, host=host, port=port, workers=workers)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    db = build_database(settings)
    if db.dialect == "sqlite" and settings.workers > 1:
        raise click.UsageError("--workers > 1 needs PostgreSQL: SQLite has a single writer.")
    if db.dialect == "sqlite":
        db.migrate()
    elif pending := db.pending_migrations():
        raise click.ClickException(
            f"the database needs migrations {pending}: run `kudos migrate --db …` first"
        )
    keyring = build_keyring(settings)
    created = run_in_transaction(db, lambda tx: accounts.ensure_default(tx, keyring))
    if created is not None:
        click.echo("Created the default account on first start:")
        _print_keys(accounts.DEFAULT_ACCOUNT, created, as_json=False)
    # Worker processes rebuild the settings from the environment.
    os.environ["KUDOS_DATABASE_URL"] = settings.database_url
    os.environ["KUDOS_SERVER_KEY"] = settings.resolved_server_key()
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        # httptools with kudos' header and read-time limits; by import path, so that
        # --workers processes load it too.
        "http": "kudos.api.server:KudosHttpProtocol",
        "limit_concurrency": settings.max_connections,
        "access_log": access_log,
        "log_level": settings.log_level,
        "lifespan": "on",
        # kudos is not behind a proxy by default, and Server/Date headers cost every response.
        "proxy_headers": False,
        "server_header": False,
        "date_header": False,
    }
    if settings.workers > 1:
        uvicorn.run(
            "kudos.api.app:app_from_environment", factory=True, workers=settings.workers, **common
        )
    else:
        from kudos.api.app import create_app

        uvicorn.run(create_app(settings), **common)


@main.command()
@db_option
def migrate(database_url: str | None) -> None:
    """Apply pending schema migrations."""
    db = build_database(settings_from(database_url))
    applied = db.migrate()
    click.echo(f"applied migrations {applied}" if applied else "the schema is up to date")


@main.group("accounts")
def accounts_group() -> None:
    """Create and manage accounts (each has its own API key and secret key)."""


@accounts_group.command("create")
@click.argument("name")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print {name, apiKey, secretKey} as JSON.")
def accounts_create(name: str, database_url: str | None, as_json: bool) -> None:
    """Create an account and print its keys (the secret key is shown only once)."""
    settings = settings_from(database_url)
    keyring = build_keyring(settings)
    pair = in_transaction(settings, lambda tx: accounts.create(tx, keyring, name))
    _print_keys(name.strip(), pair, as_json=as_json)


@accounts_group.command("list")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def accounts_list(database_url: str | None, as_json: bool) -> None:
    """List accounts with their settings (never their keys)."""
    rows = in_transaction(settings_from(database_url), accounts.list_accounts)
    if as_json:
        click.echo(json.dumps([_account_json(row) for row in rows]))
        return
    click.echo(
        f"{'NAME':<24} {'API KEY':<10} {'MERGING':<8} {'HIGH SEC':<9} {'RATE LIMIT':<10} CREATED"
    )
    for row in rows:
        security = "on" if row.high_security else "off"
        click.echo(
            f"{row.name:<24} {row.api_key_hint:<10} {row.channel_merging:<8} {security:<9}"
            f" {row.rate_limit:<10} {row.created_at}"
        )


def _account_json(row: accounts.AccountSummary) -> dict[str, Any]:
    """An account as ``list --json`` prints it: camelCase, like ``create --json``."""
    return {
        "name": row.name,
        "apiKeyHint": row.api_key_hint,
        "channelMerging": row.channel_merging,
        "highSecurity": row.high_security,
        "rateLimit": row.rate_limit,
        "createdAt": row.created_at,
        "timezone": row.timezone,
    }


@accounts_group.command("rotate-keys")
@click.argument("name")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print {name, apiKey, secretKey} as JSON.")
def accounts_rotate(name: str, database_url: str | None, as_json: bool) -> None:
    """Replace an account's keys; the old ones stop working at once."""
    settings = settings_from(database_url)
    keyring = build_keyring(settings)
    pair = in_transaction(settings, lambda tx: accounts.rotate_keys(tx, keyring, name))
    _print_keys(name, pair, as_json=as_json)


@accounts_group.command("set")
@click.argument("name")
@db_option
@click.option(
    "--channel-merging",
    type=click.Choice(["off", "email", "mobile"]),
    default=None,
    help="Link the customerIds that send the same email (or mobile) into one profile, and"
    " merge profiles that turn out to share it; off keeps one profile per customerId."
    " See docs/channel-merging.md.",
)
@click.option(
    "--high-security",
    type=click.Choice(["on", "off"]),
    default=None,
    help="on: every request of the account must carry the secretkey header too (as on"
    " Gameball's v4.1 routes), not only the apikey.",
)
@click.option(
    "--rate-limit",
    default=None,
    help="Events requests allowed: off, gameball (100/s and 1,200/30 s) or N per second.",
)
@click.option(
    "--timezone",
    default=None,
    help="The IANA time zone analytics' days follow (Area/City; default UTC). A change"
    " rebuilds the account's analytics.",
)
@click.option(
    "--rebuild/--no-rebuild",
    default=True,
    help="After a time-zone change, rebuild analytics now (default) or later.",
)
def accounts_set(
    name: str,
    database_url: str | None,
    channel_merging: str | None,
    high_security: str | None,
    rate_limit: str | None,
    timezone: str | None,
    rebuild: bool,
) -> None:
    """Change an account's channel merging, high-security mode, rate limit or time zone."""
    security = None if high_security is None else high_security == "on"
    settings = settings_from(database_url)
    before = in_transaction(settings, lambda tx: accounts.named(tx, name))
    account = in_transaction(
        settings,
        lambda tx: accounts.configure(
            tx,
            name,
            channel_merging=channel_merging,
            high_security=security,
            rate_limit=rate_limit,
            timezone=timezone,
        ),
    )
    click.echo(
        f"{account.name}: channel merging {account.channel_merging}, high security "
        f"{'on' if account.high_security else 'off'}, rate limit {account.rate_limit},"
        f" time zone {account.timezone}"
    )
    if account.timezone != before.timezone:
        if rebuild:
            cli_analytics.rebuild_account(settings, account.name)
        else:
            click.echo("analytics are stale until `kudos analytics rebuild` runs", err=True)


@main.group("program")
def program_group() -> None:
    """Check, apply and show an account's program (campaigns, tiers, points expiry)."""


def _load_file(path: str) -> Any:
    try:
        return program.read_document(Path(path))
    except errors.ProgramInvalid as exc:
        _refuse_program(exc)


def _refuse_program(exc: errors.ProgramInvalid) -> NoReturn:
    for problem in exc.problems:
        click.echo(problem, err=True)
    raise click.ClickException(f"the program is invalid ({len(exc.problems)} problem(s))")


@program_group.command("check")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def program_check(path: str) -> None:
    """Validate a program file (YAML or JSON) without applying it."""
    try:
        checked = load_program(_load_file(path))
    except errors.ProgramInvalid as exc:
        _refuse_program(exc)
    click.echo(f"{path}: valid ({len(checked.campaigns)} campaigns, {len(checked.tiers)} tiers)")


@program_group.command("apply")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--account", "account_name", required=True, help="The account's name.")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print the applied version as JSON.")
def program_apply(path: str, account_name: str, database_url: str | None, as_json: bool) -> None:
    """Apply a program file as the account's next version (an invalid one changes nothing)."""
    document = _load_file(path)
    try:
        applied = in_transaction(
            settings_from(database_url),
            lambda tx: program.apply_program(tx, accounts.named(tx, account_name), document),
            passthrough=(errors.ProgramInvalid,),
        )
    except errors.ProgramInvalid as exc:
        _refuse_program(exc)
    if as_json:
        click.echo(json.dumps(applied))
    else:
        click.echo(f"{account_name}: program version {applied['version']} is in force")


@program_group.command("show")
@click.option("--account", "account_name", required=True, help="The account's name.")
@db_option
def program_show(account_name: str, database_url: str | None) -> None:
    """Print the program in force, with its version, as JSON."""
    shown = in_transaction(
        settings_from(database_url),
        lambda tx: program.get_program(tx, accounts.named(tx, account_name)),
    )
    click.echo(json.dumps(shown, indent=2))


main.add_command(cli_webhooks.webhooks_group)
main.add_command(cli_webhooks.worker)
main.add_command(cli_analytics.analytics_group)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
