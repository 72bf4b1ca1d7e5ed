-- The event catalog's caps (storage.events): an account's catalog records at most so many event
-- names, and each name at most so many metadata keys. Triggers count the rows as they are
-- inserted (event_catalogs.name_count per account, event_names.key_count per name), so the
-- capped inserts read one counter instead of counting rows, and an upsert that only updates
-- counts nothing. Catalogs already past the caps keep their rows; only new ones are refused.
ALTER TABLE event_names ADD COLUMN key_count INTEGER NOT NULL DEFAULT 0;

UPDATE event_names SET key_count = (
    SELECT count(*) FROM event_keys k
    WHERE k.account_id = event_names.account_id AND k.name = event_names.name
);

CREATE TABLE event_catalogs (
    account_id INTEGER PRIMARY KEY,
    name_count INTEGER NOT NULL
);

INSERT INTO event_catalogs (account_id, name_count)
    SELECT account_id, count(*) FROM event_names GROUP BY account_id;

CREATE TRIGGER event_names_counted AFTER INSERT ON event_names BEGIN INSERT INTO event_catalogs (account_id, name_count) VALUES (NEW.account_id, 1) ON CONFLICT (account_id) DO UPDATE SET name_count = name_count + 1; END;

CREATE TRIGGER event_keys_counted AFTER INSERT ON event_keys BEGIN UPDATE event_names SET key_count = key_count + 1 WHERE account_id = NEW.account_id AND name = NEW.name; END;
