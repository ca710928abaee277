-- PostgreSQL's version of ../0008_add_leases.sql: which node holds a feed's lease and
-- until when, and which node is sending an outbox row (SPEC §17).
ALTER TABLE feeds ADD COLUMN lease_node TEXT;
ALTER TABLE feeds ADD COLUMN lease_until BIGINT;
ALTER TABLE outbox ADD COLUMN leased_by TEXT;
