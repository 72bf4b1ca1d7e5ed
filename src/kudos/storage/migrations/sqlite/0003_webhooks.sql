CREATE TABLE webhook_endpoints (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL,
    url TEXT NOT NULL,
    topics TEXT NOT NULL,
    secret_encrypted TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    disabled_reason TEXT,
    failing_since TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX webhook_endpoints_account ON webhook_endpoints (account_id, id);

CREATE TABLE webhook_messages (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL,
    endpoint_id INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    retries INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_status INTEGER,
    last_error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX webhook_messages_message ON webhook_messages (message_id);
CREATE INDEX webhook_messages_endpoint ON webhook_messages (endpoint_id, id);
CREATE INDEX webhook_messages_due ON webhook_messages (endpoint_id, next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX webhook_messages_finished ON webhook_messages (updated_at)
    WHERE state <> 'pending';

CREATE TABLE webhook_attempts (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL,
    endpoint_id INTEGER NOT NULL,
    message_row INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    attempted_at TEXT NOT NULL,
    status_code INTEGER,
    latency_ms INTEGER NOT NULL,
    error TEXT,
    outcome TEXT NOT NULL
);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, id);
CREATE INDEX webhook_attempts_message ON webhook_attempts (message_row);
