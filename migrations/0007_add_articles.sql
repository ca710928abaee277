-- Full text (SPEC §13): the main text of a `full_text` feed's item's linked page, as
-- extracted and matched as the field `article` (at most 64 KiB); NULL when the feed is
-- not `full_text` or the page could not be fetched or read.
ALTER TABLE items ADD COLUMN article TEXT;
