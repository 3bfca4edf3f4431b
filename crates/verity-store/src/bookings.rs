//! Bookings: ANSI/NIST ten-print transactions as received and their identification results
//! (tables of migration 0005).
