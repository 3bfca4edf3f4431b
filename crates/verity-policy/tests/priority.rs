//! Priority ranks from the policy file, with explanations that add up.

mod support;

use support::*;
use verity_model::record::*;
use verity_model::*;
use verity_policy::priority::Criminality;
use verity_policy::{derive_facts, PriorityPolicy};

#[test]
fn convictions_outrank_pending_charges_and_reentry_adds() {
    let offenses = OffenseTable::embedded().expect("offenses");
    let policy = PriorityPolicy::embedded(&offenses).expect("policy");
    let records = vec![
        charge("C1", "MX", "1313", Disposition::Pending, "2025-01-01"),
        charge("C2", "MX", "1206", Disposition::Convicted, "2020-01-01"),
        enforcement("E1", EnforcementEvent::Removal, "2021-01-01", None, None),
        charge("C3", "MX", "2303", Disposition::Pending, "2025-06-01"),
    ];
    let facts = derive_facts(&records, today());
    let rank = policy.rank(&records, &facts, &offenses);
    assert_eq!(rank.criminality, Criminality::ConvictedCriminal);
    assert_eq!(rank.most_serious, Some(("1206".into(), "level1".into())));
    assert_eq!(
        rank.points,
        rank.factors.iter().map(|f| f.points).sum::<i64>()
    );
    let names: Vec<&str> = rank.factors.iter().map(|f| f.name.as_str()).collect();
    assert!(
        names.contains(&"convicted_level1") && names.contains(&"reentry_after_removal"),
        "{names:?}"
    );
    assert_eq!(rank.tier, "priority_1");
    assert_eq!(rank.policy_version, policy.version);
}

#[test]
fn no_criminal_record_is_an_other_immigration_violator() {
    let offenses = OffenseTable::embedded().expect("offenses");
    let policy = PriorityPolicy::embedded(&offenses).expect("policy");
    let rank = policy.rank(&[], &derive_facts(&[], today()), &offenses);
    assert_eq!(
        (rank.criminality, rank.points, rank.tier.as_str()),
        (Criminality::OtherImmigrationViolator, 0, "not_a_priority")
    );
}

#[test]
fn bad_policy_files_are_rejected_with_line_and_reason() {
    let offenses = OffenseTable::embedded().expect("offenses");
    let good = verity_policy::priority::EMBEDDED_PRIORITY;
    let bad_code = good.replace("\"3562\" = \"level3\"", "\"356\" = \"level3\"");
    let e = PriorityPolicy::load(&bad_code, &offenses)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("bad offense code '356'") && e.contains("line"),
        "{e}"
    );
    let unknown_code = good.replace("\"3562\" = \"level3\"", "\"9876\" = \"level3\"");
    assert!(PriorityPolicy::load(&unknown_code, &offenses)
        .unwrap_err()
        .to_string()
        .contains("not in the offense table"));
    let twice = good.replace(
        "level3 = [\"larceny\"",
        "level3 = [\"homicide\", \"larceny\"",
    );
    let e = PriorityPolicy::load(&twice, &offenses)
        .unwrap_err()
        .to_string();
    assert!(e.contains("contradiction") && e.contains("homicide"), "{e}");
    let unknown_field = good.replace("[points]", "[points]\nbonus = 5");
    assert!(PriorityPolicy::load(&unknown_field, &offenses)
        .unwrap_err()
        .to_string()
        .contains("bonus"));
    let unknown_cat = good.replace("\"larceny\"", "\"piracy\"");
    assert!(PriorityPolicy::load(&unknown_cat, &offenses)
        .unwrap_err()
        .to_string()
        .contains("unknown offense category 'piracy'"));
}

/// Ranks `records` with the embedded policy and offense table.
fn rank_of(records: &[SourceRecord]) -> verity_policy::priority::Rank {
    let offenses = OffenseTable::embedded().expect("offenses");
    let policy = PriorityPolicy::embedded(&offenses).expect("policy");
    policy.rank(records, &derive_facts(records, today()), &offenses)
}

#[test]
fn gang_flag_raises_the_rank_and_is_explained_with_its_record() {
    let plain = rank_of(&[flagged_charge("C1", "1313", Disposition::Pending, &[])]);
    let flagged = rank_of(&[flagged_charge(
        "C1",
        "1313",
        Disposition::Pending,
        &[LawEnforcementFlag::GangMember],
    )]);
    assert!(flagged.points > plain.points, "{flagged:?} vs {plain:?}");
    let factor = flagged
        .factors
        .iter()
        .find(|f| f.name == "gang_flag")
        .expect("gang_flag factor in the explanation");
    assert!(factor.points > 0);
    assert_eq!(factor.records, vec!["C1".to_string()]);
    assert!(factor.detail.contains("gang"), "{}", factor.detail);
    assert_eq!(
        flagged.points,
        flagged.factors.iter().map(|f| f.points).sum::<i64>()
    );
    assert!(!plain.factors.iter().any(|f| f.name == "gang_flag"));
}

#[test]
fn national_security_flag_makes_a_minor_case_a_top_priority() {
    let plain = rank_of(&[flagged_charge("C1", "1313", Disposition::Pending, &[])]);
    let flagged = rank_of(&[
        flagged_charge("C1", "1313", Disposition::Pending, &[]),
        flagged_charge(
            "C2",
            "1313",
            Disposition::Dismissed,
            &[LawEnforcementFlag::NationalSecurity],
        ),
    ]);
    assert_eq!(plain.tier, "priority_3");
    assert_eq!(flagged.tier, "priority_1");
    let factor = flagged
        .factors
        .iter()
        .find(|f| f.name == "national_security_flag")
        .expect("national_security_flag factor in the explanation");
    // The flag stands on the dismissed charge's record: a watchlist hit is not a charge.
    assert_eq!(factor.records, vec!["C2".to_string()]);
    assert!(
        factor.detail.contains("national-security"),
        "{}",
        factor.detail
    );
}

#[test]
fn a_flag_counts_once_however_many_records_carry_it() {
    let gang = [LawEnforcementFlag::GangMember];
    let once = rank_of(&[flagged_charge("C1", "1313", Disposition::Pending, &gang)]);
    let twice = rank_of(&[
        flagged_charge("C1", "1313", Disposition::Pending, &gang),
        flagged_charge("C2", "1313", Disposition::Dismissed, &gang),
    ]);
    assert_eq!(once.points, twice.points);
    let factor = twice
        .factors
        .iter()
        .find(|f| f.name == "gang_flag")
        .expect("gang_flag factor");
    assert_eq!(factor.records, vec!["C1".to_string(), "C2".to_string()]);
}
