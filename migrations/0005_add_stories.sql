-- Stories (SPEC §10): items that carry one event under different links are one story,
-- and a story alerts each watch-list once.

-- Every canonical link a story carries. Until now a story had one link, in
-- stories.canonical_url; an item that joins a story by its text brings its own link, and
-- another feed carrying that link later must find the same story. stories.canonical_url
-- is no longer written (SQLite cannot drop a UNIQUE column); this table is read instead.
CREATE TABLE story_links (
    canonical_url  TEXT    PRIMARY KEY,
    story_id       INTEGER NOT NULL REFERENCES stories(id) ON DELETE CASCADE
) WITHOUT ROWID;
-- A story's links go with it when retention deletes it.
CREATE INDEX story_links_by_story ON story_links (story_id);
INSERT INTO story_links (canonical_url, story_id)
    SELECT canonical_url, id FROM stories WHERE canonical_url IS NOT NULL;

-- The reserved column was never written; the band index below replaces it.
ALTER TABLE stories DROP COLUMN simhash;
-- When an item last joined the story: `wirewatch stories` lists newest activity first.
ALTER TABLE stories ADD COLUMN last_seen_at INTEGER;
UPDATE stories SET last_seen_at = COALESCE(
    (SELECT MAX(first_seen_at) FROM items WHERE items.story_id = stories.id), first_seen_at);
CREATE INDEX stories_by_activity ON stories (last_seen_at);

-- The near-duplicate index: the MinHash band keys of each story's first item that matched
-- a watch-list, within `[stories] window`. A new matching item is compared only with the
-- items it shares a key with. Keyed by (band, item) with no row id: about 20 bytes a row.
CREATE TABLE story_bands (
    band_key  INTEGER NOT NULL,
    item_id   INTEGER NOT NULL,
    PRIMARY KEY (band_key, item_id)
) WITHOUT ROWID;
-- An indexed item's own band keys (8-byte big-endian integers, concatenated), so that the
-- pruner removes exactly its rows once it leaves the window, whatever the fingerprint of
-- a later version would be. NULL for items not in the index.
ALTER TABLE items ADD COLUMN bands BLOB;
CREATE INDEX items_banded_by_age ON items (first_seen_at, id) WHERE bands IS NOT NULL;

-- The highest `escalate` threshold a match's story has reached and been announced at
-- (`watchlist.story_grew`); 0 before any.
ALTER TABLE matches ADD COLUMN escalated INTEGER NOT NULL DEFAULT 0;

-- The outbox gains the event a row carries: stage 0 is the alert itself
-- (`watchlist.match`), stage N the `watchlist.story_grew` event at N feeds. One row per
-- (match, webhook, stage). SQLite cannot change a table's unique constraint in place, so
-- the table is rebuilt with the rows it holds.
CREATE TABLE outbox_staged (
    id               TEXT    PRIMARY KEY,
    match_id         TEXT    NOT NULL REFERENCES matches(id),
    webhook          TEXT    NOT NULL,
    stage            INTEGER NOT NULL DEFAULT 0,
    body             TEXT    NOT NULL,
    status           TEXT    NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_error       TEXT,
    last_status      INTEGER,
    created_at       INTEGER NOT NULL,
    delivered_at     INTEGER,
    leased_until     INTEGER,
    UNIQUE (match_id, webhook, stage)
);
INSERT INTO outbox_staged (id, match_id, webhook, stage, body, status, attempts,
                           next_attempt_at, last_error, last_status, created_at,
                           delivered_at, leased_until)
    SELECT id, match_id, webhook, 0, body, status, attempts, next_attempt_at, last_error,
           last_status, created_at, delivered_at, leased_until
    FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_staged RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_webhook_due ON outbox (webhook, status, next_attempt_at);
CREATE INDEX outbox_delivered_by_age ON outbox (delivered_at) WHERE status = 'delivered';
