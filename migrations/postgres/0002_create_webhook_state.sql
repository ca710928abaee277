-- PostgreSQL's version of ../0002_create_webhook_state.sql.
CREATE TABLE webhooks (
    name                TEXT    PRIMARY KEY,
    config_fingerprint  TEXT    NOT NULL,
    disabled_at         BIGINT,
    disabled_reason     TEXT
);

CREATE INDEX outbox_webhook_due ON outbox (webhook, status, next_attempt_at);

ALTER TABLE outbox ADD COLUMN leased_until BIGINT;
