-- Verity store, PostgreSQL schema version 7: NCATC sweep keys stored as 64-bit hashes, and
-- biometric enrollments findable by the FIN in their body. Keep in step with
-- migrations/sqlite/0007_ncatc_sweep_hashes.sql.

-- The citizenship sweep keys of lead_citizen_keys, as `verity_store::leads::sweep_key_hash`
-- of the key text: an integer b-tree a quarter the size of the text one, so an incremental
-- lead run's look-ups and inserts touch fewer pages. A hash collision can only add a match
-- (a person sent to citizenship review), never lose one.
CREATE TABLE lead_citizen_hashes (
    key_hash  BIGINT PRIMARY KEY
);

-- The status sweep rows of lead_status_keys: (hash of the full-name-and-birth-date key, id
-- of the status-bearing record holding it).
CREATE TABLE lead_status_hashes (
    key_hash   BIGINT NOT NULL,
    record_id  TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (key_hash, record_id)
);

-- The rows already in the text tables are hashed by the store (SQL cannot compute the hash)
-- the first time an incremental lead run starts (`Store::move_text_sweep_keys`); the text
-- tables stay, empty, for that step.

-- A fingerprint enrollment's FIN links its person even when the enrolling system wrote no FIN
-- (or another identifier) in the record's identity: an incremental lead run follows it to
-- close a person the way a full run does.
CREATE INDEX records_body_fin ON records (((record_json::jsonb) -> 'body' ->> 'fin'))
    WHERE system = 'biometrics';
