"""A request's failure stays its own, wherever in the batch procedure it is raised.

The batch runs first in one transaction, then with a savepoint per request; a failure outside
any one request's savepoint (``prepare``, ``lock_keys``, the hooks' ``prefetch`` or ``flush``,
the batch's bulk writes) makes the writer run each request in a transaction of its own, so
only the guilty request fails (5000 for a bug, its own ``KudosError`` otherwise) and its
neighbours commit. On both drivers and both stores (see ``tests/storage/test_writer.py`` for
how the tests form one batch).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kudos import errors
from kudos.bootstrap import Runtime
from kudos.storage.writer import Writer
from tests.storage.writing import CountingHooks, FaultyHooks, Insert, held, stored, with_blocker

GUILTY = "c-guilty"
# Where the guilty request's failure is raised: by the request itself, or by the hooks.
WORK_FAULTS = ["prepare", "lock_keys", "stage"]
HOOK_FAULTS = ["prefetch", "prefetch-kudos", "flush", "flush-staged"]


async def run_batch(writer: Writer, works: list[Insert]) -> list[Any]:
    """Submit ``works`` as one batch; their results or errors, in order."""
    writer.start()
    try:
        async with held(writer):
            tasks = [asyncio.create_task(writer.submit(work)) for work in works]
            await asyncio.sleep(0)
        return await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await writer.stop()


def neighbours(guilty: Insert) -> list[Insert]:
    return [Insert("b-good"), guilty, Insert("refused"), Insert("d-good"), Insert("e-good")]


def assert_only_the_guilty_failed(results: list[Any], guilty_error: type[Exception]) -> None:
    good, failed, refused = [results[0], *results[3:]], results[1], results[2]
    assert good == ["b-good", "d-good", "e-good"]
    assert type(failed) is guilty_error, failed
    assert isinstance(refused, errors.AuthError)


@pytest.mark.parametrize("place", WORK_FAULTS)
async def test_a_request_failing_outside_its_apply_fails_alone(
    scratch: Runtime, writer_class: type[Writer], place: str
) -> None:
    writer = writer_class(scratch.db, CountingHooks())
    results = await run_batch(writer, neighbours(Insert(GUILTY, fail_in=place)))
    if place == "lock_keys" and not scratch.db.concurrent_writers:
        # One writer per SQLite file: nothing to lock, so lock_keys is never called.
        assert results[1] == GUILTY
        expected = ["b-good", GUILTY, "d-good", "e-good"]
    else:
        assert_only_the_guilty_failed(results, errors.InternalError)
        expected = ["b-good", "d-good", "e-good"]
    assert await stored(scratch) == with_blocker(writer, expected)


@pytest.mark.parametrize("place", HOOK_FAULTS)
async def test_hooks_failing_for_one_request_fail_that_request_alone(
    scratch: Runtime, writer_class: type[Writer], place: str
) -> None:
    writer = writer_class(scratch.db, FaultyHooks(place, GUILTY))
    results = await run_batch(writer, neighbours(Insert(GUILTY)))
    kudos_error = place == "prefetch-kudos"  # e.g. a program that cannot be loaded: 5001
    assert_only_the_guilty_failed(
        results, errors.ProgramUnavailable if kudos_error else errors.InternalError
    )
    assert await stored(scratch) == with_blocker(writer, ["b-good", "d-good", "e-good"])


async def test_two_guilty_requests_fail_each_for_its_own_reason(
    scratch: Runtime, writer_class: type[Writer]
) -> None:
    """An apply that fails (savepoint) beside a prepare that breaks (each alone)."""
    writer = writer_class(scratch.db, CountingHooks())
    works = [
        Insert("a-good"),
        Insert("b-invalid", fail_with=errors.InvalidValue()),
        Insert("c-broken", fail_in="prepare"),
        Insert("d-good"),
    ]
    results = await run_batch(writer, works)
    assert results[0] == "a-good" and results[3] == "d-good"
    assert isinstance(results[1], errors.InvalidValue)
    assert isinstance(results[2], errors.InternalError)
    assert await stored(scratch) == with_blocker(writer, ["a-good", "d-good"])


class Transient(Exception):
    """Stands for a deadlock or serialization failure: the batch is retried."""


class FlakyInsert(Insert):
    """Conflicts on its first ``failures`` runs, then writes."""

    def __init__(self, value: str, *, failures: int) -> None:
        super().__init__(value)
        self.failures = failures

    def apply(self, tx: Any) -> str:
        if self.failures:
            self.failures -= 1
            raise Transient()
        return super().apply(tx)


async def test_a_conflict_still_retries_the_batch_and_a_lasting_one_answers_503(
    scratch: Runtime, writer_class: type[Writer]
) -> None:
    scratch.db.retryable_errors = (Transient,)
    writer = writer_class(scratch.db, CountingHooks())
    results = await run_batch(writer, [Insert("a-good"), FlakyInsert("b-flaky", failures=2)])
    assert results == ["a-good", "b-flaky"]
    writer = writer_class(scratch.db, CountingHooks())
    results = await run_batch(writer, [Insert("c-good"), FlakyInsert("d-stuck", failures=99)])
    assert all(isinstance(result, errors.Unavailable) for result in results)
    blockers = with_blocker(writer, []) * 2  # one per batch on the thread writer
    assert await stored(scratch) == [*blockers, "a-good", "b-flaky"]
