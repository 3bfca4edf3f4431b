-- Verity store, sqlite schema: placeholder until this area's tables land (owned by the perc work).
SELECT 1;
