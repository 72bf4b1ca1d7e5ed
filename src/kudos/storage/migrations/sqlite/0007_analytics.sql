-- Analytics (kudos.analytics): what ingest keeps besides the events so that queries read a
-- few small rows instead of scanning them. Every table can be rebuilt from the raw events
-- (`kudos analytics rebuild`). Times: `hour` is a UTC hour (Unix seconds / 3600), `day` a day
-- of the account's time zone (days since 1970-01-01 there). `shard` spreads one hot counter
-- over the processes that write it (0 on SQLite, one writer).
ALTER TABLE accounts ADD COLUMN timezone TEXT NOT NULL DEFAULT 'UTC';

-- Events per name and hour ('' for every name).
CREATE TABLE analytics_hours (
    account_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    hour INTEGER NOT NULL,
    shard INTEGER NOT NULL,
    events INTEGER NOT NULL,
    PRIMARY KEY (account_id, name, hour, shard)
) WITHOUT ROWID;

-- The numbers of each metadata key per name and hour: how many, their sum, least and most.
CREATE TABLE analytics_numbers (
    account_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    key TEXT NOT NULL,
    hour INTEGER NOT NULL,
    shard INTEGER NOT NULL,
    n INTEGER NOT NULL,
    total REAL NOT NULL,
    low REAL NOT NULL,
    high REAL NOT NULL,
    PRIMARY KEY (account_id, name, key, hour, shard)
) WITHOUT ROWID;

-- One row per customer (profile), event name and local day they sent it ('' for any name),
-- with the previous such day (NULL: their first).
CREATE TABLE activity_days (
    account_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    day INTEGER NOT NULL,
    profile_id INTEGER NOT NULL,
    prev INTEGER,
    PRIMARY KEY (account_id, name, day, profile_id)
) WITHOUT ROWID;
CREATE INDEX activity_days_profile ON activity_days (account_id, profile_id, name, day);

-- The activity rows counted by day and gap (days since the previous; 0: the first; at most
-- analytics.keep.MAX_GAP): distinct customers over any window of days read from these.
CREATE TABLE activity_gaps (
    account_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    day INTEGER NOT NULL,
    gap INTEGER NOT NULL,
    shard INTEGER NOT NULL,
    customers INTEGER NOT NULL,
    PRIMARY KEY (account_id, name, day, gap, shard)
) WITHOUT ROWID;

-- Points moved per hour by ledger kind and direction (available credits and debits).
CREATE TABLE ledger_hours (
    account_id INTEGER NOT NULL,
    hour INTEGER NOT NULL,
    kind TEXT NOT NULL,
    direction TEXT NOT NULL,
    shard INTEGER NOT NULL,
    points INTEGER NOT NULL,
    entries INTEGER NOT NULL,
    PRIMARY KEY (account_id, hour, kind, direction, shard)
) WITHOUT ROWID;

-- Customers (profiles not merged away) by the hour they were created: enrolled at a moment
-- are those created before it (a merge takes the absorbed profile back out of its hour).
CREATE TABLE members_hours (
    account_id INTEGER NOT NULL,
    hour INTEGER NOT NULL,
    shard INTEGER NOT NULL,
    members INTEGER NOT NULL,
    PRIMARY KEY (account_id, hour, shard)
) WITHOUT ROWID;
INSERT INTO members_hours (account_id, hour, shard, members)
    SELECT account_id, CAST(strftime('%s', substr(created_at, 1, 19)) AS INTEGER) / 3600, 0,
    count(*) FROM profiles WHERE merged_into IS NULL GROUP BY 1, 2;

-- Campaign outcomes per hour: achievements, points given, and requests a cap stopped.
CREATE TABLE campaign_hours (
    account_id INTEGER NOT NULL,
    campaign_id TEXT NOT NULL,
    hour INTEGER NOT NULL,
    shard INTEGER NOT NULL,
    achievements INTEGER NOT NULL,
    points INTEGER NOT NULL,
    cap_hits INTEGER NOT NULL,
    PRIMARY KEY (account_id, campaign_id, hour, shard)
) WITHOUT ROWID;

-- Accounts whose analytics miss some of their events (stored before this migration, or
-- written under another time zone) until `kudos analytics rebuild` runs: answers say so.
CREATE TABLE analytics_stale (
    account_id INTEGER PRIMARY KEY,
    reason TEXT NOT NULL
);
INSERT INTO analytics_stale (account_id, reason)
    SELECT DISTINCT account_id, 'events stored before analytics existed' FROM events;

-- Raw scans (filters, breakdowns, percentiles, funnels) read one name's events over a range.
CREATE INDEX events_name_time ON events (account_id, name, received_at, profile_id);

-- The merged profiles of an account (a raw scan counts each customer as the profile now).
CREATE INDEX profiles_merged ON profiles (account_id) WHERE merged_into IS NOT NULL;

-- The customers a campaign rewarded in a range (analytics of a campaign), from the index alone.
CREATE INDEX history_campaign ON history (account_id, campaign_id, created_at, profile_id)
    WHERE type = 'CampaignRewarded';

-- Customers per tier (analytics summary), from the index alone.
CREATE INDEX customer_rewards_tier ON customer_rewards (account_id, tier_order);
