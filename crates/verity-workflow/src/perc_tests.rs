//! Tests of the PERC glue: policy, IAR reading, triage, snapshots, evidence, clocks, and the
//! packet's extractable text.

use super::*;
use crate::detainer::{Actor, Event, Gate, Warrant};
use crate::documents::render_packet;
use verity_model::record::{
    CitizenshipEvidence, CitizenshipRecord, CourtOutcome, CourtRecord, CustodyRecord,
};
use verity_model::{Identity, Ori, PartialDate, Reference, Role};

fn reference() -> Reference {
    Reference::embedded().expect("embedded reference tables")
}

fn policy() -> PercPolicy {
    PercPolicy::embedded(&reference().aors).expect("embedded perc policy")
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test date")
}

fn rec(id: &str, body: RecordBody) -> SourceRecord {
    SourceRecord {
        record_id: id.into(),
        identity: Identity::default(),
        body,
    }
}

fn court_final_order() -> SourceRecord {
    rec(
        "CRT-1",
        RecordBody::Court(CourtRecord {
            case_number: "C1".into(),
            filed: PartialDate::full(2019, 1, 2).expect("date"),
            outcome: CourtOutcome::RemovalOrdered,
            decided: Some(PartialDate::full(2020, 5, 6).expect("date")),
            relief: String::new(),
            appeal_pending: false,
        }),
    )
}

fn custody(id: &str, booked: (u16, u8, u8), release: Option<(u16, u8, u8)>) -> SourceRecord {
    rec(
        id,
        RecordBody::Custody(CustodyRecord {
            booking_number: format!("B-{id}"),
            facility: format!("Facility {id}"),
            ori: Ori::parse("MD0030000").expect("ori"),
            county: "Baltimore".into(),
            state: "MD".into(),
            booking_date: PartialDate::full(booked.0, booked.1, booked.2).expect("date"),
            expected_release: release.map(|r| PartialDate::full(r.0, r.1, r.2).expect("date")),
            released: None,
        }),
    )
}

fn passport() -> SourceRecord {
    rec(
        "CIT-1",
        RecordBody::Citizenship(CitizenshipRecord {
            evidence: CitizenshipEvidence::UsPassport,
            document_number: "P1".into(),
            issued: None,
        }),
    )
}

const IAR: &str = r#"{"query_id":"Q1","issued_at":"2026-03-10T09:00:00Z","decided_by":"spec1",
 "identity":{"person_key":"P-9","name":"DOE, JANE","dob":"1980-01-02","a_number":"012345678","fin":"","fbi_number":"","probability":0.99,"biometric":false,"explanation":[]},
 "status":"final_order_of_removal","status_text":"Final order of removal",
 "evidence":[{"record_id":"CRT-1","fact":"final_order","note":"final order of removal"}],
 "citizenship_indicia":[],"criminal_history":[{"record_id":"CRM-1","arrest_date":"2025","ncic_code":"1313","offense":"x","disposition":"convicted"}],
 "intended_action":"field_office_review","intended_action_text":"","lesc_contact":"","rules_version":"r1","lesc_policy_version":"l1",
 "field_office":"Baltimore","requesting_ori":"MD0030000","new_field_later":1}"#;

fn iar() -> IarSummary {
    IarSummary::parse("Q1", IAR).expect("valid IAR")
}

#[test]
fn embedded_policy_covers_19_of_25_aors() {
    let p = policy();
    assert_eq!(p.covered_aors.len(), 19);
    assert_eq!(reference().aors.offices().count(), 25);
    assert!(p.covers("Baltimore") && !p.covers("Boston"));
}

#[test]
fn policy_errors_name_the_problem() {
    let aors = reference().aors;
    let base = EMBEDDED_PERC_POLICY;
    let e = PercPolicy::load(&base.replace("\"Atlanta\",", "\"Atlantis\","), &aors)
        .expect_err("unknown AOR");
    assert!(e.to_string().contains("Atlantis"), "{e}");
    let e = PercPolicy::load(
        &base.replace(
            "\"previously_removed\",",
            "\"previously_removed\", \"us_citizen_birth\",",
        ),
        &aors,
    )
    .expect_err("citizen status");
    assert!(e.to_string().contains("can never be actionable"), "{e}");
    let e = PercPolicy::load(
        &base.replace("escalation_hours_left = 8", "escalation_hours_left = 80"),
        &aors,
    )
    .expect_err("escalation after reminder");
    assert!(e.to_string().contains("reminder_hours_left"), "{e}");
    assert!(PercPolicy::load("version = 1", &aors).is_err());
}

#[test]
fn iar_is_read_leniently_and_errors_name_the_field() {
    let s = iar();
    assert_eq!(s.status, ImmigrationStatus::FinalOrderOfRemoval);
    assert_eq!(s.person_key.as_deref(), Some("P-9"));
    assert!(s.specialist_confirmed());
    assert_eq!(s.criminal_record_ids, ["CRM-1"]);
    let e = IarSummary::parse("Q2", "{}").expect_err("no status");
    assert!(e.to_string().contains("'status'") && e.to_string().contains("Q2"));
    let e = IarSummary::parse("Q2", r#"{"status":"martian"}"#).expect_err("bad status");
    assert!(e.to_string().contains("martian"));
    assert!(IarSummary::parse("Q2", "not json").is_err());
}

#[test]
fn subject_records_come_from_the_chosen_candidate_and_the_citations() {
    let result = r#"{"candidates":[{"person_key":"P-1","record_ids":["X"]},{"person_key":"P-9","record_ids":["CUS-1","CRT-1"]}],"decision":{"chosen":0}}"#;
    let ids = subject_record_ids(&iar(), Some(result));
    assert_eq!(ids, ["CRM-1", "CRT-1", "CUS-1"]);
    let ids = subject_record_ids(&iar(), None);
    assert_eq!(ids, ["CRM-1", "CRT-1"]);
}

#[test]
fn triage_takes_only_in_custody_actionable_covered_answers() {
    let p = policy();
    let s = iar();
    assert_eq!(
        triage_eligibility(true, Some("Baltimore"), &s, &p),
        Ok("Baltimore".into())
    );
    assert_eq!(
        triage_eligibility(true, None, &s, &p),
        Ok("Baltimore".into())
    );
    assert_eq!(
        triage_eligibility(false, Some("Baltimore"), &s, &p),
        Err(NotTaken::NotInCustody)
    );
    assert_eq!(
        triage_eligibility(true, Some("Boston"), &s, &p),
        Err(NotTaken::AorNotCovered)
    );
    let mut lawful = s.clone();
    lawful.status = ImmigrationStatus::Lpr;
    assert_eq!(
        triage_eligibility(true, Some("Baltimore"), &lawful, &p),
        Err(NotTaken::StatusNotActionable)
    );
    let mut flagged = s.clone();
    flagged
        .citizenship_indicia
        .push(("CIT-1".into(), "x".into(), "y".into()));
    assert_eq!(
        triage_eligibility(true, Some("Baltimore"), &flagged, &p),
        Err(NotTaken::CitizenshipIndicia)
    );
    let mut nowhere = s;
    nowhere.field_office = None;
    assert_eq!(
        triage_eligibility(true, None, &nowhere, &p),
        Err(NotTaken::NoAor)
    );
}

#[test]
fn custody_and_urgency_follow_the_latest_open_booking() {
    let records = vec![
        custody("A", (2025, 1, 1), Some((2025, 6, 1))),
        custody("B", (2026, 3, 1), Some((2026, 3, 11))),
    ];
    let c = custody_facts(&records);
    assert_eq!(c.facility, "Facility B");
    assert_eq!(c.expected_release, Some(day("2026-03-11")));
    let p = policy();
    assert_eq!(
        Urgency::of(c.expected_release, day("2026-03-10"), &p),
        Urgency::Imminent
    );
    assert_eq!(
        Urgency::of(c.expected_release, day("2026-03-05"), &p),
        Urgency::Soon
    );
    assert_eq!(
        Urgency::of(c.expected_release, day("2026-01-01"), &p),
        Urgency::Later
    );
    assert_eq!(Urgency::of(None, day("2026-01-01"), &p), Urgency::Unknown);
    assert_eq!(custody_facts(&[]), CustodyFacts::default());
}

fn rules() -> StatusRules {
    StatusRules::embedded().expect("embedded status rules")
}

#[test]
fn snapshot_sees_citizenship_evidence_that_arrived_after_the_answer() {
    let today = day("2026-03-10");
    let before = subject_snapshot(
        &iar(),
        &[court_final_order()],
        &rules(),
        CaseNotes::default(),
        today,
    );
    assert!(!before.citizenship_indicia);
    assert!(
        before.final_order && before.specialist_confirmed_identity && !before.biometric_identity
    );
    let after = subject_snapshot(
        &iar(),
        &[court_final_order(), passport()],
        &rules(),
        CaseNotes::default(),
        today,
    );
    assert!(after.citizenship_indicia);
    let noted = subject_snapshot(
        &iar(),
        &[court_final_order()],
        &rules(),
        CaseNotes {
            citizenship_claim_open: true,
            citizenship_indicia_open: false,
        },
        today,
    );
    assert!(noted.open_citizenship_claim && !noted.citizenship_indicia);
}

#[test]
fn evidence_links_each_basis_to_its_records() {
    let today = day("2026-03-10");
    let records = [court_final_order()];
    let e = evidence_for(Some(ProbableCause::FinalOrder), &iar(), &records, today);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].0, "CRT-1");
    assert!(evidence_for(
        Some(ProbableCause::PendingProceedings),
        &iar(),
        &records,
        today
    )
    .is_empty());
    let e = evidence_for(
        Some(ProbableCause::StatementsOrEvidence),
        &iar(),
        &records,
        today,
    );
    assert_eq!(e[0].0, "CRT-1");
}

#[test]
fn codes_round_trip() {
    for r in LIFT_REASONS {
        assert_eq!(parse_lift_reason(&lift_reason_code(*r)), Some(*r));
    }
    for b in [
        "final_order",
        "pending_proceedings",
        "biometric_and_records",
        "statements_or_evidence",
    ] {
        assert_eq!(parse_basis(b).map(basis_code), Some(b));
    }
    assert_eq!(parse_basis("hunch"), None);
    assert_eq!(
        refusal_code(&Refusal::Gate {
            gate: Gate::CitizenshipIndicia
        }),
        "citizenship_indicia"
    );
    assert_eq!(refusal_code(&Refusal::LiftNeedsReason), "lift_needs_reason");
}

#[test]
fn clock_levels_follow_the_policy() {
    let p = policy();
    let until = NaiveDateTime::parse_from_str("2026-03-12 10:00", "%Y-%m-%d %H:%M").expect("t");
    let at = |h: i64| until - chrono::Duration::hours(h);
    assert_eq!(ClockLevel::of(until, at(30), &p).0, ClockLevel::Running);
    assert_eq!(ClockLevel::of(until, at(24), &p).0, ClockLevel::Reminder);
    assert_eq!(ClockLevel::of(until, at(8), &p).0, ClockLevel::Escalate);
    assert_eq!(ClockLevel::of(until, at(0), &p), (ClockLevel::Overdue, 0));
}

fn actor(name: &str, role: Role) -> Actor {
    Actor {
        username: name.into(),
        roles: vec![role],
    }
}

#[test]
fn stored_action_round_trips_through_its_index() {
    let at = NaiveDateTime::parse_from_str("2026-03-10 09:00", "%Y-%m-%d %H:%M").expect("t");
    let ok = SubjectSnapshot {
        final_order: true,
        specialist_confirmed_identity: true,
        ..Default::default()
    };
    let w = Warrant {
        kind: WarrantKind::I205,
        signed_by: "sup".into(),
        signed_at: at,
    };
    let mut a = EnforcementAction::prepare(
        ActionKind::Detainer,
        Some(ProbableCause::FinalOrder),
        Some(w),
        actor("off", Role::PercOfficer),
        at,
        &ok,
    )
    .expect("allowed");
    a.apply(
        Event::Approve {
            by: actor("sup", Role::Supervisor),
        },
        &ok,
        at,
    )
    .expect("allowed");
    a.apply(
        Event::Lift {
            by: actor("sup", Role::Supervisor),
            reason: Some(LiftReason::ChargesDismissed),
            note: "charges dropped".into(),
        },
        &ok,
        at,
    )
    .expect("allowed");
    let idx = index_action(&a).expect("serialises");
    assert_eq!(idx.state, "lifted");
    assert_eq!(idx.lift_reason.as_deref(), Some("charges_dismissed"));
    assert_eq!(idx.warrant_kind.as_deref(), Some("I205"));
    assert_eq!(idx.approved_by.as_deref(), Some("sup"));
    assert_eq!(read_action("D1", &idx.action_json).expect("reads"), a);
    assert!(read_action("D1", "{").is_err());
}

/// The packet's text is extractable: `pdftotext` reads the forms, the basis and its evidence.
/// Skipped loudly when poppler-utils is missing, unless `VERITY_REQUIRE_PDFTOTEXT=1`.
#[test]
fn packet_text_is_extractable_with_pdftotext() {
    let (action, mut details) = crate::documents::example_packet();
    details.evidence = evidence_for(
        Some(ProbableCause::FinalOrder),
        &iar(),
        &[court_final_order()],
        day("2026-03-10"),
    );
    details.versions.push(policy().version);
    let pdf = render_packet(&action, &details);
    let dir = std::env::temp_dir().join(format!("verity_perc_pdf_{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("packet.pdf");
    std::fs::write(&path, &pdf).expect("write pdf");
    let out = std::process::Command::new("pdftotext")
        .arg(&path)
        .arg("-")
        .output();
    let _ = std::fs::remove_dir_all(&dir);
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            let msg = format!("!!!!! pdftotext not runnable ({e}): PDF text check SKIPPED !!!!!");
            assert!(
                std::env::var("VERITY_REQUIRE_PDFTOTEXT").as_deref() != Ok("1"),
                "{msg}"
            );
            eprintln!("{msg}");
            return;
        }
    };
    assert!(out.status.success(), "pdftotext failed: {:?}", out);
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "I-247A",
        "Basis (1)",
        "CRT-1",
        "final_order",
        "I-205 Warrant of Removal",
        "48 HOURS",
        "perc-2026.11.1",
        "SYNTHETIC TRAINING DOCUMENT",
    ] {
        assert!(text.contains(needle), "'{needle}' missing from:\n{text}");
    }
}

#[test]
fn a_grant_in_the_current_records_stops_the_action() {
    let today = day("2026-03-10");
    let p = policy();
    assert_eq!(
        status_still_actionable(&[court_final_order()], &rules(), &p, today),
        Ok(ImmigrationStatus::FinalOrderOfRemoval)
    );
    let relief = rec(
        "CRT-2",
        RecordBody::Court(CourtRecord {
            case_number: "C2".into(),
            filed: PartialDate::full(2021, 1, 2).expect("date"),
            outcome: CourtOutcome::ReliefGranted,
            decided: Some(PartialDate::full(2022, 5, 6).expect("date")),
            relief: "asylum".into(),
            appeal_pending: false,
        }),
    );
    let now = status_still_actionable(&[court_final_order(), relief], &rules(), &p, today);
    assert!(now.is_err(), "{now:?}");
}
