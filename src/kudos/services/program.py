"""The account's program: check, apply (a new version each time), read, and compile.

Applying runs through the writer like any other write (``ApplyProgram``), so it is ordered
with the events around it; the CLI applies in a transaction of its own. The writer compiles
programs once per version (``services.rewards.ProgramCache``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kudos import errors
from kudos.domain.model import Account, Credentials, utc_now
from kudos.rules.schema import EMPTY_PROGRAM, Program, load_program
from kudos.services import accounts
from kudos.services.ingest import IngestContext
from kudos.storage import programs
from kudos.storage.db import Tx


def read_document(path: Path) -> Any:
    """A program file: JSON when it ends in ``.json``, YAML otherwise (JSON is YAML too)."""
    text = path.read_text()
    try:
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise errors.ProgramInvalid(
            [f"(document): not valid {path.suffix or 'YAML'}: {exc}"]
        ) from None


def apply_program(tx: Tx, account: Account, document: Any) -> dict[str, Any]:
    """Validate and store ``document`` as the next version; the old one stays if invalid.

    What is stored is the canonical document (defaults filled in), read back from the store
    and loaded again before the caller commits: a document whose stored form would not load
    to the same program is refused (3100), so a stored program always loads.
    """
    program = load_program(document)
    version = programs.current_version(tx, account.id) + 1
    now = utc_now()
    canonical = program.document()
    programs.insert(tx, account.id, version, canonical, now)
    stored = programs.current(tx, account.id)
    if stored is None or _reloaded(stored[1]) != program:
        raise errors.ProgramInvalid(["(document): its stored form does not read back the same"])
    return {"version": version, "createdAt": now, "program": canonical}


def _reloaded(document: Any) -> Program | None:
    try:
        return load_program(document)
    except errors.ProgramInvalid:
        return None


def get_program(tx: Tx, account: Account) -> dict[str, Any]:
    """The program in force with its version (version 0: none applied yet, nothing runs)."""
    found = programs.current(tx, account.id)
    if found is None:
        return {"version": 0, "createdAt": None, "program": EMPTY_PROGRAM.document()}
    version, document, created_at = found
    return {"version": version, "createdAt": created_at, "program": document}


@dataclass(slots=True)
class ApplyProgram:
    """``PUT /api/kudos/v1/program`` as writer work."""

    context: IngestContext
    credentials: Credentials
    document: Any
    account: Account | None = None

    def prepare(self, tx: Tx) -> None:
        self.account = accounts.authenticate(tx, self.context.keyring, self.credentials)
        load_program(self.document)  # refuse an invalid document before the batch writes

    def lock_keys(self) -> list[str]:
        assert self.account is not None
        return [f"program:{self.account.id}"]

    def apply(self, tx: Tx) -> dict[str, Any]:
        assert self.account is not None
        return apply_program(tx, self.account, self.document)
