-- The event catalog's caps (storage.events): an account's catalog records at most so many event
-- names, and each name at most so many metadata keys. Triggers count the rows as they are
-- inserted (event_catalogs.name_count per account, event_names.key_count per name), so the
-- capped inserts read one counter instead of counting rows, and an upsert that only updates
-- counts nothing. Catalogs already past the caps keep their rows; only new ones are refused.
-- (Each trigger body stays on one line: the migration runner splits statements at ";\n".)
ALTER TABLE event_names ADD COLUMN key_count BIGINT NOT NULL DEFAULT 0;

UPDATE event_names n SET key_count = k.keys
    FROM (SELECT account_id, name, count(*) AS keys FROM event_keys GROUP BY account_id, name) k
    WHERE n.account_id = k.account_id AND n.name = k.name;

CREATE TABLE event_catalogs (
    account_id BIGINT PRIMARY KEY,
    name_count BIGINT NOT NULL
);

INSERT INTO event_catalogs (account_id, name_count)
    SELECT account_id, count(*) FROM event_names GROUP BY account_id;

CREATE FUNCTION event_names_counted() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO event_catalogs (account_id, name_count) VALUES (NEW.account_id, 1) ON CONFLICT (account_id) DO UPDATE SET name_count = event_catalogs.name_count + 1; RETURN NULL; END $$;

CREATE TRIGGER event_names_counted AFTER INSERT ON event_names
    FOR EACH ROW EXECUTE FUNCTION event_names_counted();

CREATE FUNCTION event_keys_counted() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN UPDATE event_names SET key_count = key_count + 1 WHERE account_id = NEW.account_id AND name = NEW.name; RETURN NULL; END $$;

CREATE TRIGGER event_keys_counted AFTER INSERT ON event_keys
    FOR EACH ROW EXECUTE FUNCTION event_keys_counted();
