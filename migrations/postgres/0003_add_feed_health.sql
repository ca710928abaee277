-- PostgreSQL's version of ../0003_add_feed_health.sql.
ALTER TABLE feeds ADD COLUMN last_error_class TEXT;
ALTER TABLE feeds ADD COLUMN disabled_at BIGINT;
ALTER TABLE feeds ADD COLUMN disabled_reason TEXT;
ALTER TABLE feeds ADD COLUMN moved_to TEXT;
