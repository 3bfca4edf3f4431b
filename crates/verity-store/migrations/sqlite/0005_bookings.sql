-- Verity store, SQLite schema version 5: booking ten-print transactions and their results.
-- Keep in step with migrations/postgres/0005_bookings.sql.
-- Times are microseconds since the Unix epoch (UTC), so both backends order them alike.

-- One row per accepted booking, written (and committed) before the booking is acknowledged.
CREATE TABLE bookings (
    booking_id       TEXT    PRIMARY KEY,
    ori              TEXT    NOT NULL,
    -- 1.009 TCN: the agency's transaction control number; a repeat is the same booking
    tcn              TEXT    NOT NULL,
    received_micros  INTEGER NOT NULL,
    -- the ANSI/NIST-ITL transaction exactly as received
    transaction_bytes BLOB   NOT NULL,
    -- received | identified | done | failed
    state            TEXT    NOT NULL,
    -- the enrolled FIN the 1:N search identified (NULL: no biometric match)
    fin              TEXT,
    -- calibrated probability that the probe and the FIN are the same person
    score            REAL,
    -- the LESC query started from the booking
    query_id         TEXT,
    -- the submission result as answered to the agency (JSON)
    result_json      TEXT,
    -- why processing failed (state failed)
    error            TEXT,
    updated_micros   INTEGER NOT NULL,
    UNIQUE (ori, tcn)
);
CREATE INDEX bookings_state ON bookings (state, received_micros);
CREATE INDEX bookings_fin ON bookings (fin) WHERE fin IS NOT NULL;
