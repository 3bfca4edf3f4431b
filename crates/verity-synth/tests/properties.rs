//! Property tests: a person is a pure function of (seed, index), and every record they produce
//! survives the CSV round trip of `verity-model`.

use proptest::prelude::*;
use verity_model::record::csv_header;
use verity_model::SourceRecord;
use verity_synth::generate_person;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn person_is_pure_and_records_round_trip(seed: u64, index in 0u64..50_000_000) {
        let (truth, records) = generate_person(seed, index);
        prop_assert_eq!(&(truth.clone(), records.clone()), &generate_person(seed, index));
        prop_assert_eq!(truth.to_csv_row().len(), verity_synth::PersonTruth::CSV_HEADER.len());
        for r in &records {
            let header = csv_header(r.system());
            let row = r.to_csv_row();
            prop_assert_eq!(header.len(), row.len());
            let get = |c: &str| header.iter().position(|h| *h == c).map(|i| row[i].as_str());
            let back = SourceRecord::from_csv_row(r.system(), get);
            prop_assert!(back.is_ok(), "{}: {:?}", r.record_id, back);
            let back = back.unwrap_or_else(|_| r.clone());
            // Aliases are stored as "LAST, FIRST MIDDLE": compare that form.
            let alias_text = |x: &SourceRecord| {
                x.identity.aliases.iter().map(|a| a.last_first()).collect::<Vec<_>>()
            };
            prop_assert_eq!(alias_text(&back), alias_text(r));
            let (mut a, mut b) = (back.clone(), r.clone());
            a.identity.aliases.clear();
            b.identity.aliases.clear();
            prop_assert_eq!(a, b);
            // The compact form of the NCATC candidates file keeps every field, aliases too.
            let mut compact = Vec::new();
            prop_assert!(r.write_compact(&mut compact).is_ok());
            let back = SourceRecord::read_compact(&compact).map(|(rec, rest)| (rec, rest.len()));
            prop_assert_eq!(back.ok(), Some((r.clone(), 0)));
        }
    }
}

/// Regression: a person who dies before any other recorded event once got a death date in
/// year 0 (from `NaiveDate::MIN`), which import rejects. Every record must parse back.
#[test]
fn death_dates_are_real_dates_after_coming_of_age() {
    use verity_model::record::{EnforcementEvent, RecordBody};
    let mut deaths = 0;
    for index in 0..20_000u64 {
        let (truth, records) = verity_synth::generate_person(1, index);
        for r in &records {
            if let RecordBody::Enforcement(e) = &r.body {
                if e.event == EnforcementEvent::Deceased {
                    deaths += 1;
                    let born = chrono::Datelike::year(&truth.dob);
                    assert!(
                        i32::from(e.date.year) >= born + 18,
                        "{} died at {} but was born {}",
                        truth.person_id,
                        e.date,
                        truth.dob
                    );
                }
            }
        }
    }
    assert!(
        deaths > 10,
        "only {deaths} deaths in 20,000 people: the test says nothing"
    );
}

/// Regression: a typo that deleted the only letter of "A" in a given name "A BERT" once left
/// " BERT", which the CSV form trims, so the record did not round-trip.
#[test]
fn a_one_letter_token_survives_name_noise() {
    let (_, records) = generate_person(6_607_964_266_795_181_311, 32_540_346);
    for r in &records {
        for part in [
            &r.identity.name.given,
            &r.identity.name.middle,
            &r.identity.name.family,
        ] {
            assert_eq!(part.trim(), part, "{}: {part:?}", r.record_id);
            assert!(!part.contains("  "), "{}: {part:?}", r.record_id);
        }
    }
}
