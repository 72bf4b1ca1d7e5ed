CREATE TABLE programs (
    account_id INTEGER NOT NULL,
    version INTEGER NOT NULL,
    document TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (account_id, version)
) WITHOUT ROWID;

CREATE TABLE customer_rewards (
    account_id INTEGER NOT NULL,
    profile_id INTEGER NOT NULL,
    points_balance INTEGER NOT NULL DEFAULT 0,
    points_earned INTEGER NOT NULL DEFAULT 0,
    score INTEGER NOT NULL DEFAULT 0,
    spend REAL NOT NULL DEFAULT 0,
    event_count INTEGER NOT NULL DEFAULT 0,
    tier_order INTEGER,
    progress TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (account_id, profile_id)
) WITHOUT ROWID;

CREATE TABLE ledger (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL,
    profile_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    direction TEXT NOT NULL,
    points INTEGER NOT NULL,
    remaining INTEGER NOT NULL,
    reason TEXT NOT NULL,
    campaign_id TEXT,
    campaign_version INTEGER,
    event_id INTEGER,
    balance_before INTEGER NOT NULL,
    balance_after INTEGER NOT NULL,
    expires_at TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX ledger_profile ON ledger (account_id, profile_id, id);
CREATE INDEX ledger_expiring ON ledger (expires_at)
    WHERE remaining > 0 AND expires_at IS NOT NULL;

CREATE TABLE badges (
    account_id INTEGER NOT NULL,
    profile_id INTEGER NOT NULL,
    badge TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    earned_at TEXT NOT NULL,
    PRIMARY KEY (account_id, profile_id, badge)
) WITHOUT ROWID;

CREATE TABLE activities (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL,
    profile_id INTEGER NOT NULL,
    type TEXT NOT NULL,
    campaign_id TEXT,
    points INTEGER NOT NULL DEFAULT 0,
    data TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX activities_profile ON activities (account_id, profile_id, id);
