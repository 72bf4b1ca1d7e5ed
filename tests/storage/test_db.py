"""What a writer remembers across statements: kept on commit (single writer only), forgotten
on rollback, and forgotten with a request's savepoint when that request rolls back alone."""

from __future__ import annotations

from kudos.bootstrap import Runtime
from kudos.storage.db import Tx


def writer_tx(runtime: Runtime) -> Tx:
    return Tx(runtime.db, runtime.db.connect(writer=True))


def test_a_rolled_back_savepoint_forgets_what_it_remembered_or_took(runtime: Runtime) -> None:
    tx = writer_tx(runtime)
    try:
        tx.begin()
        tx.remember("kept", 1)
        tx.remember("changed", "before")
        tx.remember("taken", [1], shelf="rewards")
        tx.savepoint()
        tx.remember("changed", "inside")
        tx.remember("new", 2, shelf="rewards")
        assert tx.take("taken", shelf="rewards") == [1]
        tx.rollback_to_savepoint()
        assert tx.recall("kept") == 1
        assert tx.recall("changed") is None  # forgotten, never stale: read again
        assert tx.recall("new", shelf="rewards") is None
        assert tx.recall("taken", shelf="rewards") is None
        tx.savepoint()
        tx.remember("released", 3)
        tx.release_savepoint()
        assert tx.recall("released") == 3
        tx.commit()
        single_writer = not runtime.db.concurrent_writers
        assert tx.recall("kept") == (1 if single_writer else None)
        assert tx.recall("released") == (3 if single_writer else None)
    finally:
        tx.conn.close()


def test_taking_a_fact_forgets_it_until_it_is_remembered_again(runtime: Runtime) -> None:
    tx = writer_tx(runtime)
    try:
        tx.begin()
        tx.remember("totals", "v1", shelf="rewards")
        tx.commit()
        tx.begin()
        expected = None if runtime.db.concurrent_writers else "v1"
        assert tx.take("totals", shelf="rewards") == expected
        assert tx.recall("totals", shelf="rewards") is None
        tx.rollback()
        assert tx.recall("totals", shelf="rewards") is None
    finally:
        tx.conn.close()


def test_a_rolled_back_transaction_forgets_what_it_remembered(runtime: Runtime) -> None:
    tx = writer_tx(runtime)
    try:
        tx.begin()
        tx.remember("gone", 1, shelf="rewards")
        tx.rollback()
        assert tx.recall("gone", shelf="rewards") is None
    finally:
        tx.conn.close()


def test_select_in_finds_every_value_asked_for_however_many(runtime: Runtime) -> None:
    """``select_in`` splits (SQLite: padded chunks of at most 512 marks) or packs (PostgreSQL:
    one array) the values; either way each present value is found once."""
    tx = writer_tx(runtime)
    try:
        tx.begin()
        tx.execute("CREATE TEMPORARY TABLE wanted (account_id INTEGER, name TEXT)")
        tx.many(
            "INSERT INTO wanted (account_id, name) VALUES (?, ?)",
            [(1, f"n{i}") for i in range(700)],
        )
        tx.execute("INSERT INTO wanted (account_id, name) VALUES (2, 'n1')")
        sql = "SELECT name FROM wanted WHERE account_id = ? AND name IN ({marks})"
        for count in (0, 1, 3, 513, 700):
            asked = [f"n{i}" for i in range(count)] + ["absent"]
            found = [row[0] for row in runtime.db.select_in(tx, sql, (1,), asked)]
            assert sorted(found) == sorted(asked[:-1])
        tx.rollback()
    finally:
        tx.conn.close()
