-- Per-webhook delivery state that must survive restarts. A receiver answering 410 Gone
-- disables its webhook until an operator re-enables it (`wirewatch redeliver --webhook`)
-- or changes its configuration, which `config_fingerprint` detects at start-up.
CREATE TABLE webhooks (
    name                TEXT    PRIMARY KEY,
    config_fingerprint  TEXT    NOT NULL,
    disabled_at         INTEGER,          -- NULL = enabled
    disabled_reason     TEXT
);

-- `wirewatch deliveries` and each webhook's worker read one webhook's due rows.
CREATE INDEX outbox_webhook_due ON outbox (webhook, status, next_attempt_at);

-- A claimed row is leased while its request is in flight, apart from its retry time, so
-- that a restarted daemon can release the leases of a process that died (its own
-- previous life) without making rows that wait for a retry due early.
ALTER TABLE outbox ADD COLUMN leased_until INTEGER;
