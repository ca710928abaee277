-- PostgreSQL's version of ../0006_add_alert_policy.sql. The outbox's match becomes
-- optional in place, where SQLite rebuilds the table.
ALTER TABLE items ADD COLUMN content TEXT;

CREATE TABLE digests (
    id           TEXT    PRIMARY KEY,
    watchlist    TEXT    NOT NULL,
    period_from  BIGINT  NOT NULL,
    period_to    BIGINT  NOT NULL,
    stories      BIGINT  NOT NULL,
    created_at   BIGINT  NOT NULL
);
CREATE INDEX digests_by_watchlist ON digests (watchlist, period_to);

ALTER TABLE matches ADD COLUMN reason TEXT
    CHECK (reason IN ('backfill', 'muted', 'rate_limited', 'digest'));
ALTER TABLE matches ADD COLUMN awaiting_digest BIGINT NOT NULL DEFAULT 0;
ALTER TABLE matches ADD COLUMN digest_id TEXT;
CREATE INDEX matches_awaiting_digest ON matches (watchlist, created_at) WHERE awaiting_digest = 1;
CREATE INDEX matches_alerted_by_watchlist ON matches (watchlist, created_at) WHERE reason IS NULL;

ALTER TABLE items ADD COLUMN watchlists TEXT;

CREATE TABLE misses (
    item_id    BIGINT  NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    watchlist  TEXT    NOT NULL,
    reason     TEXT    NOT NULL CHECK (reason IN ('excluded', 'query_false')),
    term       TEXT,
    terms      TEXT    NOT NULL,
    PRIMARY KEY (item_id, watchlist)
);

CREATE TABLE mutes (
    watchlist   TEXT    PRIMARY KEY,
    until       BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL
);

ALTER TABLE outbox ALTER COLUMN match_id DROP NOT NULL;
ALTER TABLE outbox ADD COLUMN digest_id TEXT REFERENCES digests(id);
ALTER TABLE outbox ADD CONSTRAINT outbox_match_or_digest
    CHECK ((match_id IS NULL) <> (digest_id IS NULL));
ALTER TABLE outbox ADD CONSTRAINT outbox_digest_id_webhook_stage_key
    UNIQUE (digest_id, webhook, stage);
CREATE INDEX outbox_by_digest ON outbox (digest_id) WHERE digest_id IS NOT NULL;
