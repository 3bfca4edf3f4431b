//! Builders for hand-made record histories, shared by the policy tests.
#![allow(dead_code)]

use chrono::NaiveDate;
use verity_model::record::*;
use verity_model::*;

pub fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 1).expect("valid date")
}

pub fn d(s: &str) -> PartialDate {
    PartialDate::parse_iso(s).expect("valid test date")
}

pub fn rec(id: &str, cob: &str, body: RecordBody) -> SourceRecord {
    let identity = Identity {
        name: PersonName::new("ANA", "", "REYES"),
        country_of_birth: cob.into(),
        ..Default::default()
    };
    SourceRecord {
        record_id: id.into(),
        identity,
        body,
    }
}

pub fn benefit(
    id: &str,
    benefit: BenefitType,
    outcome: BenefitOutcome,
    valid_until: Option<&str>,
) -> SourceRecord {
    rec(
        id,
        "MX",
        RecordBody::Benefits(BenefitsRecord {
            receipt_number: id.into(),
            benefit,
            outcome,
            filed: Some(d("2015-01-01")),
            decided: Some(d("2016-01-01")),
            valid_until: valid_until.map(d),
        }),
    )
}

pub fn court(id: &str, outcome: CourtOutcome, decided: &str, appeal: bool) -> SourceRecord {
    rec(
        id,
        "MX",
        RecordBody::Court(CourtRecord {
            case_number: id.into(),
            filed: d("2018-01-01"),
            outcome,
            decided: Some(d(decided)),
            relief: String::new(),
            appeal_pending: appeal,
        }),
    )
}

pub fn enforcement(
    id: &str,
    event: EnforcementEvent,
    date: &str,
    order: Option<OrderKind>,
    entry: Option<EntryManner>,
) -> SourceRecord {
    rec(
        id,
        "MX",
        RecordBody::Enforcement(EnforcementRecord {
            event,
            date: d(date),
            order,
            entry,
            office: String::new(),
            detail: String::new(),
        }),
    )
}

pub fn arrival(id: &str, class: &str, date: &str, until: Option<&str>) -> SourceRecord {
    rec(
        id,
        "MX",
        RecordBody::Travel(TravelRecord {
            direction: TravelDirection::Arrival,
            date: d(date),
            class_of_admission: class.into(),
            admit_until: until.map(d),
            port: "LAX".into(),
        }),
    )
}

pub fn charge(
    id: &str,
    cob: &str,
    code: &str,
    disposition: Disposition,
    date: &str,
) -> SourceRecord {
    rec(
        id,
        cob,
        RecordBody::Criminal(CriminalRecord {
            arrest_date: d(date),
            arresting_ori: None,
            ncic_code: code.into(),
            charge: String::new(),
            disposition,
            disposition_date: None,
            sentence_days: None,
            flags: Vec::new(),
        }),
    )
}

/// A charge whose record carries law-enforcement flags.
pub fn flagged_charge(
    id: &str,
    code: &str,
    disposition: Disposition,
    flags: &[LawEnforcementFlag],
) -> SourceRecord {
    let mut r = charge(id, "MX", code, disposition, "2024-03-01");
    if let RecordBody::Criminal(c) = &mut r.body {
        c.flags = flags.to_vec();
    }
    r
}

pub fn arrest(id: &str, cob: &str, date: &str) -> SourceRecord {
    charge(id, cob, "1313", Disposition::Pending, date)
}

pub fn citizenship(id: &str, evidence: CitizenshipEvidence) -> SourceRecord {
    rec(
        id,
        "MX",
        RecordBody::Citizenship(CitizenshipRecord {
            evidence,
            document_number: "X1".into(),
            issued: None,
        }),
    )
}

pub fn custody(id: &str, released: Option<&str>) -> SourceRecord {
    rec(
        id,
        "MX",
        RecordBody::Custody(CustodyRecord {
            booking_number: id.into(),
            facility: "County Jail".into(),
            ori: Ori::parse("TX0150000").expect("valid ori"),
            county: "Bexar".into(),
            state: "TX".into(),
            booking_date: d("2026-10-01"),
            expected_release: None,
            released: released.map(d),
        }),
    )
}
