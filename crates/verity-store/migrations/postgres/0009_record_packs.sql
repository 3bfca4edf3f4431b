-- Verity store, PostgreSQL schema version 9: record packs beside record digests.
-- Keep in step with migrations/sqlite/0009_record_packs.sql (the reasons are written there).
ALTER TABLE record_digests ADD COLUMN records_packed BYTEA;
