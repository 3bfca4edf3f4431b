-- Verity store, PostgreSQL schema version 6: NCATC status sweep keys in their own table.
-- Keep in step with migrations/sqlite/0006_ncatc_sweep.sql.

-- Full-name-and-birth-date keys of every status-bearing record (enforcement, court, benefits,
-- travel) with the record that holds each: a lead whose subject shares such a key with a
-- record outside the subject's linked records is parked (unlinked_status_record). Looked up by
-- key equality. Until version 6 these rows sat in lead_citizen_keys as the key followed by the
-- record id (`S|NAME|NAME|YYYYMMDD|` + record id); they move here. Byte order ("C") so both
-- backends order keys alike.
CREATE TABLE lead_status_keys (
    status_key  TEXT COLLATE "C" NOT NULL,
    record_id   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (status_key, record_id)
);

-- 'S|A|B|YYYYMMDD|ID': the key ends 9 characters into what follows the third '|'.
INSERT INTO lead_status_keys (status_key, record_id)
SELECT substr(k, 1, length(k) - length(tail) + 9), substr(tail, 10)
FROM (
    SELECT k, substr(r2, strpos(r2, '|') + 1) AS tail
    FROM (
        SELECT k, substr(r1, strpos(r1, '|') + 1) AS r2
        FROM (
            SELECT citizen_key AS k, substr(citizen_key, 3) AS r1
            FROM lead_citizen_keys
            WHERE substr(citizen_key, 1, 2) = 'S|'
        ) AS s1
    ) AS s2
) AS s3
WHERE length(tail) > 9
ON CONFLICT DO NOTHING;

DELETE FROM lead_citizen_keys WHERE substr(citizen_key, 1, 2) = 'S|';
