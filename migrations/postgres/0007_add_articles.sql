-- PostgreSQL's version of ../0007_add_articles.sql: the extracted main text of a
-- `full_text` feed's item (SPEC §13), bounded by `extract::MAX_ARTICLE_BYTES`.
ALTER TABLE items ADD COLUMN article TEXT;
