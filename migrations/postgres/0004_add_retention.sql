-- PostgreSQL's version of ../0004_add_retention.sql.
ALTER TABLE items ADD COLUMN matched BIGINT NOT NULL DEFAULT 0;
UPDATE items SET matched = 1 WHERE id IN (SELECT item_id FROM matches);
CREATE INDEX items_unmatched_by_age ON items (first_seen_at, id) WHERE matched = 0;
CREATE INDEX items_matched_by_age ON items (first_seen_at, id) WHERE matched = 1;
CREATE INDEX matches_by_item ON matches (item_id);

ALTER TABLE feeds ADD COLUMN document_keys BYTEA;

CREATE INDEX outbox_delivered_by_age ON outbox (delivered_at) WHERE status = 'delivered';

CREATE TABLE health_probe (
    id  BIGINT  PRIMARY KEY CHECK (id = 1),
    at  BIGINT  NOT NULL
);
