-- What the scheduler needs to be polite and what `wirewatch feeds` shows about a feed's
-- health.

-- The class of the last failure (network, timeout, http_status, too_large, forbidden,
-- not_a_feed, malformed), so errors can be counted and filtered without parsing text.
ALTER TABLE feeds ADD COLUMN last_error_class TEXT;
-- A feed answering 410 Gone is not polled again until its URL changes in the config.
ALTER TABLE feeds ADD COLUMN disabled_at INTEGER;
ALTER TABLE feeds ADD COLUMN disabled_reason TEXT;
-- Where a permanent redirect (301/308) moved the feed, once the target passed the
-- network guard; used instead of the configured URL until the configured URL changes.
ALTER TABLE feeds ADD COLUMN moved_to TEXT;
