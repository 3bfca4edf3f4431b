-- Verity store, PostgreSQL schema version 3: PERC triage cases, detainers and requests for
-- notification, their events, and service records. Keep in step with sqlite/0003_perc.sql.
-- Times are microseconds since the Unix epoch (UTC).

-- One triage case per issued IAR that PERC took (actionable status, in custody, covered AOR).
CREATE TABLE perc_cases (
    case_id                  TEXT    PRIMARY KEY,
    query_id                 TEXT    NOT NULL UNIQUE REFERENCES queries (query_id),
    person_key               TEXT,
    aor                      TEXT    NOT NULL,
    -- ImmigrationStatus code of the issued answer
    status                   TEXT    NOT NULL,
    rank_points              BIGINT NOT NULL,
    tier                     TEXT    NOT NULL,
    -- verity_policy::Rank with its explanation (factors and records)
    rank_json                TEXT    NOT NULL,
    policy_version           TEXT    NOT NULL,
    -- the subject's expected release from the agency's custody, when known
    expected_release_micros  BIGINT,
    iar_micros               BIGINT NOT NULL,
    -- triage | action | no_action | citizenship_review
    state                    TEXT    NOT NULL,
    -- the first decision on the case (an action prepared, or no action), for the IAR-to-decision metric
    decided_micros           BIGINT,
    -- a claim of U.S. citizenship or indicia noted by PERC staff and not yet resolved
    citizenship_claim_open   BOOLEAN NOT NULL DEFAULT FALSE,
    citizenship_indicia_open BOOLEAN NOT NULL DEFAULT FALSE,
    citizenship_note         TEXT    NOT NULL DEFAULT '',
    created_micros           BIGINT NOT NULL,
    updated_micros           BIGINT NOT NULL,
    version                  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX perc_cases_queue ON perc_cases (state, rank_points, expected_release_micros);
CREATE INDEX perc_cases_person ON perc_cases (person_key);

-- Detainers (I-247A + I-200/I-205) and requests for notification.
CREATE TABLE detainers (
    action_id               TEXT    PRIMARY KEY,
    case_id                 TEXT    NOT NULL REFERENCES perc_cases (case_id),
    -- detainer | request_for_notification
    kind                    TEXT    NOT NULL,
    -- prepared | approved | lodged | honored | declined | lifted | expired
    state                   TEXT    NOT NULL,
    lift_reason             TEXT,
    basis                   TEXT,
    warrant_kind            TEXT,
    prepared_by             TEXT    NOT NULL,
    approved_by             TEXT,
    -- verity_workflow::detainer::EnforcementAction as JSON (the whole action and its history)
    action_json             TEXT    NOT NULL,
    -- the records the probable-cause basis rests on: [[record_id, what it shows], ...]
    evidence_json           TEXT    NOT NULL,
    facility                TEXT    NOT NULL DEFAULT '',
    lodged_micros           BIGINT,
    -- the facility-local time the hold ends (48 business hours past the expected release)
    hold_until_micros       BIGINT,
    release_notified_micros BIGINT,
    created_micros          BIGINT NOT NULL,
    updated_micros          BIGINT NOT NULL,
    -- bumped by every change: transitions compare-and-set on it
    version                 BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX detainers_case ON detainers (case_id);
CREATE INDEX detainers_state ON detainers (state, hold_until_micros);

-- Every transition and every refused attempt: who, why, when.
CREATE TABLE detainer_events (
    event_id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    action_id    TEXT    NOT NULL REFERENCES detainers (action_id),
    at_micros    BIGINT NOT NULL,
    actor        TEXT    NOT NULL,
    -- prepare | approve | lodge | honor | decline | lift | expire | release_notified | served | refused
    kind         TEXT    NOT NULL,
    from_state   TEXT    NOT NULL,
    to_state     TEXT    NOT NULL,
    accepted     BOOLEAN NOT NULL,
    reason       TEXT    NOT NULL
);
CREATE INDEX detainer_events_action ON detainer_events (action_id, event_id);

-- When and how a copy of the detainer was served on the person.
CREATE TABLE service_records (
    service_id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    action_id      TEXT    NOT NULL REFERENCES detainers (action_id),
    served_micros  BIGINT NOT NULL,
    -- in_person | via_facility | mail
    method         TEXT    NOT NULL,
    served_by      TEXT    NOT NULL,
    note           TEXT    NOT NULL,
    recorded_by    TEXT    NOT NULL,
    recorded_micros BIGINT NOT NULL
);
CREATE INDEX service_records_action ON service_records (action_id, service_id);
