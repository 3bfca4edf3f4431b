-- Verity store, sqlite schema: placeholder until this area's tables land (owned by the ncatc work).
SELECT 1;
