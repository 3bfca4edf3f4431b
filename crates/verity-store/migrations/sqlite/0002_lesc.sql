-- Verity store, SQLite schema version 2: LESC queries, answers, review work, deliveries and
-- NCIC hit confirmations. Keep in step with migrations/postgres/0002_lesc.sql.
-- Times are microseconds since the Unix epoch (UTC), so both backends order them alike.

-- One row per accepted query, written (and committed) before the query is acknowledged.
CREATE TABLE queries (
    query_id            TEXT    PRIMARY KEY,
    ori                 TEXT    NOT NULL,
    message_id          TEXT    NOT NULL,
    -- json | nlets | booking
    channel             TEXT    NOT NULL,
    received_micros     INTEGER NOT NULL,
    in_custody          INTEGER NOT NULL,
    -- field office (AOR code) of the encounter's county; NULL when the county is unknown
    aor                 TEXT,
    -- the validated query (verity_workflow::lesc::intake::Iaq as JSON)
    iaq_json            TEXT    NOT NULL,
    -- the Nlets text exactly as received (channel nlets)
    raw_text            TEXT,
    -- received | in_review | answered
    state               TEXT    NOT NULL,
    automatic           INTEGER,
    citizenship_review  INTEGER NOT NULL DEFAULT 0,
    -- ImmigrationStatus code of the proposed or issued answer
    status              TEXT,
    -- the subject the answer is about (engine person key)
    person_key          TEXT,
    -- engine output: candidates with per-field explanations and the decision
    result_json         TEXT,
    -- the issued IAR, full view
    iar_json            TEXT,
    answered_micros     INTEGER,
    answered_by         TEXT,
    assigned_to         TEXT,
    updated_micros      INTEGER NOT NULL,
    -- bumped by every change; review actions compare-and-set on it
    version             INTEGER NOT NULL DEFAULT 0,
    UNIQUE (ori, message_id)
);
CREATE INDEX queries_state ON queries (state, in_custody, received_micros);
CREATE INDEX queries_person ON queries (person_key);
CREATE INDEX queries_aor ON queries (aor, answered_micros);

-- What happened to a query, in order: processed, note, confirm, correct, override, issue, assign.
CREATE TABLE query_events (
    event_id     INTEGER PRIMARY KEY,
    query_id     TEXT    NOT NULL REFERENCES queries (query_id),
    at_micros    INTEGER NOT NULL,
    actor        TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    detail_json  TEXT    NOT NULL
);
CREATE INDEX query_events_query ON query_events (query_id, event_id);

-- One row per recipient of an issued IAR: the requesting agency (ORI) and the field office (AOR).
CREATE TABLE iar_deliveries (
    delivery_id     INTEGER PRIMARY KEY,
    query_id        TEXT    NOT NULL REFERENCES queries (query_id),
    -- agency | field_office
    recipient_kind  TEXT    NOT NULL,
    recipient       TEXT    NOT NULL,
    -- exactly what this recipient may see
    view_json       TEXT    NOT NULL,
    nlets_text      TEXT,
    created_micros  INTEGER NOT NULL,
    fetched_micros  INTEGER,
    UNIQUE (query_id, recipient_kind, recipient)
);
CREATE INDEX iar_deliveries_recipient ON iar_deliveries (recipient_kind, recipient, delivery_id);

-- NCIC hit confirmation requests (YQ) and their answers (YR).
CREATE TABLE hit_requests (
    hit_id            TEXT    PRIMARY KEY,
    ori               TEXT    NOT NULL,
    message_id        TEXT    NOT NULL,
    -- U (10 minutes) | R (1 hour)
    priority          TEXT    NOT NULL,
    received_micros   INTEGER NOT NULL,
    deadline_micros   INTEGER NOT NULL,
    request_json      TEXT    NOT NULL,
    -- open | escalated | answered
    state             TEXT    NOT NULL,
    escalated_micros  INTEGER,
    answered_micros   INTEGER,
    answered_by       TEXT,
    answer_json       TEXT,
    UNIQUE (ori, message_id)
);
CREATE INDEX hit_requests_open ON hit_requests (state, deadline_micros);

-- Field officers belong to one field office.
ALTER TABLE users ADD COLUMN aor TEXT;
