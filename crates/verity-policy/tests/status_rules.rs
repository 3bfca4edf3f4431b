//! Status determination on hand-made histories; safeguards first.

mod support;

use proptest::prelude::*;
use support::*;
use verity_model::record::*;
use verity_model::*;
use verity_policy::StatusRules;

fn rules() -> StatusRules {
    StatusRules::embedded().expect("embedded rules are valid")
}

/// One line per case: the records, the expected status, and the records it must cite.
#[test]
fn determinations_follow_the_rules() {
    use ImmigrationStatus as S;
    let cases: Vec<(&str, Vec<SourceRecord>, S, Vec<&str>)> =
        vec![
        ("nothing", vec![], S::NoRecordFound, vec![]),
        (
            "only an arrest, foreign birth",
            vec![arrest("C1", "MX", "2024-01-01")],
            S::Undetermined,
            vec![],
        ),
        (
            "lpr",
            vec![benefit(
                "B1",
                BenefitType::Adjustment,
                BenefitOutcome::Granted,
                None,
            )],
            S::Lpr,
            vec!["B1"],
        ),
        (
            "lpr later naturalized",
            vec![
                benefit("B1", BenefitType::Adjustment, BenefitOutcome::Granted, None),
                benefit(
                    "B2",
                    BenefitType::Naturalization,
                    BenefitOutcome::Granted,
                    None,
                ),
            ],
            S::UsCitizenNaturalized,
            vec!["B2"],
        ),
        (
            "a certificate of naturalization alone is naturalization, not birth",
            vec![
                benefit("B1", BenefitType::Adjustment, BenefitOutcome::Granted, None),
                citizenship("Z1", CitizenshipEvidence::NaturalizationCertificate),
            ],
            S::UsCitizenNaturalized,
            vec!["Z1"],
        ),
        (
            "a certificate of citizenship alone is derivation, not birth",
            vec![citizenship(
                "Z1",
                CitizenshipEvidence::CitizenshipCertificate,
            )],
            S::UsCitizenDerived,
            vec!["Z1"],
        ),
        (
            "a U.S. passport alone still reads citizen by birth",
            vec![citizenship("Z1", CitizenshipEvidence::UsPassport)],
            S::UsCitizenBirth,
            vec!["Z1"],
        ),
        (
            "final order",
            vec![court(
                "K1",
                CourtOutcome::RemovalOrdered,
                "2020-05-01",
                false,
            )],
            S::FinalOrderOfRemoval,
            vec!["K1"],
        ),
        (
            "order under appeal",
            vec![court(
                "K1",
                CourtOutcome::RemovalOrdered,
                "2020-05-01",
                true,
            )],
            S::PendingRemovalProceedings,
            vec!["K1"],
        ),
        (
            "order later vacated by relief",
            vec![
                court("K1", CourtOutcome::RemovalOrdered, "2020-05-01", false),
                court("K2", CourtOutcome::ReliefGranted, "2021-05-01", false),
            ],
            S::Undetermined,
            vec![],
        ),
        (
            "asylum granted by an immigration judge, no benefits record",
            vec![
                court("K1", CourtOutcome::RemovalOrdered, "2020-05-01", false),
                {
                    let mut k = court("K2", CourtOutcome::ReliefGranted, "2021-05-01", false);
                    if let RecordBody::Court(c) = &mut k.body {
                        c.relief = "asylum".into();
                    }
                    k
                },
            ],
            S::Asylee,
            vec!["K2"],
        ),
        (
            "removed then arrested",
            vec![
                enforcement("E1", EnforcementEvent::Removal, "2019-03-01", None, None),
                arrest("C1", "MX", "2024-01-01"),
            ],
            S::PreviouslyRemoved,
            vec!["E1", "C1"],
        ),
        (
            "a notice to appear before the final order and the removal is not pending proceedings",
            vec![
                enforcement("N1", EnforcementEvent::NoticeToAppear, "2022-11-25", None, None),
                enforcement(
                    "O1",
                    EnforcementEvent::RemovalOrder,
                    "2023-06-28",
                    Some(OrderKind::Final),
                    None,
                ),
                enforcement(
                    "E1",
                    EnforcementEvent::Removal,
                    "2023-12-14",
                    Some(OrderKind::Final),
                    None,
                ),
            ],
            S::Undetermined,
            vec![],
        ),
        (
            "a notice to appear before a final order: final order",
            vec![
                enforcement("N1", EnforcementEvent::NoticeToAppear, "2022-11-25", None, None),
                court("K1", CourtOutcome::RemovalOrdered, "2023-06-28", false),
            ],
            S::FinalOrderOfRemoval,
            vec!["K1"],
        ),
        (
            "a new notice to appear after a removal: proceedings pending again",
            vec![
                enforcement("E1", EnforcementEvent::Removal, "2019-03-01", None, None),
                enforcement("N2", EnforcementEvent::NoticeToAppear, "2020-01-01", None, None),
            ],
            S::PendingRemovalProceedings,
            vec!["N2"],
        ),
        (
            "overstay",
            vec![arrival("T1", "B2", "2019-01-01", Some("2019-07-01"))],
            S::NonimmigrantOverstay,
            vec!["T1"],
        ),
        (
            "in status",
            vec![arrival("T1", "H1B", "2025-01-01", Some("2027-12-31"))],
            S::NonimmigrantInStatus,
            vec!["T1"],
        ),
        (
            "ewi",
            vec![enforcement(
                "E1",
                EnforcementEvent::BorderApprehension,
                "2021-01-01",
                None,
                Some(EntryManner::WithoutInspection),
            )],
            S::EnteredWithoutInspection,
            vec!["E1"],
        ),
        (
            "tps current",
            vec![benefit(
                "B1",
                BenefitType::Tps,
                BenefitOutcome::Granted,
                Some("2027-03-01"),
            )],
            S::TpsHolder,
            vec!["B1"],
        ),
        (
            "tps lapsed",
            vec![benefit(
                "B1",
                BenefitType::Tps,
                BenefitOutcome::Granted,
                Some("2025-03-01"),
            )],
            S::Undetermined,
            vec![],
        ),
        (
            "asylum pending",
            vec![benefit(
                "B1",
                BenefitType::Asylum,
                BenefitOutcome::Pending,
                None,
            )],
            S::PendingAsylum,
            vec!["B1"],
        ),
    ];
    let r = rules();
    for (name, records, status, cited) in cases {
        let got = r.determine(&records, today());
        assert_eq!(got.status, status, "case '{name}'");
        let ids: Vec<&str> = got.basis.iter().map(|c| c.record_id.as_str()).collect();
        for c in cited {
            assert!(ids.contains(&c), "case '{name}': basis {ids:?} lacks {c}");
        }
        assert_eq!(got.rules_version, r.version);
    }
}

/// An IAQ is about a person encountered in the United States today: with a removal on record
/// that encounter is presence after removal, cited as the query itself.
#[test]
fn an_encounter_after_a_removal_is_presence_after_removal() {
    let r = rules();
    let removed = vec![
        enforcement(
            "N1",
            EnforcementEvent::NoticeToAppear,
            "2022-11-25",
            None,
            None,
        ),
        court("K1", CourtOutcome::RemovalOrdered, "2023-06-28", false),
        enforcement("E1", EnforcementEvent::Removal, "2023-12-14", None, None),
    ];
    assert_eq!(
        r.determine(&removed, today()).status,
        ImmigrationStatus::Undetermined
    );
    let got = r.determine_encountered(&removed, today());
    assert_eq!(got.status, ImmigrationStatus::PreviouslyRemoved);
    let ids: Vec<&str> = got.basis.iter().map(|c| c.record_id.as_str()).collect();
    assert!(
        ids.contains(&"E1") && ids.contains(&verity_policy::status::THIS_QUERY),
        "{ids:?}"
    );
    // Without a removal the encounter changes nothing.
    let lpr = vec![benefit(
        "B1",
        BenefitType::Adjustment,
        BenefitOutcome::Granted,
        None,
    )];
    assert_eq!(
        r.determine_encountered(&lpr, today()),
        r.determine(&lpr, today())
    );
    // Citizenship still wins.
    let mut both = removed.clone();
    both.push(citizenship("Z1", CitizenshipEvidence::UsPassport));
    assert!(r
        .determine_encountered(&both, today())
        .status
        .is_citizen_or_potential());
}

#[test]
fn no_record_found_is_never_routine_nor_removable() {
    let got = rules().determine(&[], today());
    assert_eq!(got.status, ImmigrationStatus::NoRecordFound);
    assert!(!got.routine);
    assert!(got.basis.is_empty());
}

#[test]
fn citizenship_gained_after_a_removal_order_wins_and_is_flagged() {
    let records = vec![
        court("K1", CourtOutcome::RemovalOrdered, "2010-05-01", false),
        benefit(
            "B2",
            BenefitType::CitizenshipCertificate,
            BenefitOutcome::Granted,
            None,
        ),
    ];
    let got = rules().determine(&records, today());
    assert_eq!(got.status, ImmigrationStatus::UsCitizenDerived);
    assert!(got.citizenship_review_required);
    assert!(got
        .also_matched
        .contains(&ImmigrationStatus::FinalOrderOfRemoval));
    assert!(!got.conflicts.is_empty());
    assert!(!got.routine);
}

#[test]
fn a_us_birthplace_or_a_claim_makes_a_potential_citizen() {
    let got = rules().determine(
        &[
            arrest("C1", "US", "2024-01-01"),
            court("K1", CourtOutcome::RemovalOrdered, "2020-01-01", false),
        ],
        today(),
    );
    assert_eq!(got.status, ImmigrationStatus::PotentialUsCitizen);
    assert!(got.citizenship_review_required);
    let got = rules().determine(
        &[citizenship("Z1", CitizenshipEvidence::CitizenshipClaim)],
        today(),
    );
    assert_eq!(got.status, ImmigrationStatus::PotentialUsCitizen);
}

#[test]
fn bad_rule_files_are_rejected_with_line_and_reason() {
    let good = verity_policy::status::EMBEDDED_STATUS_RULES;
    let unknown_fact = good.replace("all = [\"lpr_granted\"]", "all = [\"lpr_grantd\"]");
    let e = StatusRules::load(&unknown_fact).unwrap_err().to_string();
    assert!(
        e.contains("unknown fact 'lpr_grantd'") && e.contains("line"),
        "{e}"
    );

    let contradiction = good.replace(
        "all = [\"lpr_granted\"]",
        "all = [\"lpr_granted\"]\nnone = [\"lpr_granted\"]",
    );
    let e = StatusRules::load(&contradiction).unwrap_err().to_string();
    assert!(e.contains("contradiction"), "{e}");

    let unknown_field = good.replace("version =", "colour = \"red\"\nversion =");
    let e = StatusRules::load(&unknown_field).unwrap_err().to_string();
    assert!(e.contains("colour"), "{e}");

    let removable_on_indicia = good.replace(
        "all = [\"entered_without_inspection\"]",
        "all = [\"us_birthplace\"]",
    );
    let e = StatusRules::load(&removable_on_indicia)
        .unwrap_err()
        .to_string();
    assert!(e.contains("must not rest on citizenship indicia"), "{e}");

    let routine_citizen = good.replace("routine = [", "routine = [\n  \"potential_us_citizen\",");
    assert!(StatusRules::load(&routine_citizen).is_err());
}

fn any_record() -> impl Strategy<Value = SourceRecord> {
    let date = (1990u16..2026, 1u8..=12, 1u8..=28)
        .prop_map(|(y, m, dd)| PartialDate::full(y, m, dd).expect("valid"));
    let cob = prop_oneof![Just("MX"), Just("US"), Just("GT"), Just("")];
    (0u8..8, date.clone(), date, cob, any::<u8>()).prop_map(|(kind, a, b, cob, pick)| {
        let body = match kind {
            0 => RecordBody::Benefits(BenefitsRecord {
                receipt_number: "R".into(),
                benefit: verity_model::record::BenefitType::ALL
                    [pick as usize % BenefitType::ALL.len()],
                outcome: BenefitOutcome::ALL[(pick / 16) as usize % BenefitOutcome::ALL.len()],
                filed: Some(a),
                decided: Some(b),
                valid_until: if pick % 2 == 0 { Some(b) } else { None },
            }),
            1 => RecordBody::Travel(TravelRecord {
                direction: if pick % 3 == 0 {
                    TravelDirection::Departure
                } else {
                    TravelDirection::Arrival
                },
                date: a,
                class_of_admission: ["B2", "F1", "LPR", "USC", "PAROLE"][pick as usize % 5].into(),
                admit_until: Some(b),
                port: String::new(),
            }),
            2 => RecordBody::Enforcement(EnforcementRecord {
                event: EnforcementEvent::ALL[pick as usize % EnforcementEvent::ALL.len()],
                date: a,
                order: if pick % 2 == 0 {
                    Some(OrderKind::ALL[(pick / 2) as usize % OrderKind::ALL.len()])
                } else {
                    None
                },
                entry: if pick % 3 == 0 {
                    Some(EntryManner::WithoutInspection)
                } else {
                    None
                },
                office: String::new(),
                detail: String::new(),
            }),
            3 => RecordBody::Court(CourtRecord {
                case_number: "K".into(),
                filed: a,
                outcome: CourtOutcome::ALL[pick as usize % CourtOutcome::ALL.len()],
                decided: Some(b),
                relief: String::new(),
                appeal_pending: pick % 5 == 0,
            }),
            4 => RecordBody::Citizenship(CitizenshipRecord {
                evidence: CitizenshipEvidence::ALL[pick as usize % CitizenshipEvidence::ALL.len()],
                document_number: String::new(),
                issued: None,
            }),
            _ => RecordBody::Criminal(CriminalRecord {
                arrest_date: a,
                arresting_ori: None,
                ncic_code: "1313".into(),
                charge: String::new(),
                disposition: Disposition::Pending,
                disposition_date: None,
                sentence_days: None,
                flags: Vec::new(),
            }),
        };
        rec(&format!("R{pick}-{kind}"), cob, body)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Safeguard: whenever any record indicates U.S. citizenship, the answer is a citizen or
    /// potential citizen, is not routine, and requires a citizenship review.
    #[test]
    fn citizenship_indicia_always_block(records in proptest::collection::vec(any_record(), 0..8)) {
        let got = rules().determine(&records, today());
        if !got.citizenship_indicia.is_empty() {
            prop_assert!(got.status.is_citizen_or_potential());
            prop_assert!(got.citizenship_review_required);
            prop_assert!(!got.routine);
        } else {
            prop_assert!(!got.status.is_citizen_or_potential());
        }
        if records.is_empty() {
            prop_assert_eq!(got.status, ImmigrationStatus::NoRecordFound);
        }
        if got.status.is_non_answer() {
            prop_assert!(!got.routine);
        }
        // Every cited record is one of the person's records.
        for c in got.basis.iter().chain(&got.citizenship_indicia) {
            prop_assert!(records.iter().any(|r| r.record_id == c.record_id));
        }
    }

    /// Two groups judged together over borrowed records (the LESC decision's runner-up check,
    /// which must not clone records) decide exactly as the same records owned and joined.
    #[test]
    fn borrowed_records_determine_as_owned(
        a in proptest::collection::vec(any_record(), 0..5),
        b in proptest::collection::vec(any_record(), 0..5),
    ) {
        let owned: Vec<SourceRecord> = a.iter().chain(&b).cloned().collect();
        let borrowed: Vec<&SourceRecord> = a.iter().chain(&b).collect();
        prop_assert_eq!(
            rules().determine_encountered_of(&borrowed, today()),
            rules().determine_encountered(&owned, today())
        );
    }
}
