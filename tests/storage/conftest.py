"""Fixtures of the writer tests: both drivers, and a runtime with a scratch table."""

from __future__ import annotations

import pytest

from kudos.bootstrap import Runtime, run_in_transaction
from kudos.storage.writer import LoopWriter, ThreadWriter, Writer


@pytest.fixture(params=[LoopWriter, ThreadWriter], ids=["loop", "thread"])
def writer_class(request: pytest.FixtureRequest) -> type[Writer]:
    driver: type[Writer] = request.param
    return driver


@pytest.fixture
def scratch(runtime: Runtime) -> Runtime:
    run_in_transaction(runtime.db, lambda tx: tx.execute("CREATE TABLE scratch (value TEXT)"))
    return runtime
