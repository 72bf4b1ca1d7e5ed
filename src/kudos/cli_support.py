"""What the ``kudos`` commands share: the ``--db`` option, settings, one transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from kudos import errors
from kudos.bootstrap import build_database, run_in_transaction
from kudos.config import Settings
from kudos.storage.db import Tx

T = TypeVar("T")

db_option = click.option(
    "--db",
    "database_url",
    envvar="KUDOS_DATABASE_URL",
    default=None,
    help="sqlite:///path/file.db or postgresql://… (default sqlite:///./kudos.db).",
)


def settings_from(database_url: str | None, **overrides: Any) -> Settings:
    """Settings from the environment, with the options given on the command line."""
    values = {k: v for k, v in overrides.items() if v is not None}
    if database_url:
        values["database_url"] = database_url
    return Settings(**values)


def in_transaction(
    settings: Settings,
    fn: Callable[[Tx], T],
    *,
    passthrough: tuple[type[errors.KudosError], ...] = (),
) -> T:
    """Run ``fn`` in one transaction (SQLite migrates first); errors become CLI errors."""
    db = build_database(settings)
    if db.dialect == "sqlite":
        db.migrate()
    try:
        return run_in_transaction(db, fn)
    except passthrough:
        raise
    except errors.KudosError as exc:
        raise click.ClickException(exc.message) from None
