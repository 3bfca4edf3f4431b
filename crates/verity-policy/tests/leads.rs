//! Lead rules and deconfliction: who becomes a lead, who is parked and why, and that nobody
//! with a sign of citizenship ever does.

mod support;

use proptest::prelude::*;
use support::*;
use verity_model::record::*;
use verity_model::*;
use verity_policy::{
    derive_facts, LeadOutcome, LeadPolicy, Ongoing, ParkReason, PriorityPolicy, StatusRules,
};

struct Policies {
    rules: StatusRules,
    priority: PriorityPolicy,
    leads: LeadPolicy,
    offenses: OffenseTable,
}

fn policies() -> Policies {
    let offenses = OffenseTable::embedded().expect("offenses");
    let priority = PriorityPolicy::embedded(&offenses).expect("priority");
    let leads = LeadPolicy::embedded(&priority).expect("leads");
    Policies {
        rules: StatusRules::embedded().expect("rules"),
        priority,
        leads,
        offenses,
    }
}

fn evaluate(
    p: &Policies,
    records: &[SourceRecord],
    identity: f64,
    location: bool,
    ongoing: Ongoing,
) -> LeadOutcome {
    let facts = derive_facts(records, today());
    let det = p.rules.determine(records, today());
    p.leads.evaluate(
        records,
        &facts,
        &det,
        identity,
        location,
        ongoing,
        &p.priority,
        &p.offenses,
    )
}

#[test]
fn lead_rules_and_parking() {
    let p = policies();
    let order = court("K1", CourtOutcome::RemovalOrdered, "2020-01-01", false);
    let outcome = evaluate(
        &p,
        std::slice::from_ref(&order),
        0.999,
        true,
        Ongoing::default(),
    );
    assert!(
        matches!(&outcome, LeadOutcome::Lead { rules, .. } if rules == &["final_order_not_executed"]),
        "{outcome:?}"
    );

    let parked = |o: LeadOutcome| match o {
        LeadOutcome::Parked { reason, .. } => Some(reason),
        _ => None,
    };
    assert_eq!(
        parked(evaluate(
            &p,
            std::slice::from_ref(&order),
            0.9,
            true,
            Ongoing::default()
        )),
        Some(ParkReason::IdentityBelowThreshold)
    );
    assert_eq!(
        parked(evaluate(
            &p,
            std::slice::from_ref(&order),
            0.999,
            false,
            Ongoing::default()
        )),
        Some(ParkReason::NoKnownLocation)
    );
    let ongoing = Ongoing {
        open_lead: true,
        ..Default::default()
    };
    assert_eq!(
        parked(evaluate(
            &p,
            std::slice::from_ref(&order),
            0.999,
            true,
            ongoing
        )),
        Some(ParkReason::OpenLead)
    );
    let dead = enforcement("E9", EnforcementEvent::Deceased, "2025-01-01", None, None);
    assert_eq!(
        parked(evaluate(
            &p,
            &[order.clone(), dead],
            0.999,
            true,
            Ongoing::default()
        )),
        Some(ParkReason::Deceased)
    );
    let asylum = benefit("B1", BenefitType::Asylum, BenefitOutcome::Pending, None);
    // A final order outranks the pending asylum status, but the pending relief still parks it.
    assert_eq!(
        parked(evaluate(
            &p,
            &[order, asylum],
            0.999,
            true,
            Ongoing::default()
        )),
        Some(ParkReason::ReliefBarsAction)
    );
}

#[test]
fn reentry_and_severe_conviction_rules() {
    let p = policies();
    let removed = enforcement("E1", EnforcementEvent::Removal, "2019-01-01", None, None);
    let back = charge("C1", "MX", "1313", Disposition::Pending, "2024-01-01");
    let outcome = evaluate(&p, &[removed, back], 0.999, true, Ongoing::default());
    assert!(
        matches!(&outcome, LeadOutcome::Lead { rules, .. } if rules.contains(&"reentry_after_removal".to_string())),
        "{outcome:?}"
    );

    let lpr = benefit("B1", BenefitType::Adjustment, BenefitOutcome::Granted, None);
    let robbery = charge("C2", "MX", "1206", Disposition::Convicted, "2023-01-01");
    let outcome = evaluate(
        &p,
        &[lpr.clone(), robbery.clone()],
        0.999,
        true,
        Ongoing::default(),
    );
    assert!(
        matches!(&outcome, LeadOutcome::Lead { rules, .. } if rules == &["severe_conviction_at_large"]),
        "{outcome:?}"
    );
    // In local custody the person is not at large: PERC's detainer path applies instead.
    let outcome = evaluate(
        &p,
        &[lpr, robbery, custody("J1", None)],
        0.999,
        true,
        Ongoing::default(),
    );
    assert_eq!(outcome, LeadOutcome::None);
}

#[test]
fn bad_lead_files_are_rejected() {
    let p = policies();
    let good = verity_policy::leads::EMBEDDED_LEADS;
    let e = LeadPolicy::load(
        &good.replace(
            "conviction_class = \"level1\"",
            "conviction_class = \"level9\"",
        ),
        &p.priority,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("unknown severity class 'level9'"),
        "{e}"
    );
    let e = LeadPolicy::load(
        &good.replace(
            "statuses = [\"previously_removed\"]",
            "statuses = [\"us_citizen_birth\"]",
        ),
        &p.priority,
    )
    .unwrap_err();
    assert!(e.to_string().contains("can never rest on"), "{e}");
    let e = LeadPolicy::load(
        &good.replace(
            "none = [\"removed\"]\nstatuses = [\"final_order_of_removal\"]\nneeds",
            "none = [\"final_order\"]\nstatuses = [\"final_order_of_removal\"]\nneeds",
        ),
        &p.priority,
    )
    .unwrap_err();
    assert!(e.to_string().contains("contradiction"), "{e}");
    assert!(LeadPolicy::load(&format!("{good}\n[extra]\nx = 1\n"), &p.priority).is_err());
}

fn any_history() -> impl Strategy<Value = Vec<SourceRecord>> {
    let pick = prop_oneof![
        Just(court(
            "K1",
            CourtOutcome::RemovalOrdered,
            "2020-01-01",
            false
        )),
        Just(court(
            "K2",
            CourtOutcome::InAbsentiaOrder,
            "2021-01-01",
            false
        )),
        Just(enforcement(
            "E1",
            EnforcementEvent::Removal,
            "2021-06-01",
            None,
            None
        )),
        Just(charge(
            "C1",
            "MX",
            "1206",
            Disposition::Convicted,
            "2023-01-01"
        )),
        Just(charge(
            "C2",
            "US",
            "1313",
            Disposition::Pending,
            "2024-01-01"
        )),
        Just(citizenship("Z1", CitizenshipEvidence::CitizenshipClaim)),
        Just(benefit(
            "B1",
            BenefitType::Naturalization,
            BenefitOutcome::Granted,
            None
        )),
        Just(arrival("T1", "B2", "2019-01-01", Some("2019-06-01"))),
        Just(custody("J1", None)),
        Just(enforcement(
            "E2",
            EnforcementEvent::IceDetention,
            "2026-01-01",
            None,
            None
        )),
    ];
    proptest::collection::vec(pick, 0..6)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// No lead ever rests on a person with citizenship indicia, below the identity threshold,
    /// or already in ICE custody.
    #[test]
    fn leads_respect_the_safeguards(records in any_history(), identity in 0.5f64..1.0, claim: bool, loc: bool) {
        let p = policies();
        let ongoing = Ongoing { open_citizenship_claim: claim, ..Default::default() };
        let outcome = evaluate(&p, &records, identity, loc, ongoing);
        let det = p.rules.determine(&records, today());
        if claim || !det.citizenship_indicia.is_empty() {
            prop_assert_eq!(outcome, LeadOutcome::CitizenshipReview);
        } else if let LeadOutcome::Lead { .. } = outcome {
            prop_assert!(identity >= p.leads.min_identity_probability);
            let facts = derive_facts(&records, today());
            prop_assert!(!facts.contains_key(&verity_policy::FactName::InIceCustody));
            prop_assert!(!det.status.is_non_answer());
        }
    }
}
