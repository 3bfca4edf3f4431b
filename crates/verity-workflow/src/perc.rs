//! PERC: triage of actionable answers by the versioned priority policy, and the persistence
//! glue of detainers and requests for notification (the gates live in [`crate::detainer`]).
