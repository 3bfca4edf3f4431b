//! PERC: triage cases, detainers and requests for notification, their events and service
//! records (tables of migration 0003).
