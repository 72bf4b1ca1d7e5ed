CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    api_key_hash TEXT NOT NULL UNIQUE,
    api_key_hint TEXT NOT NULL,
    secret_key_hash TEXT NOT NULL,
    secret_key_encrypted TEXT NOT NULL,
    channel_merging TEXT NOT NULL DEFAULT 'off',
    high_security INTEGER NOT NULL DEFAULT 0,
    rate_limit TEXT NOT NULL DEFAULT 'gameball',
    created_at TEXT NOT NULL,
    keys_rotated_at TEXT
);

CREATE TABLE profiles (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    email TEXT,
    mobile TEXT,
    email_key TEXT,
    mobile_key TEXT,
    attributes TEXT NOT NULL DEFAULT '{}',
    merged_into INTEGER
);
CREATE UNIQUE INDEX profiles_email_key ON profiles (account_id, email_key)
    WHERE email_key IS NOT NULL AND merged_into IS NULL;
CREATE UNIQUE INDEX profiles_mobile_key ON profiles (account_id, mobile_key)
    WHERE mobile_key IS NOT NULL AND merged_into IS NULL;

CREATE TABLE customer_ids (
    account_id INTEGER NOT NULL,
    customer_id TEXT NOT NULL,
    profile_id INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (account_id, customer_id)
) WITHOUT ROWID;
CREATE INDEX customer_ids_profile ON customer_ids (account_id, profile_id);

CREATE TABLE profile_merges (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL,
    winner_id INTEGER NOT NULL,
    loser_id INTEGER NOT NULL,
    identifier_kind TEXT NOT NULL,
    identifier TEXT NOT NULL,
    customer_ids TEXT NOT NULL,
    merged_at TEXT NOT NULL
);
CREATE INDEX profile_merges_winner ON profile_merges (account_id, winner_id);

CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL,
    profile_id INTEGER NOT NULL,
    customer_id TEXT NOT NULL,
    name TEXT NOT NULL,
    metadata TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE INDEX events_customer ON events (account_id, customer_id, id);

CREATE TABLE event_names (
    account_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    count INTEGER NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    PRIMARY KEY (account_id, name)
) WITHOUT ROWID;

CREATE TABLE event_keys (
    account_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    key TEXT NOT NULL,
    type TEXT NOT NULL,
    count INTEGER NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    PRIMARY KEY (account_id, name, key)
) WITHOUT ROWID;

CREATE TABLE event_daily (
    account_id INTEGER NOT NULL,
    day TEXT NOT NULL,
    name TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (account_id, day, name)
) WITHOUT ROWID;

CREATE TABLE idempotency_keys (
    account_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (account_id, key)
) WITHOUT ROWID;
