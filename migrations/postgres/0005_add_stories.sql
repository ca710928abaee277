-- PostgreSQL's version of ../0005_add_stories.sql. PostgreSQL changes a table's unique
-- constraint in place, where SQLite rebuilds the outbox.
CREATE TABLE story_links (
    canonical_url  TEXT    PRIMARY KEY,
    story_id       BIGINT  NOT NULL REFERENCES stories(id) ON DELETE CASCADE
);
CREATE INDEX story_links_by_story ON story_links (story_id);
INSERT INTO story_links (canonical_url, story_id)
    SELECT canonical_url, id FROM stories WHERE canonical_url IS NOT NULL;

ALTER TABLE stories DROP COLUMN simhash;
ALTER TABLE stories ADD COLUMN last_seen_at BIGINT;
UPDATE stories SET last_seen_at = COALESCE(
    (SELECT MAX(first_seen_at) FROM items WHERE items.story_id = stories.id), first_seen_at);
CREATE INDEX stories_by_activity ON stories (last_seen_at);

CREATE TABLE story_bands (
    band_key  BIGINT  NOT NULL,
    item_id   BIGINT  NOT NULL,
    PRIMARY KEY (band_key, item_id)
);
ALTER TABLE items ADD COLUMN bands BYTEA;
CREATE INDEX items_banded_by_age ON items (first_seen_at, id) WHERE bands IS NOT NULL;

ALTER TABLE matches ADD COLUMN escalated BIGINT NOT NULL DEFAULT 0;

ALTER TABLE outbox ADD COLUMN stage BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox DROP CONSTRAINT outbox_match_id_webhook_key;
ALTER TABLE outbox ADD CONSTRAINT outbox_match_id_webhook_stage_key
    UNIQUE (match_id, webhook, stage);
