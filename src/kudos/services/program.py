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

import msgspec
import yaml

from kudos import errors
from kudos.domain.model import Account, Credentials, utc_now
from kudos.rules.engine import CompiledProgram, compile_program
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


# Versions kept per account: every apply stores one, so the history is bounded.
KEPT_VERSIONS = 100
# Applies per account: validating and compiling a large program takes tens of milliseconds.
APPLY_WINDOWS = ((60, 10),)  # 10 a minute


def check_program(document: Any) -> Program:
    """Validate ``document``; refuse (3100) one whose canonical form, as JSON, would not load
    back to the same program. Pure CPU (tens of ms for the largest program): callers on an
    event loop run it in a thread."""
    program = load_program(document)
    if _reloaded(msgspec.json.decode(msgspec.json.encode(program.document()))) != program:
        raise errors.ProgramInvalid(["(document): its stored form does not read back the same"])
    return program


def apply_program(
    tx: Tx, account: Account, document: Any, *, checked: Program | None = None
) -> dict[str, Any]:
    """Store ``document`` (or ``checked``, a program ``check_program`` returned) as the next
    version; nothing changes if it is invalid. Keeps the last ``KEPT_VERSIONS`` versions.

    What is stored is the canonical document (defaults filled in), read back from the store
    before the caller commits: unless it reads back as written, it is refused (3100), so a
    stored program always loads.
    """
    program = checked or check_program(document)
    version = programs.current_version(tx, account.id) + 1
    now = utc_now()
    canonical = program.document()
    programs.insert(tx, account.id, version, canonical, now)
    stored = programs.current(tx, account.id)
    if stored is None or stored[1] != canonical:
        raise errors.ProgramInvalid(["(document): its stored form does not read back the same"])
    programs.prune(tx, account.id, keep_from=version - KEPT_VERSIONS + 1)
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
    """``PUT /api/kudos/v1/program`` as writer work: ``program`` was checked (and compiled)
    off the writer, so the writer only counts the apply against the account's rate, stores
    it and reads it back."""

    context: IngestContext
    credentials: Credentials
    program: Program
    account: Account | None = None

    def prepare(self, tx: Tx) -> None:
        if self.account is not None:  # a retried batch: already authenticated and counted
            return
        account = accounts.authenticate(tx, self.context.keyring, self.credentials)
        now = self.context.clock()
        wait = self.context.program_limiter.hit_windows(account.id, APPLY_WINDOWS, now)
        if wait is not None:
            raise errors.RateLimited(
                "Too many requests: at most 10 programs a minute per account.", retry_after=wait
            )
        self.account = account

    def lock_keys(self) -> list[str]:
        assert self.account is not None
        return [f"program:{self.account.id}"]

    def apply(self, tx: Tx) -> dict[str, Any]:
        assert self.account is not None
        return apply_program(tx, self.account, None, checked=self.program)


def prepared(document: Any) -> tuple[Program, CompiledProgram]:
    """``check_program`` and the compiled program (its version set once applied): all the
    CPU an apply costs, for a thread."""
    program = check_program(document)
    return program, compile_program(program, version=0)
