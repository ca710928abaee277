-- Alert policy (SPEC §11) and backtests (SPEC §12): why a match did or did not alert,
-- digests, mutes, and the whole text each item was matched on.

-- The text matched as `content` (content:encoded, Atom content, JSON Feed content), so that
-- `explain` and `backtest` read exactly what the matcher read. NULL when the item had none.
ALTER TABLE items ADD COLUMN content TEXT;

-- A digest: the stories of one watch-list held back over one period, sent as one outbox
-- row per webhook (per part, for chat services that need several messages).
CREATE TABLE digests (
    id           TEXT    PRIMARY KEY,      -- UUIDv7
    watchlist    TEXT    NOT NULL,
    period_from  INTEGER NOT NULL,         -- unix seconds
    period_to    INTEGER NOT NULL,
    stories      INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
);
-- The next digest's period starts where the watch-list's last one ended.
CREATE INDEX digests_by_watchlist ON digests (watchlist, period_to);

-- Why a stored match did not alert on its own: NULL when it did (or its watch-list has no
-- webhooks), else 'backfill', 'muted', 'rate_limited' or 'digest'.
ALTER TABLE matches ADD COLUMN reason TEXT
    CHECK (reason IN ('backfill', 'muted', 'rate_limited', 'digest'));
-- 1 while the match waits for its watch-list's next digest.
ALTER TABLE matches ADD COLUMN awaiting_digest INTEGER NOT NULL DEFAULT 0;
-- The digest that carried it. Not a foreign key: retention prunes digests without
-- touching (or indexing for) the matches they carried, and a digest id that is gone
-- still says the match went out in one.
ALTER TABLE matches ADD COLUMN digest_id TEXT;
-- What the digest builder reads, and the rate limit's count of single alerts.
CREATE INDEX matches_awaiting_digest ON matches (watchlist, created_at) WHERE awaiting_digest = 1;
CREATE INDEX matches_alerted_by_watchlist ON matches (watchlist, created_at) WHERE reason IS NULL;

-- The watch-lists that matched the item (a JSON array of names; NULL for none). An item
-- that matched a watch-list whose match its story already held is a sighting of that
-- story: the reason 'same_story', read from this and the story's match rather than
-- stored as a row of its own (every copy of a syndicated story would be one).
ALTER TABLE items ADD COLUMN watchlists TEXT;

-- Items whose terms hit a watch-list that still refused them, with the reason:
-- 'excluded' (with the exclude term that vetoed it) or 'query_false'. One small row per
-- item and watch-list, gone with the item when retention prunes it.
CREATE TABLE misses (
    item_id    INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    watchlist  TEXT    NOT NULL,
    reason     TEXT    NOT NULL CHECK (reason IN ('excluded', 'query_false')),
    term       TEXT,                       -- the exclude term, for 'excluded'
    terms      TEXT    NOT NULL,           -- JSON array of the terms that hit
    PRIMARY KEY (item_id, watchlist)
) WITHOUT ROWID;

-- `wirewatch mute`: until when a watch-list is muted. Read by every commit, so a mute
-- takes effect at once and survives reloads and restarts.
CREATE TABLE mutes (
    watchlist   TEXT    PRIMARY KEY,
    until       INTEGER NOT NULL,          -- unix seconds
    created_at  INTEGER NOT NULL
);

-- The outbox carries digests too: a row is either a match's (alert or story_grew, by
-- stage) or a digest's (stage = its part number). Rebuilt, as SQLite cannot relax a
-- NOT NULL column in place.
CREATE TABLE outbox_any (
    id               TEXT    PRIMARY KEY,
    match_id         TEXT    REFERENCES matches(id),
    digest_id        TEXT    REFERENCES digests(id),
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
    CHECK ((match_id IS NULL) <> (digest_id IS NULL)),
    UNIQUE (match_id, webhook, stage),
    UNIQUE (digest_id, webhook, stage)
);
INSERT INTO outbox_any (id, match_id, webhook, stage, body, status, attempts,
                        next_attempt_at, last_error, last_status, created_at,
                        delivered_at, leased_until)
    SELECT id, match_id, webhook, stage, body, status, attempts, next_attempt_at,
           last_error, last_status, created_at, delivered_at, leased_until
    FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_any RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_webhook_due ON outbox (webhook, status, next_attempt_at);
CREATE INDEX outbox_delivered_by_age ON outbox (delivered_at) WHERE status = 'delivered';
CREATE INDEX outbox_by_digest ON outbox (digest_id) WHERE digest_id IS NOT NULL;
