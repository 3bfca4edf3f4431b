-- Verity store, sqlite schema: placeholder until this area's tables land (owned by the bookings work).
SELECT 1;
