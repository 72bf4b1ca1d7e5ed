"""``kudos analytics …``: the analytics API's queries as tables (``--json`` for the raw
answer), and ``rebuild``, which recomputes what analytics keeps from the raw events."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from kudos import errors
from kudos.analytics import csv as analytics_csv
from kudos.analytics import query as analytics_query
from kudos.analytics import rebuild as analytics_rebuild
from kudos.analytics import summary as analytics_summary
from kudos.bootstrap import build_database
from kudos.cli_support import db_option, in_transaction, settings_from
from kudos.config import Settings
from kudos.services import accounts, rewards
from kudos.storage.db import Tx

account_option = click.option("--account", "account_name", required=True, help="The account.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
range_options = [
    click.option("--from", "start", default=None, help="ISO 8601 date or time (local)."),
    click.option("--to", "end", default=None, help="ISO 8601 date or time, exclusive."),
    click.option("--last", default=None, help="Instead of --from/--to: 30d, 12w, 24h, 6m."),
]


def _ranged(fn: Any) -> Any:
    for option in reversed(range_options):
        fn = option(fn)
    return fn


def _range(start: str | None, end: str | None, last: str | None) -> dict[str, str] | None:
    if last is not None:
        return {"last": last}
    if start is None and end is None:
        return None
    return {"from": start or "", "to": end or ""}


@click.group("analytics")
def analytics_group() -> None:
    """Ask what customers do (the same answers as /api/kudos/v1/analytics) and rebuild."""


def _ask(database_url: str | None, account_name: str, body: dict[str, Any]) -> dict[str, Any]:
    def run(tx: Tx) -> dict[str, Any]:
        return analytics_query.run(tx, accounts.named(tx, account_name), body)

    try:
        return in_transaction(settings_from(database_url), run, passthrough=(errors.QueryInvalid,))
    except errors.QueryInvalid as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        raise click.ClickException("the query is invalid") from None


def _query(
    database_url: str | None,
    account_name: str,
    body: dict[str, Any],
    span: dict[str, str] | None,
    *,
    as_json: bool,
) -> None:
    """Ask a query (over ``span``, or the default range) and print its answer."""
    if span is not None:
        body["dateRange"] = span
    _show(_ask(database_url, account_name, body), as_json=as_json)


def _show(answer: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(answer))
        return
    header, *body = analytics_csv.table(answer)
    title = f"{answer.get('kind', 'summary')} · {answer.get('from')} to {answer.get('to')}"
    table = Table(*map(str, header), title=f"{title} ({answer.get('timezone')})")
    for row in body:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    Console().print(table)
    if not answer.get("exact", True):
        click.echo("note: not exact (see docs/analytics.md)", err=True)


@analytics_group.command("trends")
@account_option
@click.option("--event", "events", multiple=True, required=True, help="Event name or $any.")
@click.option("--math", default="count", help="count, uniqueCustomers, sum, avg, p90, …")
@click.option("--property", "prop", default=None, help="The metadata key a value math reads.")
@click.option("--interval", default="auto", help="hour, day, week, month or auto.")
@click.option("--breakdown", default=None, help="A metadata key to break the series down by.")
@click.option("--where", "filters", multiple=True, help="A filter KEY:OP:VALUE (repeatable).")
@_ranged
@db_option
@json_option
def trends(
    account_name: str,
    events: tuple[str, ...],
    math: str,
    prop: str | None,
    interval: str,
    breakdown: str | None,
    filters: tuple[str, ...],
    start: str | None,
    end: str | None,
    last: str | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """A measure of events per bucket (one series per --event)."""
    body: dict[str, Any] = {
        "kind": "trends",
        "series": [
            {"event": e, "math": math, **({"property": prop} if prop else {})} for e in events
        ],
        "interval": interval,
        "filters": [_filter(text) for text in filters],
    }
    if breakdown:
        body["breakdown"] = {"property": breakdown}
    _query(database_url, account_name, body, _range(start, end, last), as_json=as_json)


def _filter(text: str) -> dict[str, Any]:
    key, _, rest = text.partition(":")
    op, _, value = rest.partition(":")
    if not key or not op:
        raise click.BadParameter(f"{text!r}: KEY:OP:VALUE, such as channel:equals:web")
    number: Any = value
    with contextlib.suppress(ValueError):
        number = float(value) if "." in value else int(value)
    return {"key": key, "op": op, **({"value": number} if value else {})}


@analytics_group.command("funnel")
@account_option
@click.option("--step", "steps", multiple=True, required=True, help="An event (2 to 10, in order).")
@click.option("--window", default="14d", help="The conversion window: 30m, 12h, 7d, 2w.")
@_ranged
@db_option
@json_option
def funnel(
    account_name: str,
    steps: tuple[str, ...],
    window: str,
    start: str | None,
    end: str | None,
    last: str | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """How many customers go through the steps in order within the window."""
    units = {"m": "minute", "h": "hour", "d": "day", "w": "week"}
    if not window[:-1].isdigit() or window[-1:] not in units:
        raise click.BadParameter(f"{window!r}: a number and m, h, d or w", param_hint="--window")
    body: dict[str, Any] = {
        "kind": "funnel",
        "steps": [{"event": step} for step in steps],
        "window": {"value": int(window[:-1]), "unit": units[window[-1]]},
    }
    _query(database_url, account_name, body, _range(start, end, last), as_json=as_json)


@analytics_group.command("retention")
@account_option
@click.option("--cohort-event", default="$firstSeen", help="Cohorts by its first occurrence.")
@click.option("--return-event", default="$any", help="What counts as coming back.")
@click.option("--period", default="week", type=click.Choice(["day", "week", "month"]))
@click.option("--periods", default=8, type=click.IntRange(1, 60))
@_ranged
@db_option
@json_option
def retention(
    account_name: str,
    cohort_event: str,
    return_event: str,
    period: str,
    periods: int,
    start: str | None,
    end: str | None,
    last: str | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Cohorts by first occurrence, and how many came back in each later period."""
    body: dict[str, Any] = {
        "kind": "retention",
        "cohortEvent": cohort_event,
        "returnEvent": return_event,
        "period": period,
        "periods": periods,
    }
    _query(database_url, account_name, body, _range(start, end, last), as_json=as_json)


@analytics_group.command("summary")
@account_option
@click.option("--from", "start", default=None, help="ISO 8601 date (local).")
@click.option("--to", "end", default=None, help="ISO 8601 date, exclusive.")
@db_option
@json_option
def summary(
    account_name: str, start: str | None, end: str | None, database_url: str | None, as_json: bool
) -> None:
    """Members, events and points of a range beside the previous period's."""

    def run(tx: Tx) -> dict[str, Any]:
        account = accounts.named(tx, account_name)
        program = rewards.ProgramCache().get(tx, account.id)
        return analytics_summary.summary(
            tx, account, start=start, end=end, now=time.time(), program=program
        )

    try:
        answer = in_transaction(
            settings_from(database_url), run, passthrough=(errors.QueryInvalid,)
        )
    except errors.QueryInvalid as exc:
        raise click.ClickException("; ".join(exc.problems)) from None
    _show(answer, as_json=as_json)


@analytics_group.command("rebuild")
@account_option
@db_option
def rebuild(account_name: str, database_url: str | None) -> None:
    """Recompute what analytics keeps of an account from its events (writes wait meanwhile)."""
    rebuild_account(settings_from(database_url), account_name)


def rebuild_account(settings: Settings, account_name: str) -> None:
    """Rebuild one account's analytics with a progress bar (also after a time-zone change)."""
    account = in_transaction(settings, lambda tx: accounts.named(tx, account_name))
    db = build_database(settings)
    columns = (
        TextColumn("rebuilding {task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f} events"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(account.name, total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        started = time.monotonic()
        done = analytics_rebuild.rebuild(db, account.id, progress=progress)
    seconds = time.monotonic() - started
    click.echo(f"{account.name}: analytics rebuilt from {done:,} events in {seconds:.1f} s")
