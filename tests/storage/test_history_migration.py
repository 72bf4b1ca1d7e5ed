"""Migration 0004 folds the ledger and the activities into one history: each ledger entry with
what its activity said, then the activities that moved no points, nothing lost."""

from __future__ import annotations

from typing import Any

import pytest

from kudos.storage.db import Database, Tx, open_database
from kudos.storage.profiles import decode_json, encode

T1, T2 = "2026-11-20T10:00:00.000000Z", "2026-11-21T10:00:00.000000Z"
EXPIRES = "2027-11-20T10:00:00.000000Z"
SILVER = {"tierName": "Silver", "tierOrder": 2, "previousTierOrder": 1}
BRONZE = {"tierName": "Bronze", "tierOrder": 1, "previousTierOrder": 2}
LEDGER = [  # kind, direction, points, remaining, reason, campaign, version, event, before, after
    ("Reward", "+", 20, 20, "Welcome", "welcome", 1, 100, 0, 20, EXPIRES, T1),
    ("TierEntry", "+", 50, 50, "Silver", None, None, None, 20, 70, EXPIRES, T1),
    ("Manual", "-", 30, 0, "refund", None, None, None, 70, 40, None, T2),
]
REVIEWER = {
    "campaignName": "Reviewer",
    "campaignVersion": 1,
    "timesAchieved": 1,
    "score": 5,
    "badge": "Reviewer",
    "eventId": 101,
}
WELCOME = {**REVIEWER, "campaignName": "Welcome", "score": 0, "badge": None, "eventId": 100}
ACTIVITIES = [  # type, campaign, points, data, created
    ("CampaignRewarded", "welcome", 20, WELCOME, T1),
    ("CampaignRewarded", "reviewer", 0, REVIEWER, T1),
    ("TierUpgraded", None, 50, SILVER, T1),
    ("Manual", None, -30, {"reason": "refund"}, T2),
    ("TierDowngraded", None, 0, BRONZE, T2),
]


def migrate_to_version_3(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Database:
    db = open_database(database_url)
    scripts = db.migration_scripts()
    with monkeypatch.context() as patch:
        patch.setattr(db, "migration_scripts", lambda: [s for s in scripts if s[0] <= 3])
        assert db.migrate() == [1, 2, 3]
    return db


def write_old_rows(tx: Tx) -> None:
    for row in LEDGER:
        tx.execute(
            "INSERT INTO ledger (account_id, profile_id, kind, direction, points, remaining,"
            " reason, campaign_id, campaign_version, event_id, balance_before, balance_after,"
            " expires_at, created_at) VALUES (1, 7, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )
    for kind, campaign_id, points, data, created in ACTIVITIES:
        tx.execute(
            "INSERT INTO activities (account_id, profile_id, type, campaign_id, points, data,"
            " created_at) VALUES (1, 7, ?, ?, ?, ?, ?)",
            (kind, campaign_id, points, encode(data), created),
        )


def test_ledger_and_activities_carry_over_into_one_history(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = migrate_to_version_3(database_url, monkeypatch)
    conn = db.connect(writer=True)
    try:
        with Tx(db, conn).transaction() as tx:
            write_old_rows(tx)
    finally:
        conn.close()
    assert db.migrate()[0] == 4  # (and the migrations added since, if any)
    conn = db.connect(writer=False)
    try:
        rows = Tx(db, conn).all(
            "SELECT type, kind, direction, points, remaining, reason, campaign_id,"
            " campaign_version, event_id, balance_after, times, score, badge, data"
            " FROM history ORDER BY id"
        )
    finally:
        conn.close()
    found: list[tuple[Any, ...]] = [
        (*row[:-1], None if row[-1] is None else decode_json(row[-1])) for row in rows
    ]
    _ = None
    assert found == [
        ("CampaignRewarded", "Reward", "+", 20, 20, "Welcome", "welcome", 1, 100, 20, 1, 0, _, _),
        ("TierUpgraded", "TierEntry", "+", 50, 50, "Silver", _, _, _, 70, _, _, _, SILVER),
        ("CampaignRewarded", _, _, 0, 0, "Reviewer", "reviewer", 1, 101, _, 1, 5, "Reviewer", _),
        ("Manual", "Manual", "-", 30, 0, "refund", _, _, _, 40, _, _, _, _),
        ("TierDowngraded", _, _, 0, 0, _, _, _, _, _, _, _, _, BRONZE),
    ]  # fmt: skip
