"""The event catalog read back: one bounded page at a time, in name order.

What the catalog records, and its caps, are ``storage.events``'; ``services.ingest`` counts
each write batch into it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import msgspec

from kudos import errors
from kudos.domain.model import Account, iso
from kudos.domain.payload import MAX_EVENT_NAME, check_text
from kudos.storage import events as event_rows
from kudos.storage.db import Row, Tx

# The caps are storage's (it enforces them); exported here for the API's documents.
from kudos.storage.events import MAX_CATALOG_KEYS as MAX_CATALOG_KEYS
from kudos.storage.events import MAX_CATALOG_NAMES as MAX_CATALOG_NAMES

MAX_CATALOG_PAGE = 200
DEFAULT_CATALOG_PAGE = 100
# JSON bytes one page carries at most (a page always holds one name: at most 255 keys).
MAX_CATALOG_PAGE_BYTES = 1024 * 1024
# Key rows read per query (names whose keys fit together are read together).
KEYS_PER_QUERY = 1024


def page(
    tx: Tx, account: Account, *, limit: int = DEFAULT_CATALOG_PAGE, after: str | None = None
) -> dict[str, Any]:
    """One page of the account's event catalog in name order: each name sent, with its
    metadata keys and their types, counts, first and last seen. At most ``limit`` names and
    about ``MAX_CATALOG_PAGE_BYTES`` (but always one name); ``nextAfter`` continues."""
    _check_paging(limit, after)
    names = event_rows.names_page(tx, account.id, after=after, limit=limit + 1)
    events = _fitting(_entries(tx, account.id, names[:limit]), MAX_CATALOG_PAGE_BYTES)
    more = len(events) < len(names)
    return {
        "events": events,
        "nextAfter": events[-1]["name"] if more else None,
        "truncated": event_rows.names_full(tx, account.id),
    }


def _check_paging(limit: int, after: str | None) -> None:
    if not 1 <= limit <= MAX_CATALOG_PAGE:
        raise errors.InvalidValue(f"Invalid value: 'limit' must be 1 to {MAX_CATALOG_PAGE}.")
    if after is not None:
        check_text(after, "after")
        if not 0 < len(after) <= MAX_EVENT_NAME:
            raise errors.InvalidValue(
                f"Invalid value: 'after' must be 1 to {MAX_EVENT_NAME} characters."
            )


def _entries(tx: Tx, account_id: int, names: list[Row]) -> Iterator[dict[str, Any]]:
    """Each name's entry, its keys read for a group of names at a time (lazily: a page that
    is full reads no more)."""
    for group in _key_groups(names):
        keys = _keys_by_name(tx, account_id, group)
        for name, count, first, last, key_count in group:
            yield {
                "name": name,
                "count": count,
                "firstSeen": iso(first),
                "lastSeen": iso(last),
                "keys": keys.get(name, []),
                "keysTruncated": key_count >= MAX_CATALOG_KEYS,
            }


def _key_groups(names: list[Row]) -> Iterator[list[Row]]:
    """Consecutive names with at most ``KEYS_PER_QUERY`` key rows between them (or one)."""
    group: list[Row] = []
    rows = 0
    for row in names:
        count = min(int(row[4]), MAX_CATALOG_KEYS)
        if group and rows + count > KEYS_PER_QUERY:
            yield group
            group, rows = [], 0
        group.append(row)
        rows += count
    if group:
        yield group


def _keys_by_name(tx: Tx, account_id: int, group: list[Row]) -> dict[str, list[dict[str, Any]]]:
    """The keys of these names, each name's first ``MAX_CATALOG_KEYS`` in key order (more
    exist only for names recorded before the cap did)."""
    within = [row[0] for row in group if row[4] <= MAX_CATALOG_KEYS]
    rows = event_rows.keys_of(tx, account_id, within) if within else []
    for row in group:
        if row[4] > MAX_CATALOG_KEYS:
            rows += event_rows.first_keys(tx, account_id, row[0])
    by_name: dict[str, list[dict[str, Any]]] = {}
    for name, key, kind, count, first, last in rows:
        by_name.setdefault(name, []).append(
            {
                "key": key,
                "type": kind,
                "count": count,
                "firstSeen": iso(first),
                "lastSeen": iso(last),
            }
        )
    return by_name


def _fitting(entries: Iterable[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    """The entries while their JSON array stays within ``budget`` bytes; the first always."""
    page: list[dict[str, Any]] = []
    size = 1  # "[", then each entry and the "," or "]" after it
    for entry in entries:
        size += len(msgspec.json.encode(entry)) + 1
        if page and size > budget:
            break
        page.append(entry)
    return page
