"""Crash test with a small WAL limit: SIGKILL ``kudos serve`` while its checkpointer and its
writer keep resetting the WAL (copy back, truncate) under load; after the restart every
acknowledged request is stored exactly once, the file passes ``quick_check``, and the WAL
stayed within its bound while loading."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import kudos_command, server_env, start_server, stop_server
from tests.e2e.test_crash import NAMES, Load, kill_group, stored_events

LIMIT = 1024 * 1024  # the smallest KUDOS_SQLITE_WAL_MAX_BYTES: a reset every few dozen ms
# One batch of this load (at most 64 requests of two small events) writes well under 2 MiB.
BOUND = LIMIT + 2 * 1024 * 1024
LOAD_SECONDS = 3.0
SAMPLE_SECONDS = 0.01


def sample_wal(path: Path, stop: threading.Event, sizes: list[int]) -> None:
    while not stop.wait(SAMPLE_SECONDS):
        try:
            sizes.append(path.stat().st_size)
        except FileNotFoundError:
            sizes.append(0)


@pytest.mark.slow
def test_acknowledged_events_survive_sigkill_while_the_wal_is_being_reset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUDOS_SQLITE_WAL_MAX_BYTES", str(LIMIT))
    database = tmp_path / "crash.db"
    url = f"sqlite:///{database}"
    server = start_server(url, tmp_path / "server.log")
    load, sampling = Load(server), threading.Event()
    sizes: list[int] = []
    sampler = threading.Thread(target=sample_wal, args=(Path(f"{database}-wal"), sampling, sizes))
    try:
        subprocess.run(
            kudos_command("accounts", "set", "live", "--rate-limit", "off", "--db", url),
            env=server_env(),
            check=True,
            capture_output=True,
        )
        sampler.start()
        load.start()
        time.sleep(LOAD_SECONDS)
        os.killpg(server.process.pid, signal.SIGKILL)
        assert server.process.wait(timeout=10) == -signal.SIGKILL
    finally:
        sampling.set()
        load.join()
        kill_group(server)
    assert len(load.acknowledged) >= 50 and not load.refused

    peak = max(sizes)
    assert peak > LIMIT // 2, "the load never reached the reset size: the test is moot"
    assert peak <= BOUND, f"the WAL reached {peak} bytes"
    assert min(sizes[sizes.index(peak) :]) < LIMIT // 2, "the WAL was never reset"

    with sqlite3.connect(database) as conn:  # opening recovers from the WAL as it is
        assert conn.execute("PRAGMA quick_check").fetchall() == [("ok",)]
    rows = stored_events(url)
    per_name = {name: Counter(m["seq"] for _, n, m in rows if n == name) for name in NAMES}
    assert set(per_name[NAMES[0]]) == set(per_name[NAMES[1]]), "a request stored half"
    assert all(count == 1 for counts in per_name.values() for count in counts.values())
    lost = set(load.acknowledged) - set(per_name[NAMES[0]])
    assert not lost, f"{len(lost)} acknowledged requests lost"

    restarted = start_server(url, tmp_path / "server.log", keys=(server.api_key, server.secret_key))
    stop_server(restarted)
