-- Retention (SPEC §14): what the pruner needs to forget old rows without ever forgetting
-- an item that its feed still serves (which would then alert again as new).

-- Whether the item hit a watch-list when it was stored. Unmatched items are kept for
-- `retention.items`, matched ones for `retention.matches`; each kind has its own index.
ALTER TABLE items ADD COLUMN matched INTEGER NOT NULL DEFAULT 0;
UPDATE items SET matched = 1 WHERE id IN (SELECT item_id FROM matches);
-- The pruner's scans, oldest first, one per retention.
CREATE INDEX items_unmatched_by_age ON items (first_seen_at, id) WHERE matched = 0;
CREATE INDEX items_matched_by_age ON items (first_seen_at, id) WHERE matched = 1;
-- Whether an item still backs a match (the pruner keeps it then).
CREATE INDEX matches_by_item ON matches (item_id);

-- The item keys of the feed's latest document, as sorted 8-byte hashes: an item whose
-- key is among them is still served and never pruned. NULL until the next document is
-- read, which keeps every item of the feed until then.
ALTER TABLE feeds ADD COLUMN document_keys BLOB;

-- Delivered rows are pruned by age; pending and dead rows are kept.
CREATE INDEX outbox_delivered_by_age ON outbox (delivered_at) WHERE status = 'delivered';

-- The health probe's one row: a write as small as a write can be, made while the
-- database is failing (disk full, I/O error, locked) to learn when it takes writes again.
CREATE TABLE health_probe (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    at  INTEGER NOT NULL
);
