-- One history per customer: every row is an activity (Gameball's /activities), and a row that
-- moves points is also a ledger entry (/transactions, `kind` set). It replaces the ledger and
-- activities tables, which wrote two rows for most rewards. Old rows are carried over: each
-- ledger entry with what its activity said, then the activities that moved no points.
CREATE TABLE history (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL,
    profile_id INTEGER NOT NULL,
    type TEXT NOT NULL,
    kind TEXT,
    direction TEXT,
    points INTEGER NOT NULL DEFAULT 0,
    remaining INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    campaign_id TEXT,
    campaign_version INTEGER,
    event_id INTEGER,
    balance_before INTEGER,
    balance_after INTEGER,
    expires_at TEXT,
    times INTEGER,
    score INTEGER,
    badge TEXT,
    data TEXT,
    created_at TEXT NOT NULL
);

INSERT INTO history (account_id, profile_id, type, kind, direction, points, remaining, reason,
    campaign_id, campaign_version, event_id, balance_before, balance_after, expires_at, times,
    score, badge, data, created_at)
SELECT account_id, profile_id, type, kind, direction, points, remaining, reason, campaign_id,
    campaign_version, event_id, balance_before, balance_after, expires_at, times, score, badge,
    data, created_at
FROM (
    SELECT l.account_id, l.profile_id,
        CASE l.kind WHEN 'Reward' THEN 'CampaignRewarded' WHEN 'TierEntry' THEN 'TierUpgraded'
            ELSE l.kind END AS type,
        l.kind, l.direction, l.points, l.remaining, l.reason, l.campaign_id, l.campaign_version,
        l.event_id, l.balance_before, l.balance_after, l.expires_at,
        json_extract(a.data, '$.timesAchieved') AS times,
        json_extract(a.data, '$.score') AS score,
        json_extract(a.data, '$.badge') AS badge,
        CASE WHEN l.kind = 'TierEntry' THEN a.data END AS data,
        l.created_at, 0 AS source, l.id AS old_id
    FROM ledger l LEFT JOIN activities a ON a.id = (
        SELECT min(m.id) FROM activities m
        WHERE m.account_id = l.account_id AND m.profile_id = l.profile_id
            AND m.created_at = l.created_at AND m.campaign_id IS l.campaign_id
            AND m.type = CASE l.kind WHEN 'Reward' THEN 'CampaignRewarded'
                WHEN 'TierEntry' THEN 'TierUpgraded' ELSE l.kind END
            AND m.points = CASE l.direction WHEN '+' THEN l.points ELSE -l.points END
    )
    UNION ALL
    SELECT a.account_id, a.profile_id, a.type, NULL, NULL, 0, 0,
        json_extract(a.data, '$.campaignName'), a.campaign_id,
        json_extract(a.data, '$.campaignVersion'), json_extract(a.data, '$.eventId'),
        NULL, NULL, NULL,
        json_extract(a.data, '$.timesAchieved'), json_extract(a.data, '$.score'),
        json_extract(a.data, '$.badge'),
        CASE WHEN a.type IN ('TierUpgraded', 'TierDowngraded') THEN a.data END,
        a.created_at, 1, a.id
    FROM activities a WHERE a.points = 0
)
ORDER BY created_at, source, old_id;

DROP TABLE ledger;

DROP TABLE activities;

CREATE INDEX history_profile ON history (account_id, profile_id, id);

CREATE INDEX history_expiring ON history (expires_at)
    WHERE remaining > 0 AND expires_at IS NOT NULL;
