-- Verity store, PostgreSQL schema version 8: record digests for full NCATC lead runs.
-- Keep in step with migrations/sqlite/0008_record_digests.sql.

-- Per insert of records, one chunk: each inserted record's rev, id, system, hashed identifiers
-- and hashed sweep keys (`verity_store::scan::encode_digests`). A full lead run reads these few
-- large rows instead of every record's JSON. A chunk is written after its records' sweep keys,
-- so a chunk means those keys are stored; records without a chunk (stored before this version,
-- or an insert interrupted between its steps) are read from their JSON by the next full run,
-- which then writes their keys and chunk. Records are never updated or deleted, so a chunk
-- stays true.
CREATE TABLE record_digests (
    first_rev  BIGINT PRIMARY KEY,
    last_rev   BIGINT NOT NULL,
    records    BIGINT NOT NULL,
    digest     BYTEA  NOT NULL
);
