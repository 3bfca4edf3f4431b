//! Priority ranks from the policy file, with explanations that add up.

use chrono::NaiveDate;
use verity_model::record::*;
use verity_model::*;
use verity_policy::priority::Criminality;
use verity_policy::{derive_facts, PriorityPolicy};

fn d(s: &str) -> PartialDate {
    PartialDate::parse_iso(s).expect("date")
}

fn charge(id: &str, code: &str, disposition: Disposition, date: &str) -> SourceRecord {
    SourceRecord {
        record_id: id.into(),
        identity: Identity::default(),
        body: RecordBody::Criminal(CriminalRecord {
            arrest_date: d(date),
            arresting_ori: None,
            ncic_code: code.into(),
            charge: String::new(),
            disposition,
            disposition_date: None,
            sentence_days: None,
        }),
    }
}

fn removal(id: &str, date: &str) -> SourceRecord {
    SourceRecord {
        record_id: id.into(),
        identity: Identity::default(),
        body: RecordBody::Enforcement(EnforcementRecord {
            event: EnforcementEvent::Removal,
            date: d(date),
            order: None,
            entry: None,
            office: String::new(),
            detail: String::new(),
        }),
    }
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 1).expect("date")
}

#[test]
fn convictions_outrank_pending_charges_and_reentry_adds() {
    let offenses = OffenseTable::embedded().expect("offenses");
    let policy = PriorityPolicy::embedded(&offenses).expect("policy");
    let records = vec![
        charge("C1", "1313", Disposition::Pending, "2025-01-01"),
        charge("C2", "1206", Disposition::Convicted, "2020-01-01"),
        removal("E1", "2021-01-01"),
        charge("C3", "2303", Disposition::Pending, "2025-06-01"),
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
