"""Fair batches: when several accounts' work waits, one account's heavy requests cannot make
every batch long (``Writer._take_batch``, deficit round robin by cost)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from kudos.storage import writer as writer_module
from kudos.storage.writer import SHARE_QUANTUM, NoHooks, Writer, _Item

HEAVY = 2_000  # the largest request: 1,000 top-level keys and ~1 MiB (api.ingest.work_cost)
LIGHT = 10  # a plain request


def queued(writer: Writer, *items: tuple[object, int]) -> None:
    for share, cost in items:
        writer._queue.append(_Item(None, None, None, share, cost))  # type: ignore[arg-type]


def names(batch: list[Any]) -> list[object]:
    return [item.share for item in batch]


def new_writer(max_batch: int = 512) -> Writer:
    return Writer(None, NoHooks(), max_batch=max_batch)  # type: ignore[arg-type]


def test_one_account_s_work_is_taken_in_order_up_to_the_batch_size() -> None:
    writer = new_writer(max_batch=3)
    queued(writer, *[("a", HEAVY)] * 5)
    assert names(writer._take_batch()) == ["a", "a", "a"]
    assert len(writer._queue) == 2


def test_heavy_work_takes_its_turn_and_then_waits_out_its_excess() -> None:
    writer = new_writer()
    queued(writer, *[("heavy", HEAVY)] * 50, *[("light", LIGHT)] * 2_000)
    taken: Counter[object] = Counter()
    for _ in range(HEAVY // SHARE_QUANTUM):
        batch = writer._take_batch()
        taken.update(names(batch))
        assert sum(item.cost for item in batch) <= HEAVY + SHARE_QUANTUM + LIGHT
    # In ten batches the heavy account took one request (2,000) and the light one about as
    # much work (200 a batch): neither waited behind the other's whole queue.
    assert taken["heavy"] == 1
    assert taken["light"] == 10 * (SHARE_QUANTUM // LIGHT)
    assert names(writer._take_batch()).count("heavy") == 1  # its debt is paid: its next turn


def test_work_left_behind_keeps_its_order() -> None:
    writer = new_writer()
    queued(writer, ("heavy", HEAVY), ("heavy", HEAVY + 1), ("light", LIGHT), ("heavy", HEAVY + 2))
    assert [item.cost for item in writer._take_batch()] == [HEAVY, LIGHT]
    assert [item.cost for item in writer._queue] == [HEAVY + 1, HEAVY + 2]


def test_the_queue_moves_even_when_every_waiting_account_owes() -> None:
    writer = new_writer()
    writer._owed = {"a": 10 * SHARE_QUANTUM, "b": 10 * SHARE_QUANTUM}
    queued(writer, ("a", LIGHT), ("b", LIGHT))
    assert names(writer._take_batch()) == ["a"]
    assert names(writer._take_batch()) == ["b"]  # alone in the queue: taken whatever it owes


def test_debts_are_forgotten_once_only_one_account_waits() -> None:
    writer = new_writer()
    queued(writer, ("heavy", HEAVY), ("light", LIGHT))
    assert names(writer._take_batch()) == ["heavy", "light"]
    assert writer._owed == {"heavy": HEAVY - SHARE_QUANTUM}
    queued(writer, ("heavy", HEAVY), ("heavy", HEAVY))
    assert names(writer._take_batch()) == ["heavy", "heavy"]  # nobody else waits
    assert writer._owed == {}


def test_every_request_costs_about_what_it_makes_the_writer_do() -> None:
    from kudos.api.ingest import work_cost
    from kudos.domain.payload import EventBatch

    plain = EventBatch("c", (("a", {"x": 1, "y": 2}), ("b", {"z": 3})))
    assert work_cost(plain, b"x" * 300) == 1 + 2 + 3
    heavy = EventBatch("c", tuple((f"e{n}", {f"k{k}": k for k in range(250)}) for n in range(4)))
    assert work_cost(heavy, b"x" * 1_000_000) == 1 + 4 + 1_000 + 976
    assert work_cost(heavy, b"x" * 1_000_000) > writer_module.SHARE_QUANTUM
