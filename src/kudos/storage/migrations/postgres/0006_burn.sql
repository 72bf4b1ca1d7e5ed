-- The burn side (services.burn): holds, the shop's transactions and orders, and what ties
-- ledger entries to them. A ledger entry (a history row that moves points) now names the
-- shop's transaction or order it belongs to (`txn_family`, `txn_id`), and a credit may be
-- pending (`pending_until`: its points are not in the balance, nor spendable, until then;
-- its balances before and after are written when it becomes available).
ALTER TABLE history ADD COLUMN txn_family TEXT;

ALTER TABLE history ADD COLUMN txn_id TEXT;

ALTER TABLE history ADD COLUMN pending_until TIMESTAMPTZ;

CREATE INDEX history_txn ON history (account_id, txn_family, txn_id)
    WHERE txn_id IS NOT NULL;

CREATE INDEX history_pending ON history (pending_until)
    WHERE pending_until IS NOT NULL;

-- A customer's pending points (the balance, customer.profile.updated): an index of those rows only.
CREATE INDEX history_pending_owner ON history (account_id, profile_id)
    WHERE pending_until IS NOT NULL;

-- Points reserved for a checkout: out of the available balance while active, consumed once
-- by a redeem or an order, released by DELETE or when `expires_at` passes.
CREATE TABLE holds (
    account_id BIGINT NOT NULL,
    reference TEXT NOT NULL,
    profile_id BIGINT NOT NULL,
    customer_id TEXT NOT NULL,
    points BIGINT NOT NULL,
    amount TEXT NOT NULL,
    state TEXT NOT NULL,
    used_by TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (account_id, reference)
);
CREATE INDEX holds_profile ON holds (account_id, profile_id) WHERE state = 'active';
-- The hourly purge of holds whose time ran out 30 days ago.
CREATE INDEX holds_expiry ON holds (expires_at);

-- The shop's transactions (`family` transaction: redeem, cashback, manual, refund) and orders
-- (`family` order), each id once per account and family: the request it came with (a hash,
-- for 9004) and the answer a repeat gets; what an order or redeem can still give back.
CREATE TABLE shop_transactions (
    account_id BIGINT NOT NULL,
    family TEXT NOT NULL,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    profile_id BIGINT NOT NULL,
    customer_id TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    answer TEXT NOT NULL,
    amount TEXT NOT NULL,
    points_earned BIGINT NOT NULL DEFAULT 0,
    points_redeemed BIGINT NOT NULL DEFAULT 0,
    refunded_amount TEXT NOT NULL DEFAULT '0',
    points_clawed BIGINT NOT NULL DEFAULT 0,
    points_returned BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (account_id, family, id)
);
CREATE INDEX shop_transactions_profile ON shop_transactions (account_id, profile_id);

-- An order id whose `place_order` campaigns already ran (from POST /orders or from a
-- `place_order` event carrying it): they never run twice for one order.
CREATE TABLE order_claims (
    account_id BIGINT NOT NULL,
    order_id TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (account_id, order_id)
);

-- A replayed Idempotency-Key on the burn routes answers what the first request did.
ALTER TABLE idempotency_keys ADD COLUMN answer TEXT;

-- A profile's customerIds in the order they were linked, from the index alone: with the
-- order by created_at, SQLite (without statistics) read every customerId of the account.
DROP INDEX customer_ids_profile;

CREATE INDEX customer_ids_profile ON customer_ids (account_id, profile_id, created_at);
