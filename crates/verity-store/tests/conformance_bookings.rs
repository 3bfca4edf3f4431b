//! Store conformance for bookings (migration 0005): durable intake, idempotency by (ORI, TCN),
//! the state machine received -> identified -> done | failed, recovery lists, and the
//! enrolments read from biometrics records. Every case runs on SQLite and on PostgreSQL.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use common::{gen, TestDb};
use verity_model::{RecordBody, RecordSystem};
use verity_store::bookings::{BookingState, NewBooking};
use verity_store::{Store, StoreError};

conformance!(
    booking_round_trips_with_its_bytes,
    repeated_tcn_is_the_same_booking,
    same_tcn_from_another_agency_is_another_booking,
    identification_then_finish_moves_through_the_states,
    a_redelivered_identification_keeps_the_first_result,
    failure_is_recorded_and_final,
    unfinished_bookings_are_listed_oldest_first,
    unknown_booking_is_not_found,
    enrolments_come_from_biometrics_records_and_resume_after_a_rev,
    booking_survives_reopening,
);

fn booking(id: &str, ori: &str, tcn: &str, at: i64) -> NewBooking {
    NewBooking {
        booking_id: id.into(),
        ori: ori.into(),
        tcn: tcn.into(),
        received_micros: at,
        // Every byte value, separators included, must survive.
        transaction: (0..=255u8).chain([0x1C, 0x1D, 0x1E, 0x1F, 0]).collect(),
    }
}

mod cases {
    use super::*;

    pub async fn booking_round_trips_with_its_bytes(db: &TestDb) {
        let b = booking("BK1", "MD0030000", "TCN-1", 1_000);
        let (row, created) = db.store.insert_booking(&b).await.unwrap();
        assert!(created);
        assert_eq!(row.booking_id, "BK1");
        assert_eq!(row.transaction, b.transaction);
        assert_eq!(row.state, BookingState::Received);
        assert_eq!(
            (row.fin.as_deref(), row.score, row.query_id.as_deref()),
            (None, None, None)
        );
        let again = db.store.get_booking("BK1").await.unwrap().unwrap();
        assert_eq!(again, row);
        let by_tcn = db
            .store
            .booking_by_tcn("MD0030000", "TCN-1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(by_tcn, row);
    }

    pub async fn repeated_tcn_is_the_same_booking(db: &TestDb) {
        let (first, created) = db
            .store
            .insert_booking(&booking("BK1", "MD0030000", "T1", 1))
            .await
            .unwrap();
        assert!(created);
        let mut repeat = booking("BK2", "MD0030000", "T1", 2);
        repeat.transaction = b"different".to_vec();
        let (second, created) = db.store.insert_booking(&repeat).await.unwrap();
        assert!(!created, "a repeated TCN must not create a booking");
        assert_eq!(second, first);
        assert!(db.store.get_booking("BK2").await.unwrap().is_none());
    }

    pub async fn same_tcn_from_another_agency_is_another_booking(db: &TestDb) {
        db.store
            .insert_booking(&booking("BK1", "MD0030000", "T1", 1))
            .await
            .unwrap();
        let (row, created) = db
            .store
            .insert_booking(&booking("BK2", "VA0010000", "T1", 2))
            .await
            .unwrap();
        assert!(created);
        assert_eq!(row.booking_id, "BK2");
    }

    pub async fn identification_then_finish_moves_through_the_states(db: &TestDb) {
        db.store
            .insert_booking(&booking("BK1", "MD0030000", "T1", 1))
            .await
            .unwrap();
        let row = db
            .store
            .record_booking_identification("BK1", Some("1234567890"), Some(0.9999), 5)
            .await
            .unwrap();
        assert_eq!(row.state, BookingState::Identified);
        assert_eq!(row.fin.as_deref(), Some("1234567890"));
        assert_eq!(row.score, Some(0.9999));
        assert_eq!(row.updated_micros, 5);
        let done = db
            .store
            .finish_booking("BK1", Some("Q-1"), r#"{"srf":"I"}"#, 9)
            .await
            .unwrap();
        assert_eq!(done.state, BookingState::Done);
        assert_eq!(done.query_id.as_deref(), Some("Q-1"));
        assert_eq!(done.result_json.as_deref(), Some(r#"{"srf":"I"}"#));
        // A done booking does not fail afterwards.
        let still = db.store.fail_booking("BK1", "late", 10).await.unwrap();
        assert_eq!(still.state, BookingState::Done);
        assert_eq!(still.error, None);
    }

    pub async fn a_redelivered_identification_keeps_the_first_result(db: &TestDb) {
        db.store
            .insert_booking(&booking("BK1", "MD0030000", "T1", 1))
            .await
            .unwrap();
        db.store
            .record_booking_identification("BK1", None, Some(0.01), 2)
            .await
            .unwrap();
        let row = db
            .store
            .record_booking_identification("BK1", Some("1111111111"), Some(0.99), 3)
            .await
            .unwrap();
        assert_eq!(row.fin, None);
        assert_eq!(row.score, Some(0.01));
        // Finishing needs an identification first.
        db.store
            .insert_booking(&booking("BK2", "MD0030000", "T2", 1))
            .await
            .unwrap();
        let not_moved = db.store.finish_booking("BK2", None, "{}", 4).await.unwrap();
        assert_eq!(not_moved.state, BookingState::Received);
    }

    pub async fn failure_is_recorded_and_final(db: &TestDb) {
        db.store
            .insert_booking(&booking("BK1", "MD0030000", "T1", 1))
            .await
            .unwrap();
        let row = db
            .store
            .fail_booking("BK1", "gallery unavailable", 3)
            .await
            .unwrap();
        assert_eq!(row.state, BookingState::Failed);
        assert_eq!(row.error.as_deref(), Some("gallery unavailable"));
        let row = db
            .store
            .record_booking_identification("BK1", Some("1234567890"), Some(1.0), 4)
            .await
            .unwrap();
        assert_eq!(row.state, BookingState::Failed);
        let counts = db.store.count_bookings_by_state().await.unwrap();
        assert_eq!(
            counts,
            vec![
                (BookingState::Received, 0),
                (BookingState::Identified, 0),
                (BookingState::Done, 0),
                (BookingState::Failed, 1)
            ]
        );
    }

    pub async fn unfinished_bookings_are_listed_oldest_first(db: &TestDb) {
        for (id, tcn, at) in [
            ("B3", "T3", 30),
            ("B1", "T1", 10),
            ("B2", "T2", 20),
            ("B4", "T4", 40),
        ] {
            db.store
                .insert_booking(&booking(id, "MD0030000", tcn, at))
                .await
                .unwrap();
        }
        db.store
            .record_booking_identification("B2", None, None, 50)
            .await
            .unwrap();
        db.store
            .record_booking_identification("B4", None, None, 50)
            .await
            .unwrap();
        db.store.finish_booking("B4", None, "{}", 51).await.unwrap();
        let open: Vec<String> = db
            .store
            .unfinished_bookings(10)
            .await
            .unwrap()
            .into_iter()
            .map(|b| b.booking_id)
            .collect();
        assert_eq!(open, ["B1", "B2", "B3"]);
        assert_eq!(db.store.unfinished_bookings(1).await.unwrap().len(), 1);
    }

    pub async fn unknown_booking_is_not_found(db: &TestDb) {
        assert!(db.store.get_booking("nope").await.unwrap().is_none());
        let e = db
            .store
            .record_booking_identification("nope", None, None, 1)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::NotFound {
                    what: "booking",
                    ..
                }
            ),
            "{e}"
        );
    }

    pub async fn enrolments_come_from_biometrics_records_and_resume_after_a_rev(db: &TestDb) {
        // 24 records cycle through the eight systems: 3 are biometrics records.
        let records = gen::records(7, 24);
        db.store.insert_records(&records).await.unwrap();
        let expected: Vec<(String, String)> = records
            .iter()
            .filter_map(|r| match &r.body {
                RecordBody::Biometrics(b) => {
                    Some((r.record_id.clone(), b.fin.as_str().to_string()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(expected.len(), 3);
        assert!(records
            .iter()
            .any(|r| r.system() != RecordSystem::Biometrics));
        let all = db.store.enrolments_since(0, 100).await.unwrap();
        let got: Vec<(String, String)> = all
            .iter()
            .map(|(_, e)| (e.record_id.clone(), e.fin.clone()))
            .collect();
        assert_eq!(got, expected);
        assert!(all.iter().all(|(_, e)| (1..=10).contains(&e.fingers)));
        // Paging: after the first rev only the later two come back.
        let first_rev = all[0].0;
        let rest = db.store.enrolments_since(first_rev, 100).await.unwrap();
        assert_eq!(rest.len(), 2);
        let one = db.store.enrolments_since(0, 1).await.unwrap();
        assert_eq!(one.len(), 1);
        let last_rev = all[2].0;
        assert!(db
            .store
            .enrolments_since(last_rev, 100)
            .await
            .unwrap()
            .is_empty());
    }

    pub async fn booking_survives_reopening(db: &TestDb) {
        db.store
            .insert_booking(&booking("BK1", "MD0030000", "T1", 1))
            .await
            .unwrap();
        let reopened = Store::open(&db.url).await.unwrap();
        let row = reopened.get_booking("BK1").await.unwrap().unwrap();
        assert_eq!(row.tcn, "T1");
        assert_eq!(row.transaction.len(), 261);
        reopened.close().await;
    }
}
