"""The kudos CLI against both stores: migrate and the accounts commands."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner, Result

from kudos.bootstrap import build_database, run_in_transaction
from kudos.cli import main
from kudos.config import Settings
from kudos.domain.model import Credentials
from kudos.services import accounts
from kudos.services.security import Keyring
from tests.conftest import SERVER_KEY


@pytest.fixture
def run(database_url: str):  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(
            main,
            [*args, "--db", database_url],
            env={"KUDOS_SERVER_KEY": SERVER_KEY},
            catch_exceptions=False,
        )

    return invoke


def authenticate(database_url: str, api_key: str, secret_key: str | None = None) -> str:
    db = build_database(Settings(database_url=database_url))
    keyring = Keyring(SERVER_KEY)
    account = run_in_transaction(
        db, lambda tx: accounts.authenticate(tx, keyring, Credentials(api_key, secret_key))
    )
    return account.name


def test_migrate_is_idempotent(run) -> None:  # type: ignore[no-untyped-def]
    first = run("migrate")
    assert first.exit_code == 0 and "applied migrations [1, 2, 3, 4, 5, 6, 7]" in first.output
    again = run("migrate")
    assert again.exit_code == 0 and "up to date" in again.output


def test_accounts_create_prints_keys_as_json(run, database_url: str) -> None:  # type: ignore[no-untyped-def]
    run("migrate")
    result = run("accounts", "create", "shop", "--json")
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    assert set(created) == {"name", "apiKey", "secretKey"} and created["name"] == "shop"
    assert authenticate(database_url, created["apiKey"], created["secretKey"]) == "shop"


def test_a_duplicate_account_name_is_an_error(run) -> None:  # type: ignore[no-untyped-def]
    run("migrate")
    assert run("accounts", "create", "shop").exit_code == 0
    duplicate = run("accounts", "create", "shop")
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output


def test_list_shows_settings_but_never_keys(run) -> None:  # type: ignore[no-untyped-def]
    run("migrate")
    created = json.loads(run("accounts", "create", "shop", "--json").output)
    listed = run("accounts", "list")
    assert "shop" in listed.output and "gameball" in listed.output
    assert created["apiKey"] not in listed.output and created["secretKey"] not in listed.output
    rows = json.loads(run("accounts", "list", "--json").output)
    assert rows[0]["name"] == "shop" and rows[0]["channelMerging"] == "off"
    # camelCase like `accounts create --json`, and never a key
    assert set(rows[0]) == {
        "name",
        "apiKeyHint",
        "channelMerging",
        "highSecurity",
        "rateLimit",
        "createdAt",
        "timezone",
    }


def test_rotate_keys_retires_the_old_ones_at_once(run, database_url: str) -> None:  # type: ignore[no-untyped-def]
    run("migrate")
    old = json.loads(run("accounts", "create", "shop", "--json").output)
    new = json.loads(run("accounts", "rotate-keys", "shop", "--json").output)
    assert new["apiKey"] != old["apiKey"]
    assert authenticate(database_url, new["apiKey"], new["secretKey"]) == "shop"
    from kudos import errors

    with pytest.raises(errors.AuthError):
        authenticate(database_url, old["apiKey"])


def test_set_changes_merging_security_and_rate_limit(run) -> None:  # type: ignore[no-untyped-def]
    run("migrate")
    run("accounts", "create", "shop")
    result = run(
        "accounts",
        "set",
        "shop",
        "--channel-merging",
        "email",
        "--high-security",
        "on",
        "--rate-limit",
        "250",
    )
    assert result.exit_code == 0, result.output
    assert "channel merging email, high security on, rate limit 250" in result.output
    rows = json.loads(run("accounts", "list", "--json").output)
    assert (rows[0]["channelMerging"], rows[0]["highSecurity"], rows[0]["rateLimit"]) == (
        "email",
        True,
        "250",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate-limit", "fast"], "rate limit must be"),
        (["--channel-merging", "phone"], "Invalid value"),
    ],
)
def test_set_refuses_bad_values(run, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    run("migrate")
    run("accounts", "create", "shop")
    result = run("accounts", "set", "shop", *args)
    assert result.exit_code != 0 and message in result.output


def test_set_help_explains_every_option(run) -> None:  # type: ignore[no-untyped-def]
    shown = " ".join(run("accounts", "set", "--help").output.split())  # help text wraps
    assert "customerIds that send the same email" in shown
    assert "must carry the secretkey header" in shown
    assert "gameball (100/s" in shown


def test_unknown_account_is_an_error(run) -> None:  # type: ignore[no-untyped-def]
    run("migrate")
    result = run("accounts", "rotate-keys", "ghost")
    assert result.exit_code == 1 and "No account named 'ghost'" in result.output
