//! NCATC: lead runs over the whole store, deconfliction, routing to field offices and
//! lead-quality metrics from field dispositions.
