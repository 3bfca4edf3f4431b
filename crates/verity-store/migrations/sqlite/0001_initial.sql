-- Verity store, SQLite schema version 1. Keep in step with migrations/postgres/0001_initial.sql:
-- same tables, columns and meaning; only types and trigger syntax differ.

-- Source records: the whole record as JSON plus the columns that lookups filter on.
-- `rev` is assigned from record_rev_head inside the writing transaction, so revs become
-- visible in increasing order and an incremental job can resume from the last rev it saw.
CREATE TABLE records (
    rev          INTEGER PRIMARY KEY,
    record_id    TEXT    NOT NULL UNIQUE,
    system       TEXT    NOT NULL,
    family_name  TEXT    NOT NULL,
    given_name   TEXT    NOT NULL,
    dob          TEXT,
    a_number     TEXT,
    fin          TEXT,
    fbi_number   TEXT,
    ssn          TEXT,
    passport     TEXT,
    state_id     TEXT,
    region       TEXT,
    county       TEXT,
    record_json  TEXT    NOT NULL
);
-- Indexes serve the store's own lookups only (by system, by identifier). Name, birth date
-- and place are columns for ad-hoc SQL, not indexed: candidate search by name runs on the
-- in-memory candidate index, and two more b-trees halved SQLite import speed (measured).
CREATE INDEX records_system ON records (system);
CREATE INDEX records_a_number ON records (a_number) WHERE a_number IS NOT NULL;
CREATE INDEX records_fin ON records (fin) WHERE fin IS NOT NULL;
CREATE INDEX records_fbi_number ON records (fbi_number) WHERE fbi_number IS NOT NULL;
CREATE INDEX records_ssn ON records (ssn) WHERE ssn IS NOT NULL;
CREATE INDEX records_passport ON records (passport) WHERE passport IS NOT NULL;
CREATE INDEX records_state_id ON records (state_id) WHERE state_id IS NOT NULL;

CREATE TABLE record_rev_head (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    rev INTEGER NOT NULL
);
INSERT INTO record_rev_head (id, rev) VALUES (1, 0);

CREATE TABLE agencies (
    ori           TEXT    PRIMARY KEY,
    name          TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    county        TEXT    NOT NULL,
    field_office  TEXT    NOT NULL,
    api_key_hash  TEXT    UNIQUE,
    active        INTEGER NOT NULL
);

CREATE TABLE users (
    username       TEXT    PRIMARY KEY,
    display_name   TEXT    NOT NULL,
    password_hash  TEXT    NOT NULL,
    roles          TEXT    NOT NULL,
    agency_ori     TEXT    REFERENCES agencies (ori),
    active         INTEGER NOT NULL,
    created_at     TEXT    NOT NULL
);

CREATE TABLE sessions (
    token_hash          TEXT    PRIMARY KEY,
    username            TEXT    NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    created_at_micros   INTEGER NOT NULL,
    expires_at_micros   INTEGER NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at_micros);

-- The audit log is a hash chain (see verity_model::audit). event_json is the hashed content;
-- actor, agency, purpose and action repeat parts of it for filtering, and verification checks
-- that they agree with it.
CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY,
    at          TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    agency      TEXT,
    purpose     TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    event_json  TEXT    NOT NULL,
    prev_hash   TEXT    NOT NULL,
    hash        TEXT    NOT NULL
);
CREATE INDEX audit_log_actor ON audit_log (actor, seq);

-- One row: the newest entry's seq and hash. A removed tail no longer matches it.
CREATE TABLE audit_head (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seq   INTEGER NOT NULL,
    hash  TEXT    NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Append-only, also against SQL typed by hand: the chain detects tampering, these refuse it.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

CREATE TABLE meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
