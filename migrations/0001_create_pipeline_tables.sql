-- The tables of the whole pipeline. The unique constraints do the de-duplication:
-- writers insert with ON CONFLICT DO NOTHING and let the rows affected decide what is new.

-- Poll state per configured feed, keyed by the feed's name in the config, so that a
-- restart resumes with the same validators and due times.
CREATE TABLE feeds (
    id               INTEGER PRIMARY KEY,
    name             TEXT    NOT NULL UNIQUE,
    url              TEXT    NOT NULL,
    title            TEXT,
    etag             TEXT,
    last_modified    TEXT,
    next_due_at      INTEGER,            -- unix seconds; NULL = due now
    last_fetch_at    INTEGER,
    last_success_at  INTEGER,            -- NULL until the first successful fetch (backfill)
    failure_count    INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    last_error_at    INTEGER
);

-- A story is what an alert is about: one canonical link, however many feeds carry it.
-- canonical_url is NULL for items without a link; simhash is reserved for near-duplicate
-- clustering, which groups such items into one story by text similarity.
CREATE TABLE stories (
    id              INTEGER PRIMARY KEY,
    canonical_url   TEXT UNIQUE,
    simhash         INTEGER,
    first_seen_at   INTEGER NOT NULL
);

-- One row per item per feed; (feed_id, item_key) is the item's identity (SPEC §4), so a
-- re-published or re-ordered item conflicts and is not new.
CREATE TABLE items (
    id              INTEGER PRIMARY KEY,
    feed_id         INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
    item_key        TEXT    NOT NULL,
    story_id        INTEGER NOT NULL REFERENCES stories(id),
    title           TEXT    NOT NULL,
    url             TEXT,
    published_at    INTEGER,
    summary         TEXT    NOT NULL,
    authors         TEXT    NOT NULL,   -- JSON array
    categories      TEXT    NOT NULL,   -- JSON array
    language        TEXT,
    first_seen_at   INTEGER NOT NULL,
    UNIQUE (feed_id, item_key)
);
-- "also seen in": every sighting of a story, in feed order.
CREATE INDEX items_by_story ON items (story_id);

-- One alert per story and watch-list: the unique constraint is the dedup across feeds.
CREATE TABLE matches (
    id              TEXT    PRIMARY KEY,   -- the alert_id of the payload (UUIDv7)
    story_id        INTEGER NOT NULL REFERENCES stories(id),
    watchlist       TEXT    NOT NULL,
    item_id         INTEGER NOT NULL REFERENCES items(id),
    terms           TEXT    NOT NULL,      -- JSON array of canonical terms
    highlights      TEXT    NOT NULL,      -- JSON array
    created_at      INTEGER NOT NULL,
    UNIQUE (story_id, watchlist)
);
-- `wirewatch matches --since`: newest first.
CREATE INDEX matches_by_time ON matches (created_at);

-- The durable outbox: one row per (match, webhook), i.e. per story x watch-list x webhook,
-- committed in the same transaction as the match. The row's id is the `webhook-id`
-- header, the same on every attempt. The body is frozen at insert so every retry sends
-- the same bytes.
CREATE TABLE outbox (
    id               TEXT    PRIMARY KEY,
    match_id         TEXT    NOT NULL REFERENCES matches(id),
    webhook          TEXT    NOT NULL,
    body             TEXT    NOT NULL,
    status           TEXT    NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,   -- unix seconds; also the lease while a send is in flight
    last_error       TEXT,
    last_status      INTEGER,
    created_at       INTEGER NOT NULL,
    delivered_at     INTEGER,
    UNIQUE (match_id, webhook)
);
-- The worker's claim query: due pending rows, oldest first.
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
