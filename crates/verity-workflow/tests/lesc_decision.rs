//! The LESC decision: automatic answers only when identity is confident and status routine;
//! citizenship always wins; "no record found" never leads to action.

use chrono::NaiveDate;
use proptest::prelude::*;
use verity_model::record::*;
use verity_model::*;
use verity_policy::StatusRules;
use verity_workflow::lesc::decision::{decide, Candidate, QueryContext, ReviewReason};
use verity_workflow::lesc::iar::{Iar, IarInput, IntendedAction};
use verity_workflow::lesc::LescPolicy;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 1).expect("date")
}

fn d(s: &str) -> PartialDate {
    PartialDate::parse_iso(s).expect("date")
}

fn ctx(claim: bool) -> QueryContext {
    QueryContext {
        in_custody: true,
        citizenship_claimed: claim,
        today: today(),
    }
}

fn person(cob: &str) -> Identity {
    Identity {
        name: PersonName::new("JOSE", "", "GARCIA"),
        country_of_birth: cob.into(),
        dob: Some(d("1985-03-12")),
        ..Default::default()
    }
}

fn final_order(id: &str) -> SourceRecord {
    SourceRecord {
        record_id: id.into(),
        identity: person("MX"),
        body: RecordBody::Court(CourtRecord {
            case_number: id.into(),
            filed: d("2018-01-01"),
            outcome: CourtOutcome::RemovalOrdered,
            decided: Some(d("2019-01-01")),
            relief: String::new(),
            appeal_pending: false,
        }),
    }
}

/// Permanent residence granted on `decided` (the subject is born 1985-03-12).
fn lpr_on(id: &str, decided: Option<&str>) -> SourceRecord {
    SourceRecord {
        record_id: id.into(),
        identity: person("MX"),
        body: RecordBody::Benefits(BenefitsRecord {
            receipt_number: id.into(),
            benefit: BenefitType::Adjustment,
            outcome: BenefitOutcome::Granted,
            filed: None,
            decided: decided.map(d),
            valid_until: None,
        }),
    }
}

/// A grant a year old, as an adult: no naturalization or derivation can hide behind it.
fn lpr(id: &str) -> SourceRecord {
    lpr_on(id, Some("2025-10-01"))
}

fn passport(id: &str) -> SourceRecord {
    SourceRecord {
        record_id: id.into(),
        identity: person("US"),
        body: RecordBody::Citizenship(CitizenshipRecord {
            evidence: CitizenshipEvidence::UsPassport,
            document_number: "P1".into(),
            issued: None,
        }),
    }
}

fn cand(key: &str, p: f64, strong: bool, records: Vec<SourceRecord>) -> Candidate {
    Candidate {
        person_key: key.into(),
        probability: p,
        strong_identifier: strong,
        biometric: false,
        explanation: vec![],
        records,
    }
}

fn setup() -> (StatusRules, LescPolicy) {
    (
        StatusRules::embedded().expect("rules"),
        LescPolicy::embedded().expect("policy"),
    )
}

#[test]
fn confident_routine_status_is_answered_automatically() {
    let (rules, policy) = setup();
    let dec = decide(
        &[cand("P1", 0.995, true, vec![lpr("B1")])],
        &ctx(false),
        &rules,
        &policy,
    );
    assert!(dec.automatic, "{:?}", dec.reviews);
    assert_eq!(dec.determination.status, ImmigrationStatus::Lpr);
}

#[test]
fn a_noncitizen_status_on_name_and_birth_date_alone_goes_to_review() {
    let (rules, policy) = setup();
    let dec = decide(
        &[cand("P1", 0.995, false, vec![lpr("B1")])],
        &ctx(false),
        &rules,
        &policy,
    );
    assert!(!dec.automatic, "{:?}", dec.reviews);
    assert!(dec
        .reviews
        .contains(&ReviewReason::NoncitizenOnBiographicOnly));
    assert_eq!(dec.determination.status, ImmigrationStatus::Lpr);
}

#[test]
fn removable_status_on_name_and_birth_date_alone_goes_to_review() {
    let (rules, policy) = setup();
    let dec = decide(
        &[cand("P1", 0.995, false, vec![final_order("K1")])],
        &ctx(false),
        &rules,
        &policy,
    );
    assert!(!dec.automatic);
    assert!(dec
        .reviews
        .contains(&ReviewReason::RemovableOnBiographicOnly));
    let dec = decide(
        &[cand("P1", 0.995, true, vec![final_order("K1")])],
        &ctx(false),
        &rules,
        &policy,
    );
    assert!(dec.automatic);
}

#[test]
fn a_plausible_citizen_look_alike_blocks_a_removable_answer() {
    let (rules, policy) = setup();
    let cands = [
        cand("NONCIT", 0.90, true, vec![final_order("K1")]),
        cand("CIT", 0.30, false, vec![passport("Z1")]),
    ];
    let dec = decide(&cands, &ctx(false), &rules, &policy);
    assert!(dec.determination.status.is_citizen_or_potential());
    assert!(dec.citizenship_review);
    assert!(
        !dec.automatic,
        "identity is not confident, so even the safe answer waits"
    );
}

#[test]
fn no_record_found_is_said_as_such_and_carries_no_action() {
    let (rules, policy) = setup();
    let dec = decide(
        &[cand("FAR", 0.01, false, vec![final_order("K1")])],
        &ctx(false),
        &rules,
        &policy,
    );
    assert_eq!(dec.determination.status, ImmigrationStatus::NoRecordFound);
    assert_eq!(dec.automatic, policy.auto_answer_no_record);
    assert_eq!(
        IntendedAction::for_status(dec.determination.status, &policy),
        IntendedAction::NoActionNoRecord
    );
    // A claim of citizenship with no record gets the citizenship answer and a review.
    let dec = decide(&[], &ctx(true), &rules, &policy);
    assert_eq!(
        dec.determination.status,
        ImmigrationStatus::PotentialUsCitizen
    );
    assert!(dec.citizenship_review);
}

#[test]
fn the_iar_names_versions_and_hides_internals_from_the_agency() {
    let (rules, policy) = setup();
    let cands = [cand("P1", 0.995, true, vec![final_order("K1")])];
    let dec = decide(&cands, &ctx(false), &rules, &policy);
    let offenses = OffenseTable::embedded().expect("offenses");
    let iar = Iar::compose(
        IarInput {
            query_id: "Q1",
            requesting_ori: "MD0030000",
            issued_at: "2026-11-01T00:00:00Z",
            decided_by: "automatic",
            field_office: Some("Baltimore".into()),
        },
        &dec,
        &cands,
        &policy,
        &offenses,
    );
    assert_eq!(iar.intended_action, IntendedAction::FieldOfficeReview);
    assert_eq!(iar.rules_version, rules.version);
    assert_eq!(iar.evidence[0].record_id, "K1");
    let agency = serde_json::to_string(&iar.agency_view()).expect("json");
    assert!(
        !agency.contains("K1"),
        "agency view leaks record ids: {agency}"
    );
    assert!(!agency.contains("person_key"));
}

#[test]
fn an_old_or_childhood_permanent_residence_gets_a_citizenship_check() {
    let (rules, policy) = setup();
    for (decided, why) in [
        (Some("2015-06-01"), "naturalization possible"),
        (Some("1999-06-01"), "citizenship may be derived"),
        (None, "undated"),
    ] {
        let dec = decide(
            &[cand("P1", 0.995, true, vec![lpr_on("B1", decided)])],
            &ctx(false),
            &rules,
            &policy,
        );
        assert!(!dec.automatic, "{decided:?}");
        assert!(dec.citizenship_review, "{decided:?}");
        assert_eq!(dec.determination.status, ImmigrationStatus::Lpr);
        assert!(
            dec.reviews.iter().any(|r| matches!(r,
                ReviewReason::PossibleUnrecordedCitizenship { detail } if detail.contains(why))),
            "{decided:?}: {:?}",
            dec.reviews
        );
    }
    // Two years after an adult grant nobody can have naturalized yet.
    let dec = decide(
        &[cand(
            "P1",
            0.995,
            true,
            vec![lpr_on("B1", Some("2024-12-01"))],
        )],
        &ctx(false),
        &rules,
        &policy,
    );
    assert!(dec.automatic, "{:?}", dec.reviews);
}

#[test]
fn a_removal_on_record_and_todays_encounter_is_previously_removed() {
    let (rules, policy) = setup();
    let removal = SourceRecord {
        record_id: "E1".into(),
        identity: person("MX"),
        body: RecordBody::Enforcement(EnforcementRecord {
            event: EnforcementEvent::Removal,
            date: d("2020-02-01"),
            order: Some(OrderKind::Final),
            entry: None,
            office: "Dallas".into(),
            detail: String::new(),
        }),
    };
    let dec = decide(
        &[cand("P1", 0.995, true, vec![final_order("K1"), removal])],
        &ctx(false),
        &rules,
        &policy,
    );
    assert_eq!(
        dec.determination.status,
        ImmigrationStatus::PreviouslyRemoved
    );
    assert!(dec.automatic, "{:?}", dec.reviews);
}

/// A current TPS grant, and the fingerprints taken at the person's arrival on 2021-02-24.
fn tps_holder_records() -> Vec<SourceRecord> {
    vec![
        SourceRecord {
            record_id: "BEN-TPS".into(),
            identity: person("SV"),
            body: RecordBody::Benefits(BenefitsRecord {
                receipt_number: "EAC1".into(),
                benefit: BenefitType::Tps,
                outcome: BenefitOutcome::Granted,
                filed: Some(d("2023-08-15")),
                decided: Some(d("2024-05-15")),
                valid_until: Some(d("2027-09-30")),
            }),
        },
        SourceRecord {
            record_id: "BIO-ARRIVAL".into(),
            identity: person("SV"),
            body: RecordBody::Biometrics(BiometricsRecord {
                fin: Fin::parse("5504121001").expect("fin"),
                enrolled: d("2021-02-24"),
                captured_by: RecordSystem::Travel,
                fingers: 10,
            }),
        },
    ]
}

/// The arrival on a visitor visa (long expired): alone it reads "overstay".
fn b2_arrival(id: &str, date: &str) -> SourceRecord {
    SourceRecord {
        record_id: id.into(),
        identity: person("SV"),
        body: RecordBody::Travel(TravelRecord {
            direction: TravelDirection::Arrival,
            date: d(date),
            class_of_admission: "B2".into(),
            admit_until: Some(d("2021-08-24")),
            port: "NEW YORK JFK NY".into(),
        }),
    }
}

#[test]
fn a_runner_up_the_querys_identifier_rules_out_and_that_changes_nothing_is_no_ambiguity() {
    let (rules, policy) = setup();
    // The query's A-number picks the TPS holder; the arrival record carrying only a passport
    // stays apart (no shared identifier) and is plausible on name and birth date.
    let cands = [
        cand("TOP", 0.9999, true, tps_holder_records()),
        cand(
            "ARRIVAL",
            0.40,
            false,
            vec![b2_arrival("TRV-1", "2021-02-24")],
        ),
    ];
    let dec = decide(&cands, &ctx(false), &rules, &policy);
    assert_eq!(dec.determination.status, ImmigrationStatus::TpsHolder);
    assert!(dec.automatic, "{:?}", dec.reviews);

    // Without the query's identifier agreeing with the top candidate it stays ambiguous.
    let unpinned = [
        cand("TOP", 0.9999, false, tps_holder_records()),
        cand(
            "ARRIVAL",
            0.40,
            false,
            vec![b2_arrival("TRV-1", "2021-02-24")],
        ),
    ];
    let dec = decide(&unpinned, &ctx(false), &rules, &policy);
    assert!(!dec.automatic);
    assert!(dec
        .reviews
        .iter()
        .any(|r| matches!(r, ReviewReason::AmbiguousIdentity { .. })));

    // A runner-up that would change the status were it the same person (a final order) keeps
    // the review, identifier or not.
    let mut order = final_order("K9");
    order.identity = person("SV");
    let changing = [
        cand("TOP", 0.9999, true, tps_holder_records()),
        cand("ORDER", 0.40, false, vec![order]),
    ];
    let dec = decide(&changing, &ctx(false), &rules, &policy);
    assert!(!dec.automatic);
    assert!(dec
        .reviews
        .iter()
        .any(|r| matches!(r, ReviewReason::AmbiguousIdentity { .. })));

    // A runner-up sharing the query's identifier is not ruled out by it.
    let both_strong = [
        cand("TOP", 0.9999, true, tps_holder_records()),
        cand(
            "ARRIVAL",
            0.40,
            true,
            vec![b2_arrival("TRV-1", "2021-02-24")],
        ),
    ];
    assert!(!decide(&both_strong, &ctx(false), &rules, &policy).automatic);

    // A plausible citizen runner-up still gives the citizenship answer and its review.
    let citizen = [
        cand("TOP", 0.9999, true, tps_holder_records()),
        cand("CIT", 0.40, false, vec![passport("Z1")]),
    ];
    let dec = decide(&citizen, &ctx(false), &rules, &policy);
    assert!(dec.determination.status.is_citizen_or_potential());
    assert!(dec.citizenship_review);
}

#[test]
fn the_enrolling_record_is_looked_for_among_harmless_runner_ups_only() {
    let (rules, policy) = setup();
    // Alone, the top candidate lacks the arrival its fingerprints were taken at.
    let dec = decide(
        &[cand("TOP", 0.9999, true, tps_holder_records())],
        &ctx(false),
        &rules,
        &policy,
    );
    assert!(dec
        .reviews
        .iter()
        .any(|r| matches!(r, ReviewReason::EnrollingRecordMissing { .. })));
    // An arrival of another day does not stand in for it.
    let dec = decide(
        &[
            cand("TOP", 0.9999, true, tps_holder_records()),
            cand(
                "ARRIVAL",
                0.40,
                false,
                vec![b2_arrival("TRV-1", "2022-06-01")],
            ),
        ],
        &ctx(false),
        &rules,
        &policy,
    );
    assert!(!dec.automatic);
    assert!(dec
        .reviews
        .iter()
        .any(|r| matches!(r, ReviewReason::EnrollingRecordMissing { .. })));
}

fn any_candidate() -> impl Strategy<Value = Candidate> {
    let records = prop_oneof![
        Just(vec![final_order("K")]),
        Just(vec![lpr("B")]),
        Just(vec![lpr_on("B", Some("2010-01-01"))]),
        Just(vec![lpr_on("B", None)]),
        Just(vec![passport("Z")]),
        Just(vec![final_order("K"), passport("Z")]),
        Just(vec![]),
    ];
    (
        0.0f64..1.0,
        any::<bool>(),
        any::<bool>(),
        records,
        0u32..1000,
    )
        .prop_map(|(p, strong, bio, records, k)| Candidate {
            person_key: format!("P{k}"),
            probability: p,
            strong_identifier: strong,
            biometric: bio,
            explanation: vec![],
            records,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]

    #[test]
    fn safeguards_hold_for_any_candidates(cands in proptest::collection::vec(any_candidate(), 0..5), claim: bool) {
        let (rules, policy) = setup();
        let dec = decide(&cands, &ctx(claim), &rules, &policy);
        let status = dec.determination.status;
        // Citizenship anywhere plausible, or claimed, means the citizen answer and a review.
        let plausible_citizen = cands.iter().any(|c| c.probability >= policy.plausible_min
            && !rules.determine(&c.records, today()).citizenship_indicia.is_empty());
        if plausible_citizen || claim {
            prop_assert!(status.is_citizen_or_potential());
            prop_assert!(dec.citizenship_review);
        }
        // An automatic removable answer rests on a confident identity with an identifier.
        if dec.automatic && policy.removable_statuses.contains(&status) {
            let c = &cands[dec.chosen.expect("a removable answer is about someone")];
            prop_assert!(c.probability >= policy.auto_identity_min);
            prop_assert!(c.strong_identifier || c.biometric);
        }
        // No record found and undetermined never lead to a field-office review.
        if status.is_non_answer() {
            prop_assert_ne!(IntendedAction::for_status(status, &policy), IntendedAction::FieldOfficeReview);
        }
        // "No record found" goes out alone only when the policy allows it.
        if dec.automatic && status == ImmigrationStatus::NoRecordFound {
            prop_assert!(policy.auto_answer_no_record);
        }
        // A noncitizen status never goes out unreviewed while the records leave room for a
        // citizenship no record shows.
        if dec.automatic && status == ImmigrationStatus::Lpr {
            let c = &cands[dec.chosen.expect("an LPR answer is about someone")];
            prop_assert!(verity_workflow::lesc::decision::possible_unrecorded_citizenship(
                &c.records, today(), policy.lpr_citizenship_check_years).is_none());
        }
    }
}

/// `record` carrying A-number `a` on its identity.
fn with_a_number(mut record: SourceRecord, a: &str) -> SourceRecord {
    record.identity.ids.a_number = Some(ANumber::parse(a).expect("a-number"));
    record
}

#[test]
fn a_runner_up_whose_identifier_contradicts_the_querys_subject_is_another_person() {
    let (rules, policy) = setup();
    // The query's A-number picks the permanent resident; the runner-up (same common name,
    // plausible on name and birth date) is someone else: another A-number, a final order.
    let subject = || {
        cand(
            "TOP",
            0.9999,
            true,
            vec![with_a_number(lpr("B1"), "A123456789")],
        )
    };
    let other = |p: f64| {
        cand(
            "OTHER",
            p,
            false,
            vec![with_a_number(final_order("K2"), "A987654321")],
        )
    };
    let dec = decide(&[subject(), other(0.35)], &ctx(false), &rules, &policy);
    assert_eq!(dec.determination.status, ImmigrationStatus::Lpr);
    assert!(dec.automatic, "{:?}", dec.reviews);

    // As alike as the subject on name and birth date: a specialist still looks.
    let dec = decide(&[subject(), other(0.9)], &ctx(false), &rules, &policy);
    assert!(!dec.automatic);
    assert!(dec
        .reviews
        .iter()
        .any(|r| matches!(r, ReviewReason::AmbiguousIdentity { .. })));

    // Without the query's identifier on the top candidate nothing rules the runner-up out.
    let unpinned = [
        cand(
            "TOP",
            0.9999,
            false,
            vec![with_a_number(lpr("B1"), "A123456789")],
        ),
        other(0.35),
    ];
    let dec = decide(&unpinned, &ctx(false), &rules, &policy);
    assert!(!dec.automatic);
    assert!(dec
        .reviews
        .iter()
        .any(|r| matches!(r, ReviewReason::CandidateStatusDiffers { .. })));

    // No contradicting identifier (the runner-up carries none): it may be the same person's
    // split-off records, and its final order would change the status: review.
    let no_id = [
        subject(),
        cand("OTHER", 0.35, false, vec![final_order("K2")]),
    ];
    assert!(!decide(&no_id, &ctx(false), &rules, &policy).automatic);

    // A citizen with another A-number is still a plausible citizen: the safe answer and a
    // citizenship review.
    let citizen = [
        subject(),
        cand(
            "CIT",
            0.35,
            false,
            vec![with_a_number(passport("Z1"), "A987654321")],
        ),
    ];
    let dec = decide(&citizen, &ctx(false), &rules, &policy);
    assert!(dec.determination.status.is_citizen_or_potential());
    assert!(dec.citizenship_review);
    assert!(dec
        .reviews
        .iter()
        .any(|r| matches!(r, ReviewReason::PlausibleCandidateIsCitizen { .. })));
}

/// A USCIS fingerprint enrollment on `enrolled`.
fn benefits_enrollment(id: &str, enrolled: &str) -> SourceRecord {
    SourceRecord {
        record_id: id.into(),
        identity: person("MX"),
        body: RecordBody::Biometrics(BiometricsRecord {
            fin: Fin::parse("5504121002").expect("fin"),
            enrolled: d(enrolled),
            captured_by: RecordSystem::Benefits,
            fingers: 10,
        }),
    }
}

#[test]
fn a_benefits_record_decided_before_the_enrollment_is_not_missing_whatever_its_receipt_date() {
    let (rules, policy) = setup();
    // Granted 2025-10-01; the receipt date was written after the decision (a clerk's slip).
    let mut grant = lpr_on("B1", Some("2025-10-01"));
    if let RecordBody::Benefits(b) = &mut grant.body {
        b.filed = Some(d("2026-10-20"));
    }
    let dec = decide(
        &[cand(
            "TOP",
            0.9999,
            true,
            vec![grant.clone(), benefits_enrollment("BIO-1", "2026-01-15")],
        )],
        &ctx(false),
        &rules,
        &policy,
    );
    assert_eq!(dec.determination.status, ImmigrationStatus::Lpr);
    assert!(dec.automatic, "{:?}", dec.reviews);

    // Fingerprints taken before any date of the only benefits record: it is not the record of
    // that appointment, which is missing.
    let dec = decide(
        &[cand(
            "TOP",
            0.9999,
            true,
            vec![grant, benefits_enrollment("BIO-1", "2025-06-01")],
        )],
        &ctx(false),
        &rules,
        &policy,
    );
    assert!(!dec.automatic);
    assert!(dec
        .reviews
        .iter()
        .any(|r| matches!(r, ReviewReason::EnrollingRecordMissing { .. })));
}
