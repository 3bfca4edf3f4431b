//! ANSI/NIST-ITL transactions: a CAR ten-print built with the builder round-trips, typed
//! helpers read back what was written, and malformed input names record, field and offset.

use proptest::prelude::*;
use verity_formats::ansi_nist::{
    read_transaction, write_transaction, Biographics, Field, LegacyMinutia, LegacyMinutiae, Record,
    Transaction, TransactionBuilder, Type14, Type9,
};
use verity_formats::{read_subject, FormatError};
use verity_model::{ANumber, FbiNumber, Fin, PartialDate, PersonName, Sex, Ssn, StateId};

fn sample_biographics() -> Biographics {
    Biographics {
        name: Some(PersonName::new("JOSE", "LUIS", "GARCIA LOPEZ")),
        aliases: vec![PersonName::new("PEPE", "", "GARCIA")],
        dob: Some(PartialDate::full(1985, 3, 12).expect("valid date")),
        sex: Some(Sex::Male),
        pob: Some("MX".into()),
        citizenship: vec!["MX".into()],
        fbi: Some(FbiNumber::parse("123456AB7").expect("valid")),
        sid: Some(StateId::parse("MD12345678").expect("valid")),
        ssn: Some(Ssn::parse("900000001").expect("valid")),
        fin: Some(Fin::parse("1234567890").expect("valid")),
        a_number: Some(ANumber::parse("012345678").expect("valid")),
        other_numbers: vec![],
        date_of_arrest: Some(PartialDate::full(2024, 5, 1).expect("valid")),
        search_result: None,
        messages: vec![],
    }
}

fn car() -> Transaction {
    TransactionBuilder::car("MD0030000", "MD20240501000001", "20240501")
        .biographics(sample_biographics())
        .synthetic_fingers(7)
        .build()
}

#[test]
fn car_ten_print_round_trips() {
    let tx = car();
    let types: Vec<u32> = tx.records.iter().map(Record::record_type).collect();
    assert_eq!(types.iter().filter(|&&t| t == 4).count(), 10);
    assert_eq!(types.iter().filter(|&&t| t == 9).count(), 10);
    let bytes = write_transaction(&tx);
    assert!(bytes.starts_with(b"1.001:"));
    let back = read_transaction(&bytes).expect("reads what it wrote");
    assert_eq!(back, tx);
    assert_eq!(write_transaction(&back), bytes, "stable encoding");
}

#[test]
fn helpers_expose_header_and_biographics() {
    let tx = read_transaction(&write_transaction(&car())).expect("reads");
    assert_eq!(tx.tot(), "CAR");
    assert_eq!(tx.ori(), "MD0030000");
    assert_eq!(tx.tcn(), "MD20240501000001");
    let b = tx.biographics();
    assert_eq!(b, sample_biographics());
    let (ppcm, views) = tx.finger_views();
    assert_eq!(ppcm, 197);
    assert_eq!(views.len(), 10);
    assert_eq!(
        views.iter().map(|v| v.finger_position).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<u8>>()
    );
}

#[test]
fn type2_uses_ebts_text_forms() {
    let bytes = write_transaction(&car());
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("2.018:GARCIA LOPEZ,JOSE LUIS"), "{text}");
    assert!(text.contains("2.022:19850312"));
    assert!(text.contains("2.017:FN-1234567890\u{1e}AR-012345678"));
    assert!(text.contains("1.003:1\u{1f}21\u{1e}2\u{1f}00\u{1e}4\u{1f}01"));
}

#[test]
fn read_subject_and_describe_work_on_transactions() {
    let bytes = write_transaction(&car());
    let s = read_subject(&bytes).expect("subject");
    assert_eq!(s.format, "ANSI/NIST-ITL");
    assert_eq!(s.views.len(), 10);
    let d = verity_formats::describe(&bytes).expect("describe");
    assert!(d.contains("TOT: CAR"), "{d}");
    assert!(d.contains("GARCIA LOPEZ, JOSE LUIS"), "{d}");
    assert!(d.contains("Type-4 x10"), "{d}");
}

fn replace(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let text = bytes.to_vec();
    let pos = text
        .windows(from.len())
        .position(|w| w == from.as_bytes())
        .expect("pattern present");
    let mut out = text[..pos].to_vec();
    out.extend_from_slice(to.as_bytes());
    out.extend_from_slice(&text[pos + from.len()..]);
    out
}

#[test]
fn bad_dob_names_record_field_and_offset() {
    let bytes = write_transaction(&car());
    let bad = replace(&bytes, "2.022:19850312", "2.022:19851312");
    let expected_offset = bad.windows(6).position(|w| w == b"2.022:").expect("tag") + 6;
    match read_transaction(&bad) {
        Err(FormatError::Record {
            record_type,
            record_index,
            field,
            offset,
            ..
        }) => {
            assert_eq!((record_type, record_index, field.as_str()), (2, 1, "2.022"));
            assert_eq!(offset, expected_offset);
        }
        other => panic!("expected a Type-2 error, got {other:?}"),
    }
}

#[test]
fn cnt_disagreeing_with_records_is_rejected() {
    let bytes = write_transaction(&car());
    // Claim one more record than present.
    let bad = replace(&bytes, "1.003:1\u{1f}21", "1.003:1\u{1f}22");
    let err = read_transaction(&bad).expect_err("CNT mismatch");
    assert!(
        err.to_string().contains("1.003") || err.to_string().contains("1.001"),
        "{err}"
    );
}

#[test]
fn legacy_type9_and_type14_round_trip() {
    let mut tx = car();
    tx.records.push(Record::Type9(Type9 {
        idc: 11,
        impression_type: 0,
        minutiae_format: "S".into(),
        legacy: Some(LegacyMinutiae {
            reading_system: Some("NBIS\u{1f}A".into()),
            finger_position: 2,
            pattern_class: Some("T\u{1f}WU".into()),
            cores: None,
            deltas: None,
            ridge_count_indicator: Some("0".into()),
            minutiae: vec![LegacyMinutia {
                index: 1,
                x: 1234,
                y: 567,
                theta: 359,
                quality: 40,
                kind: 'B',
                ridge_counts: vec![],
            }],
        }),
        incits: None,
        other: vec![],
    }));
    tx.records.push(Record::Type14(Type14 {
        idc: 12,
        impression_type: 1,
        source_agency: "MD0030000".into(),
        capture_date: "20240501".into(),
        width: 800,
        height: 750,
        scale_units: 1,
        x_scale: 500,
        y_scale: 500,
        compression: "WSQ20".into(),
        bits_per_pixel: 8,
        finger_position: 13,
        other: vec![Field::text(20, "COMMENT")],
        image: vec![0x1C, 0x1D, 0x00, 0xFF, 0x1C],
    }));
    let bytes = write_transaction(&tx);
    let back = read_transaction(&bytes).expect("reads");
    assert_eq!(back, tx);
    let legacy = back
        .records
        .iter()
        .find_map(|r| match r {
            Record::Type9(t) if t.legacy.is_some() => t.finger_view(),
            _ => None,
        })
        .expect("legacy view");
    assert_eq!(legacy.0, 1000);
    let m = legacy.1.minutiae[0];
    assert_eq!(
        (m.x, m.y),
        (1234, 9999 - 567),
        "y mirrored to a top-left origin"
    );
    assert_eq!(
        m.angle_degrees, 179.0,
        "legacy theta 359 turned by 180 degrees"
    );
    assert_eq!(m.kind, verity_formats::fmr::MinutiaKind::Bifurcation);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_biographics_round_trip(
        family in "[A-Z]{1,12}( [A-Z]{1,8})?",
        given in "[A-Z]{1,10}",
        middle in "([A-Z]{1,8})?",
        year in 1900u16..2020, month in 1u8..=12, day in 1u8..=28,
        tcn in "[A-Z0-9]{1,20}",
        seed in any::<u32>(),
        msg in proptest::collection::vec("[A-Z0-9 ]{1,30}", 0..3),
    ) {
        let b = Biographics {
            name: Some(PersonName::new(&given, &middle, &family)),
            dob: Some(PartialDate::full(year, month, day).expect("valid")),
            messages: msg.iter().map(|m| m.trim().to_string()).filter(|m| !m.is_empty()).collect(),
            ..Biographics::default()
        };
        let tx = TransactionBuilder::car("MD0030000", &tcn, "20240501").biographics(b).synthetic_fingers(seed).build();
        let bytes = write_transaction(&tx);
        prop_assert_eq!(read_transaction(&bytes), Ok(tx));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = read_transaction(&bytes);
        let mut prefixed = b"1.001:".to_vec();
        prefixed.extend_from_slice(&bytes);
        let _ = read_transaction(&prefixed);
    }

    #[test]
    fn corrupted_transactions_never_panic(pos in any::<prop::sample::Index>(), val in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let mut bytes = write_transaction(&TransactionBuilder::car("MD0030000", "T1", "20240501").synthetic_fingers(1).build());
        let p = pos.index(bytes.len());
        bytes[p] = val;
        let c = cut.index(bytes.len() + 1);
        bytes.truncate(c);
        let _ = read_transaction(&bytes);
        let _ = verity_formats::describe(&bytes);
    }
}
