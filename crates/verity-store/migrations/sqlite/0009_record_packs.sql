-- Verity store, SQLite schema version 9: record packs beside record digests.
-- Keep in step with migrations/postgres/0009_record_packs.sql.

-- Each digest chunk also holds its records as stored (rev, id, JSON), zstd-compressed
-- (`verity_store::scan::encode_record_pack`): about 60 bytes a record instead of 560 in the
-- records table. A full lead run reads the records of the persons it evaluates from these
-- packs, in the same sequential pass as the digests, instead of from the records table by
-- rev (random reads over the whole table: at 10M people the table no longer fits in memory).
-- NULL for chunks written before this version; a full lead run fills them in once.
ALTER TABLE record_digests ADD COLUMN records_packed BLOB;
