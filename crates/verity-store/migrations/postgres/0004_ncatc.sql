-- Verity store, PostgreSQL schema version 4: NCATC lead runs, leads, parked persons and field
-- dispositions. Keep in step with migrations/sqlite/0004_ncatc.sql.
-- Times are microseconds since the Unix epoch (UTC), so both backends order them alike.

-- One row per lead run (batch job). A run considers records with from_rev < rev <= to_rev
-- (from_rev 0: a full run); cursor_key is the last person key whose outcome is committed, so an
-- interrupted run resumes after it.
CREATE TABLE lead_runs (
    run_id           TEXT    PRIMARY KEY,
    -- full | incremental
    kind             TEXT    NOT NULL,
    policy_version   TEXT    NOT NULL,
    rules_version    TEXT    NOT NULL,
    started_by       TEXT    NOT NULL,
    started_micros   BIGINT  NOT NULL,
    finished_micros  BIGINT,
    -- running | finished | failed
    state            TEXT    NOT NULL,
    from_rev         BIGINT  NOT NULL,
    to_rev           BIGINT  NOT NULL,
    cursor_key       TEXT,
    -- counters: persons evaluated, leads created/refreshed/withdrawn, parked by reason, ...
    stats_json       TEXT    NOT NULL
);
CREATE INDEX lead_runs_state ON lead_runs (state, started_micros);

-- One lead per person at a time (the partial unique index): the evidence package is the whole
-- basis a field officer acts on.
CREATE TABLE leads (
    lead_id               TEXT    PRIMARY KEY,
    person_key            TEXT    NOT NULL,
    run_id                TEXT    NOT NULL REFERENCES lead_runs (run_id),
    -- the run that last re-checked the lead (same as run_id until a later run refreshes it)
    checked_run_id        TEXT    NOT NULL,
    -- the first rule that matched (metrics group by it); all matched rules are in `rules`
    primary_rule          TEXT    NOT NULL,
    rules                 TEXT    NOT NULL,
    status                TEXT    NOT NULL,
    policy_version        TEXT    NOT NULL,
    -- field office code; NULL = the NCATC analyst queue (location unknown)
    aor                   TEXT,
    -- open | closed | withdrawn
    state                 TEXT    NOT NULL,
    identity_probability  DOUBLE PRECISION NOT NULL,
    subject_name          TEXT    NOT NULL,
    evidence_json         TEXT    NOT NULL,
    created_micros        BIGINT  NOT NULL,
    updated_micros        BIGINT  NOT NULL,
    -- arrested | not_located | not_amenable | us_citizen | already_in_custody | referred
    disposition           TEXT,
    disposition_by        TEXT,
    disposition_micros    BIGINT,
    disposition_note      TEXT,
    withdrawn_reason      TEXT
);
CREATE UNIQUE INDEX leads_one_open_per_person ON leads (person_key) WHERE state = 'open';
CREATE INDEX leads_queue ON leads (state, aor, created_micros);
CREATE INDEX leads_run ON leads (run_id);
CREATE INDEX leads_quality ON leads (primary_rule, aor);

-- Persons a rule matched but nobody should act on now (or who go to citizenship review), per run.
CREATE TABLE lead_parks (
    run_id          TEXT    NOT NULL REFERENCES lead_runs (run_id),
    person_key      TEXT    NOT NULL,
    rules           TEXT    NOT NULL,
    -- verity_policy::ParkReason code, or citizenship_review
    reason          TEXT    NOT NULL,
    detail          TEXT    NOT NULL,
    created_micros  BIGINT  NOT NULL,
    PRIMARY KEY (run_id, person_key)
);
CREATE INDEX lead_parks_reason ON lead_parks (reason);

-- Every disposition recorded on a lead, in order (the lead row keeps the latest).
CREATE TABLE lead_dispositions (
    disposition_id  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lead_id         TEXT    NOT NULL REFERENCES leads (lead_id),
    disposition     TEXT    NOT NULL,
    actor           TEXT    NOT NULL,
    at_micros       BIGINT  NOT NULL,
    note            TEXT    NOT NULL
);
CREATE INDEX lead_dispositions_lead ON lead_dispositions (lead_id, disposition_id);

-- Name-and-birth-date keys of every record that indicates U.S. citizenship, kept by lead runs:
-- a lead whose subject shares such a key with any record goes to citizenship review instead,
-- even when identifiers did not link the records (two people mixed, or a record not linked).
CREATE TABLE lead_citizen_keys (
    citizen_key  TEXT PRIMARY KEY
);

-- The name-and-birth-date keys of each lead's subject, so that citizenship evidence arriving
-- later (even unlinked by identifiers) finds the open leads it bears on.
CREATE TABLE lead_subject_keys (
    citizen_key  TEXT NOT NULL,
    lead_id      TEXT NOT NULL REFERENCES leads (lead_id),
    PRIMARY KEY (citizen_key, lead_id)
);
