//! NCATC: lead runs, leads, field dispositions (tables of migration 0004).
