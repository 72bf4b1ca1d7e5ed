"""The burn side's rows: holds, the shop's transactions and orders, order claims, and the
ledger entries that belong to a transaction or are pending (migration 0006)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kudos.domain.model import iso
from kudos.storage import profiles
from kudos.storage.db import Row, Tx
from kudos.storage.profiles import decode_json, encode
from kudos.storage.rewards import Entry

# A shop id in either family, as the ``history_txn`` index can look it up.
_ANY_FAMILY = " AND txn_family IN ('order', 'transaction') AND txn_id = ?"

ORDER = "order"  # the families of the shop's ids: an order id and a transaction id may be equal
TRANSACTION = "transaction"


@dataclass(slots=True)
class Hold:
    reference: str
    profile_id: int
    customer_id: str
    points: int
    amount: Decimal
    state: str  # active | used | released (an active hold past ``expires_at`` is expired)
    used_by: str | None
    created_at: str
    expires_at: str

    def state_at(self, now: str) -> str:
        """``active``, ``used``, ``released`` or ``expired`` at ``now``."""
        if self.state == "active" and self.expires_at <= now:
            return "expired"
        return self.state


def storable(text: str) -> bool:
    """Whether ``text`` could be a stored id: none holds NUL (bodies refuse it, and
    PostgreSQL text cannot hold it), so an id from a path with one is simply not found."""
    return "\x00" not in text


_HOLD = "reference, profile_id, customer_id, points, amount, state, used_by, created_at, expires_at"


def hold(tx: Tx, account_id: int, reference: str) -> Hold | None:
    if not storable(reference):
        return None
    row = tx.one(
        f"SELECT {_HOLD} FROM holds WHERE account_id = ? AND reference = ?",
        (account_id, reference),
    )
    if row is None:
        return None
    return Hold(
        row[0],
        int(row[1]),
        row[2],
        int(row[3]),
        Decimal(row[4]),
        row[5],
        row[6],
        iso(row[7]),
        iso(row[8]),
    )


def add_hold(tx: Tx, account_id: int, found: Hold) -> None:
    tx.execute(
        f"INSERT INTO holds (account_id, {_HOLD}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            account_id,
            found.reference,
            found.profile_id,
            found.customer_id,
            found.points,
            str(found.amount),
            found.state,
            found.used_by,
            found.created_at,
            found.expires_at,
        ),
    )


def end_hold(tx: Tx, account_id: int, reference: str, *, state: str, used_by: str | None) -> None:
    tx.execute(
        "UPDATE holds SET state = ?, used_by = ? WHERE account_id = ? AND reference = ?",
        (state, used_by, account_id, reference),
    )


def active_holds(tx: Tx, account_id: int, profile_id: int, now: str) -> int:
    """How many holds of the customer are active at ``now``."""
    row = tx.one(
        "SELECT count(*) FROM holds WHERE account_id = ? AND profile_id = ?"
        " AND state = 'active' AND expires_at > ?",
        (account_id, profile_id, now),
    )
    return int(row[0]) if row else 0


def purge_holds_before(tx: Tx, cutoff: str) -> int:
    """Delete the holds whose time ran out before ``cutoff`` (an active one then reserves
    nothing: it ended when it ran out; a used or released one ended before); return how many."""
    cursor = tx.execute("DELETE FROM holds WHERE expires_at < ?", (cutoff,))
    return int(cursor.rowcount or 0)


def held_points(
    tx: Tx, account_id: int, profile_id: int, now: str, *, besides: str | None = None
) -> int:
    """The points active holds reserve (those past their time reserve nothing), but for the
    hold ``besides``."""
    row = tx.one(
        "SELECT coalesce(sum(points), 0) FROM holds WHERE account_id = ? AND profile_id = ?"
        " AND state = 'active' AND expires_at > ? AND reference <> ?",
        (account_id, profile_id, now, besides or ""),
    )
    return int(row[0]) if row else 0


def linked_customer_ids(tx: Tx, account_id: int, customer_id: str) -> list[str]:
    """Every customerId of the profile ``customer_id`` names (none for an unknown one)."""
    if not storable(customer_id):
        return []
    profile_id = profiles.id_for_customer(tx, account_id, customer_id)
    return [] if profile_id is None else profiles.customer_ids_of(tx, account_id, profile_id)


@dataclass(slots=True)
class ShopTransaction:
    family: str
    id: str
    type: str  # Order | Redemption | Cashback | Manual | Refund
    profile_id: int
    customer_id: str
    request_hash: str
    answer: dict[str, Any]
    amount: Decimal
    points_earned: int = 0
    points_redeemed: int = 0
    refunded_amount: Decimal = Decimal(0)
    points_clawed: int = 0
    points_returned: int = 0
    created_at: str = ""


_TXN = (
    "family, id, type, profile_id, customer_id, request_hash, answer, amount, points_earned,"
    " points_redeemed, refunded_amount, points_clawed, points_returned, created_at"
)


def shop_transaction(tx: Tx, account_id: int, family: str, txn_id: str) -> ShopTransaction | None:
    if not storable(txn_id):
        return None
    row = tx.one(
        f"SELECT {_TXN} FROM shop_transactions WHERE account_id = ? AND family = ? AND id = ?",
        (account_id, family, txn_id),
    )
    return None if row is None else _shop_transaction(row)


def _shop_transaction(row: Row) -> ShopTransaction:
    return ShopTransaction(
        family=row[0],
        id=row[1],
        type=row[2],
        profile_id=int(row[3]),
        customer_id=row[4],
        request_hash=row[5],
        answer=decode_json(row[6]),
        amount=Decimal(row[7]),
        points_earned=int(row[8]),
        points_redeemed=int(row[9]),
        refunded_amount=Decimal(row[10]),
        points_clawed=int(row[11]),
        points_returned=int(row[12]),
        created_at=iso(row[13]),
    )


def add_shop_transaction(tx: Tx, account_id: int, found: ShopTransaction) -> None:
    tx.execute(
        f"INSERT INTO shop_transactions (account_id, {_TXN})"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            account_id,
            found.family,
            found.id,
            found.type,
            found.profile_id,
            found.customer_id,
            found.request_hash,
            encode(found.answer),
            str(found.amount),
            found.points_earned,
            found.points_redeemed,
            str(found.refunded_amount),
            found.points_clawed,
            found.points_returned,
            found.created_at,
        ),
    )


def save_refunded(tx: Tx, account_id: int, found: ShopTransaction) -> None:
    """Write what a refund changed: the amount refunded so far and the points moved back."""
    tx.execute(
        "UPDATE shop_transactions SET refunded_amount = ?, points_clawed = ?,"
        " points_returned = ? WHERE account_id = ? AND family = ? AND id = ?",
        (
            str(found.refunded_amount),
            found.points_clawed,
            found.points_returned,
            account_id,
            found.family,
            found.id,
        ),
    )


def claim_order(tx: Tx, account_id: int, order_id: str, now: str) -> bool:
    """Claim the ``place_order`` campaigns of an order id: ``False`` when already claimed."""
    cursor = tx.execute(
        "INSERT INTO order_claims (account_id, order_id, created_at) VALUES (?, ?, ?)"
        " ON CONFLICT (account_id, order_id) DO NOTHING",
        (account_id, order_id, now),
    )
    return bool(cursor.rowcount)


def entries_of(tx: Tx, account_id: int, family: str, txn_id: str) -> list[Row]:
    """The ledger entries of one of the shop's ids, oldest first: ``(id, kind, direction,
    points, remaining, pending_until, created_at, data)``."""
    return tx.all(
        "SELECT id, kind, direction, points, remaining, pending_until, created_at, data"
        " FROM history WHERE account_id = ? AND txn_family = ? AND txn_id = ?"
        " AND kind IS NOT NULL ORDER BY id",
        (account_id, family, txn_id),
    )


def pending_credits(
    tx: Tx,
    account_id: int,
    profile_id: int,
    *,
    family: str | None = None,
    txn_id: str | None = None,
) -> list[tuple[int, int, str]]:
    """``(ledger id, remaining, pending until)`` of a customer's pending credits (of one id
    when given)."""
    tx.flush_staged()  # credits staged earlier in the batch count
    sql = (
        "SELECT id, remaining, pending_until FROM history WHERE account_id = ?"
        " AND profile_id = ? AND pending_until IS NOT NULL AND remaining > 0"
    )
    params: list[Any] = [account_id, profile_id]
    if txn_id is not None:
        sql += " AND txn_family = ? AND txn_id = ?"
        params += [family, txn_id]
    return [(int(r[0]), int(r[1]), iso(r[2])) for r in tx.all(sql + " ORDER BY id", params)]


def pending_total(tx: Tx, account_id: int, profile_id: int) -> int:
    row = tx.one(
        "SELECT coalesce(sum(remaining), 0) FROM history WHERE account_id = ? AND profile_id = ?"
        " AND pending_until IS NOT NULL",
        (account_id, profile_id),
    )
    return int(row[0]) if row else 0


def matured(tx: Tx, now: str, *, limit: int) -> list[tuple[int, int, int, int]]:
    """``(ledger id, account, profile, remaining)`` of pending entries (credits, and the
    refunds taken from them) whose window has passed, oldest first."""
    rows = tx.all(
        "SELECT id, account_id, profile_id, remaining FROM history"
        " WHERE pending_until IS NOT NULL AND pending_until <= ? ORDER BY pending_until, id"
        " LIMIT ?",
        (now, limit),
    )
    return [(int(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in rows]


def owner_of(tx: Tx, account_id: int, txn_id: str) -> int | None:
    """The profile of a ledger entry of the shop id ``txn_id`` (either family), if any."""
    if not storable(txn_id):
        return None
    row = tx.one(
        "SELECT profile_id FROM history WHERE account_id = ?" + _ANY_FAMILY + " LIMIT 1",
        (account_id, txn_id),
    )
    return None if row is None else int(row[0])


def pending_of(tx: Tx, account_id: int, txn_id: str) -> list[tuple[int, int, int]]:
    """``(ledger id, profile, remaining)`` of the pending entries of a shop id (any family)."""
    if not storable(txn_id):
        return []
    tx.flush_staged()
    rows = tx.all(
        "SELECT id, profile_id, remaining FROM history WHERE account_id = ?"
        + _ANY_FAMILY
        + " AND pending_until IS NOT NULL ORDER BY id",
        (account_id, txn_id),
    )
    return [(int(r[0]), int(r[1]), int(r[2])) for r in rows]


def take_pending(tx: Tx, credit_id: int, points: int) -> None:
    """Take points out of a pending credit (a refund inside its return window)."""
    tx.execute("UPDATE history SET remaining = remaining - ? WHERE id = ?", (points, credit_id))


def close_pending(tx: Tx, entry_id: int) -> Entry | None:
    """End a pending entry's window: it leaves the ledger (it stays in the history as an
    activity). Returns the entry that credits what is left of a pending credit now (its
    balances and id are this moment's, so the ledger stays in order), or ``None``."""
    row = tx.one(
        "SELECT type, kind, direction, remaining, reason, data, txn_family, txn_id"
        " FROM history WHERE id = ?",
        (entry_id,),
    )
    tx.execute(
        "UPDATE history SET kind = NULL, pending_until = NULL, remaining = 0 WHERE id = ?",
        (entry_id,),
    )
    if row is None or row[2] != "+" or int(row[3]) <= 0:
        return None
    return Entry(  # it expires as a credit made now does (the program's pointsExpiryDays)
        row[0],
        kind=row[1],
        points=int(row[3]),
        reason=row[4],
        data=None if row[5] is None else decode_json(row[5]),
        txn_family=row[6],
        txn_id=row[7],
    )


def newest_entry_id(tx: Tx, account_id: int, txn_id: str) -> int | None:
    """The id of the newest ledger entry of a shop id (any family)."""
    tx.flush_staged()
    row = tx.one(
        "SELECT max(id) FROM history WHERE account_id = ?" + _ANY_FAMILY + " AND kind IS NOT NULL",
        (account_id, txn_id),
    )
    return None if row is None or row[0] is None else int(row[0])


def move(tx: Tx, account_id: int, *, winner: int, loser: int) -> None:
    """A merge: the loser's holds and the shop's transactions and orders go to the winner
    (ledger rows move with the history, ``storage.rewards.move_history``)."""
    for table in ("holds", "shop_transactions"):
        tx.execute(
            f"UPDATE {table} SET profile_id = ? WHERE account_id = ? AND profile_id = ?",
            (winner, account_id, loser),
        )
