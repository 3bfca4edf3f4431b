//! Nlets IAQ parsing (the domain reference's example and its traps), all-problems reporting,
//! IAQ write/parse round trips and the IAR text layout.

use chrono::NaiveDate;
use proptest::prelude::*;
use verity_formats::nlets::{parse_iaq, write_iaq, write_iar, Iaq, IarText};
use verity_model::{ANumber, FbiNumber, Ori, PartialDate, PersonName, Purpose, Sex, StateId};

const EXAMPLE: &str = "IAQ.MD0030000.AX.TXT PUR/C.ATN/SGT J DOE.PHN/4105550100.NAM/GARCIA LOPEZ, JOSE LUIS.DOB/19850312.SEX/M.POB/MX.CUS/Y.OFF/1313.ARN/012345678";

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 28).expect("valid date")
}

fn fields(problems: &verity_formats::nlets::IaqErrors) -> Vec<&str> {
    problems.0.iter().map(|p| p.field.as_str()).collect()
}

#[test]
fn domain_example_parses() {
    let q = parse_iaq(EXAMPLE, today()).expect("example is valid");
    assert_eq!(q.sender.as_str(), "MD0030000");
    assert_eq!(q.control, None);
    assert_eq!(q.purpose, Purpose::CriminalJustice);
    assert_eq!(q.attention, "SGT J DOE");
    assert_eq!(q.phone, "4105550100");
    assert_eq!(q.name, PersonName::new("JOSE", "LUIS", "GARCIA LOPEZ"));
    assert_eq!(q.dob, PartialDate::full(1985, 3, 12).expect("valid"));
    assert_eq!(q.sex, Some(Sex::Male));
    assert_eq!(q.pob, "MX");
    assert!(q.in_custody);
    assert_eq!(q.offense, "1313");
    assert_eq!(q.a_number.as_ref().map(ANumber::as_str), Some("012345678"));
}

#[test]
fn line_breaks_control_field_and_trailing_period_are_accepted() {
    let text = "IAQ.MD0030000.AX.C0001.\r\nTXT\r\nPUR/F.\r\nATN/DESK SGT.\nPHN/410-555-0100.\nNAM/DOE, JANE.\nDOB/031285.\nSEX/F.\nPOB/CA.\nCUS/N.\nOFF/0399.\nMIS/PASSPORT NO. X123 SEEN.\n";
    let q = parse_iaq(text, today()).expect("valid");
    assert_eq!(q.control.as_deref(), Some("C0001"));
    assert_eq!(q.purpose, Purpose::Firearms);
    assert_eq!(q.dob.year, 1985);
    assert!(!q.in_custody);
    assert_eq!(
        q.other,
        vec![("MIS".to_string(), "PASSPORT NO. X123 SEEN".to_string())]
    );
}

#[test]
fn header_may_end_with_a_line_break_instead_of_a_period() {
    let text = EXAMPLE.replace("AX.TXT ", "AX\nTXT\n");
    assert!(parse_iaq(&text, today()).is_ok());
    let err = parse_iaq(&EXAMPLE.replace("AX.TXT", "AX TXT"), today()).expect_err("no separator");
    assert!(fields(&err).contains(&"header"), "{err}");
}

#[test]
fn six_digit_dob_gets_the_century_that_keeps_it_in_the_past() {
    let q = parse_iaq(&EXAMPLE.replace("19850312", "031210"), today()).expect("valid");
    assert_eq!(q.dob.year, 2010);
    let q = parse_iaq(&EXAMPLE.replace("19850312", "120126"), today()).expect("valid");
    assert_eq!(q.dob.year, 1926, "December 2026 would be in the future");
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let bad = "IAQ.MD003.AX.TXT PUR/X.ATN/THIS ATTENTION LINE IS FAR TOO LONG FOR NLETS.PHN/4105550100.NAM/DOE, J. R.DOB/20301301.SEX/Q.POB/MEX.CUS/MAYBE.OFF/13.ARN/1234";
    let err = parse_iaq(bad, today()).expect_err("invalid");
    let f = fields(&err);
    for expected in [
        "ORI", "PUR", "ATN", "NAM", "DOB", "SEX", "POB", "CUS", "OFF", "ARN",
    ] {
        assert!(
            f.contains(&expected),
            "missing problem for {expected}: {err}"
        );
    }
    assert!(!f.contains(&"PHN"), "{err}");
}

#[test]
fn missing_fields_are_each_named() {
    let err = parse_iaq(
        "IAQ.MD0030000.AX.TXT PUR/C.NAM/DOE, JOHN.DOB/19800101",
        today(),
    )
    .expect_err("incomplete");
    let f = fields(&err);
    for expected in ["ATN", "PHN", "SEX", "POB", "CUS", "OFF"] {
        assert!(f.contains(&expected), "{err}");
    }
}

#[test]
fn names_with_periods_and_missing_periods_are_rejected() {
    let err = parse_iaq(
        &EXAMPLE.replace("GARCIA LOPEZ, JOSE LUIS", "DOE, J. R"),
        today(),
    )
    .expect_err("period in name");
    assert!(fields(&err).contains(&"NAM"), "{err}");
    let err = parse_iaq(
        &EXAMPLE
            .replace(".SEX/M.", ".SEX/M\nPOB/MX.")
            .replace("POB/MX.CUS", "CUS"),
        today(),
    )
    .expect_err("missing period");
    assert!(
        err.to_string().contains("SEX: does not end with a period"),
        "{err}"
    );
    assert!(parse_iaq("HELLO", today()).is_err());
    assert!(parse_iaq("", today()).is_err());
}

#[test]
fn control_characters_and_symbols_in_names_are_rejected() {
    let err = parse_iaq(&EXAMPLE.replace("JOSE LUIS", "JOSE\u{0}LUIS"), today())
        .expect_err("control char");
    assert_eq!(fields(&err), vec!["NAM"], "{err}");
    let err = parse_iaq(&EXAMPLE.replace("JOSE LUIS", "JOSE/LUIS"), today()).expect_err("slash");
    assert_eq!(fields(&err), vec!["NAM"], "{err}");
}

#[test]
fn a_thirty_character_name_without_a_space_after_the_comma_round_trips() {
    // Found by fuzzing: writing "LAST, FIRST" added a space and pushed NAM past 30.
    let text = EXAMPLE.replace("GARCIA LOPEZ, JOSE LUIS", "ABCDEFGHIJKLMNOPQRS,JOSE LUISA");
    let q = parse_iaq(&text, today()).expect("30 characters is allowed");
    assert_eq!(parse_iaq(&write_iaq(&q), today()), Ok(q));
}

#[test]
fn future_eight_digit_dob_is_rejected() {
    let err = parse_iaq(&EXAMPLE.replace("19850312", "20270101"), today()).expect_err("future");
    assert_eq!(fields(&err), vec!["DOB"]);
}

#[test]
fn iar_reply_is_addressed_from_lesc() {
    let q = parse_iaq(EXAMPLE, today()).expect("valid");
    let mut iar = IarText::reply_to(&q);
    iar.push("STS", "LAWFUL PERMANENT RESIDENT");
    let text = write_iar(&iar);
    assert!(
        text.starts_with("IAR.MD0030000.VTICE0900.\nTXT\n"),
        "{text}"
    );
    assert!(text.contains("NAM/GARCIA LOPEZ, JOSE LUIS.\n"));
    assert!(text.ends_with("STS/LAWFUL PERMANENT RESIDENT.\n"));
}

fn iaq_strategy() -> impl Strategy<Value = Iaq> {
    (
        "[A-Z]{2}[0-9]{7}",
        proptest::option::of("[A-Z0-9]{1,10}"),
        prop_oneof![Just(Purpose::CriminalJustice), Just(Purpose::Firearms)],
        "[A-Z]{1,10}( [A-Z]{1,10})?",
        "[0-9]{10}",
        ("[A-Z]{1,10}", "[A-Z]{1,8}", "([A-Z]{1,6})?"),
        (1900u16..2020, 1u8..=12, 1u8..=28),
        prop_oneof![
            Just(None),
            Just(Some(Sex::Male)),
            Just(Some(Sex::Female)),
            Just(Some(Sex::Other))
        ],
        ("[A-Z]{2}", any::<bool>(), "[0-9]{4}"),
        (
            proptest::option::of("[0-9]{9}"),
            proptest::option::of("[0-9]{7}[A-Z]{2}"),
            proptest::option::of("[A-Z]{2}[0-9]{8}"),
        ),
        proptest::collection::vec("[A-Z0-9 ]{0,20}[A-Z0-9]", 0..3),
    )
        .prop_map(
            |(
                ori,
                control,
                purpose,
                atn,
                phn,
                (fam, giv, mid),
                (y, m, d),
                sex,
                (pob, cus, off),
                (arn, fbi, sid),
                mis,
            )| Iaq {
                sender: Ori::parse(&ori).expect("generated valid"),
                control,
                purpose,
                attention: atn,
                phone: phn,
                name: PersonName::new(&giv, &mid, &fam),
                dob: PartialDate::full(y, m, d).expect("generated valid"),
                sex,
                pob,
                in_custody: cus,
                offense: off,
                a_number: arn.map(|a| ANumber::parse(&a).expect("valid")),
                fbi: fbi.map(|f| FbiNumber::parse(&f).expect("valid")),
                sid: sid.map(|s| StateId::parse(&s).expect("valid")),
                oln: None,
                other: mis
                    .into_iter()
                    .map(|v| {
                        (
                            "MIS".to_string(),
                            v.split_whitespace().collect::<Vec<_>>().join(" "),
                        )
                    })
                    .collect(),
            },
        )
}

proptest! {
    #[test]
    fn write_then_parse_is_identity(q in iaq_strategy()) {
        let text = write_iaq(&q);
        prop_assert_eq!(parse_iaq(&text, today()), Ok(q));
    }

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
        let _ = parse_iaq(&s, today());
        let _ = parse_iaq(&format!("IAQ.MD0030000.AX.TXT {s}"), today());
    }
}
