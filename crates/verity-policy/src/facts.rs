//! Facts derived from one person's records, each citing the records it rests on.
//!
//! Fact extraction is code (typed, tested); which facts establish which status is data (the
//! status rules). Dates are compared with a `today` passed in, never read from the clock, so
//! a determination can be replayed.

use chrono::NaiveDate;
use std::collections::BTreeMap;
use verity_model::record::*;
use verity_model::{PartialDate, SourceRecord};

verity_model::code_enum! {
    /// The vocabulary the status rules may use.
    FactName {
    CitizenshipDocument = "citizenship_document",
    CitizenshipClaim = "citizenship_claim",
    NaturalizationGranted = "naturalization_granted",
    DerivedCitizenshipGranted = "derived_citizenship_granted",
    UsBirthplace = "us_birthplace",
    TravelAsCitizen = "travel_as_citizen",
    LprGranted = "lpr_granted",
    RefugeeGranted = "refugee_granted",
    AsylumGranted = "asylum_granted",
    TpsValid = "tps_valid",
    DacaValid = "daca_valid",
    ParoleValid = "parole_valid",
    AsylumPending = "asylum_pending",
    TpsPending = "tps_pending",
    AdjustmentPending = "adjustment_pending",
    ProceedingsPending = "proceedings_pending",
    FinalOrder = "final_order",
    InAbsentiaOrder = "in_absentia_order",
    OrderVacated = "order_vacated",
    Removed = "removed",
    PresentAfterRemoval = "present_after_removal",
    NonimmigrantAdmittedValid = "nonimmigrant_admitted_valid",
    NonimmigrantOverstay = "nonimmigrant_overstay",
    EnteredWithoutInspection = "entered_without_inspection",
    Deceased = "deceased",
    InIceCustody = "in_ice_custody",
    InLocalCustody = "in_local_custody",
    GangFlag = "gang_flag",
    NationalSecurityFlag = "national_security_flag",
}}

/// A fact with the records that establish it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    pub name: FactName,
    pub records: Vec<String>,
    /// Why, in a few words a specialist can check against the cited records.
    pub note: String,
}

#[derive(Default)]
struct Facts(BTreeMap<FactName, Fact>);

impl Facts {
    fn add(&mut self, name: FactName, record: &SourceRecord, note: impl Into<String>) {
        let f = self.0.entry(name).or_insert_with(|| Fact {
            name,
            records: Vec::new(),
            note: note.into(),
        });
        if !f.records.contains(&record.record_id) {
            f.records.push(record.record_id.clone());
        }
    }
}

fn on_or_after(d: Option<PartialDate>, today: NaiveDate) -> bool {
    // A validity date with an unknown day counts to the end of its month or year: we would
    // rather call a grant valid than call a person out of status on a missing day.
    match d {
        None => false,
        Some(p) => {
            let last = match (p.month, p.day) {
                (Some(m), Some(d)) => NaiveDate::from_ymd_opt(p.year.into(), m.into(), d.into()),
                (Some(m), None) => NaiveDate::from_ymd_opt(p.year.into(), m.into(), 1)
                    .and_then(|f| f.checked_add_months(chrono::Months::new(1)))
                    .and_then(|n| n.pred_opt()),
                _ => NaiveDate::from_ymd_opt(p.year.into(), 12, 31),
            };
            last.is_some_and(|l| l >= today)
        }
    }
}

/// Orders partial dates by their earliest possible day; used only to sequence events.
fn sort_key(d: &PartialDate) -> (u16, u8, u8) {
    (d.year, d.month.unwrap_or(1), d.day.unwrap_or(1))
}

fn keep_latest(slot: &mut Option<PartialDate>, d: PartialDate) {
    if slot.is_none_or(|s| sort_key(&d) > sort_key(&s)) {
        *slot = Some(d);
    }
}

/// Derives every fact the records support.
pub fn derive_facts(records: &[SourceRecord], today: NaiveDate) -> BTreeMap<FactName, Fact> {
    let refs: Vec<&SourceRecord> = records.iter().collect();
    derive_facts_of(&refs, today)
}

/// [`derive_facts`] over borrowed records, so that two groups of records can be judged as
/// one person's without cloning them (the LESC decision asks this of plausible runner-ups).
pub fn derive_facts_of(records: &[&SourceRecord], today: NaiveDate) -> BTreeMap<FactName, Fact> {
    use FactName as F;
    let mut facts = Facts::default();
    let mut last_removal: Option<PartialDate> = None;
    let mut last_order: Option<(PartialDate, &SourceRecord)> = None;
    let mut last_vacate: Option<PartialDate> = None;
    let mut latest_arrival: Option<&TravelRecord> = None;
    let mut latest_arrival_rec: Option<&SourceRecord> = None;
    let mut latest_departure: Option<PartialDate> = None;
    let mut ice_in: Option<PartialDate> = None;
    let mut ice_out: Option<PartialDate> = None;
    // The latest event of removal proceedings still open at the time (notice to appear, order
    // not final, case pending, appeal): a later final order or removal closes them.
    let mut last_proceeding: Option<PartialDate> = None;

    for &r in records {
        if r.identity.country_of_birth == "US" {
            facts.add(F::UsBirthplace, r, "a record gives a U.S. place of birth");
        }
        match &r.body {
            RecordBody::Citizenship(c) => match c.evidence {
                CitizenshipEvidence::CitizenshipClaim => {
                    facts.add(F::CitizenshipClaim, r, "the person claims U.S. citizenship")
                }
                _ => {
                    facts.add(
                        F::CitizenshipDocument,
                        r,
                        format!("citizenship evidence: {}", c.evidence),
                    );
                    // The certificate itself establishes how citizenship was gained, whether
                    // or not a benefits record of the grant exists (without this a
                    // naturalized citizen with only the certificate read "citizen by birth").
                    match c.evidence {
                        CitizenshipEvidence::NaturalizationCertificate => {
                            facts.add(F::NaturalizationGranted, r, "certificate of naturalization")
                        }
                        CitizenshipEvidence::CitizenshipCertificate => facts.add(
                            F::DerivedCitizenshipGranted,
                            r,
                            "certificate of citizenship (derived)",
                        ),
                        _ => {}
                    }
                }
            },
            RecordBody::Benefits(b) => {
                let granted = b.outcome == BenefitOutcome::Granted;
                let pending = b.outcome == BenefitOutcome::Pending;
                let valid =
                    granted && (b.valid_until.is_none() || on_or_after(b.valid_until, today));
                match b.benefit {
                    BenefitType::Naturalization if granted => {
                        facts.add(F::NaturalizationGranted, r, "naturalization granted")
                    }
                    BenefitType::CitizenshipCertificate if granted => facts.add(
                        F::DerivedCitizenshipGranted,
                        r,
                        "certificate of citizenship granted (derived)",
                    ),
                    BenefitType::Adjustment | BenefitType::ImmigrantVisa if granted => {
                        facts.add(F::LprGranted, r, "lawful permanent residence granted")
                    }
                    BenefitType::Adjustment if pending => {
                        facts.add(F::AdjustmentPending, r, "adjustment of status pending")
                    }
                    BenefitType::Refugee if granted => {
                        facts.add(F::RefugeeGranted, r, "refugee status granted")
                    }
                    BenefitType::Asylum if granted => {
                        facts.add(F::AsylumGranted, r, "asylum granted")
                    }
                    BenefitType::Asylum if pending => {
                        facts.add(F::AsylumPending, r, "asylum application pending")
                    }
                    BenefitType::Tps if valid && b.valid_until.is_some() => {
                        facts.add(F::TpsValid, r, "TPS granted and current")
                    }
                    BenefitType::Tps if pending => {
                        facts.add(F::TpsPending, r, "TPS application pending")
                    }
                    BenefitType::Daca if valid && b.valid_until.is_some() => {
                        facts.add(F::DacaValid, r, "DACA granted and current")
                    }
                    BenefitType::Parole if valid && b.valid_until.is_some() => {
                        facts.add(F::ParoleValid, r, "parole granted and current")
                    }
                    _ => {}
                }
            }
            RecordBody::Travel(t) => {
                let class = t.class_of_admission.as_str();
                if class == "USC" {
                    facts.add(F::TravelAsCitizen, r, "travelled as a U.S. citizen");
                }
                match t.direction {
                    TravelDirection::Arrival => {
                        if class == "LPR" {
                            facts.add(F::LprGranted, r, "admitted as a lawful permanent resident");
                        }
                        if latest_arrival.is_none_or(|a| sort_key(&t.date) > sort_key(&a.date)) {
                            latest_arrival = Some(t);
                            latest_arrival_rec = Some(r);
                        }
                    }
                    TravelDirection::Departure => {
                        keep_latest(&mut latest_departure, t.date);
                    }
                }
            }
            RecordBody::Enforcement(e) => match e.event {
                EnforcementEvent::Removal => {
                    facts.add(F::Removed, r, "removed from the United States");
                    keep_latest(&mut last_removal, e.date);
                }
                EnforcementEvent::RemovalOrder => match e.order {
                    Some(OrderKind::Final) | Some(OrderKind::InAbsentia) => {
                        if e.order == Some(OrderKind::InAbsentia) {
                            facts.add(F::InAbsentiaOrder, r, "removal ordered in absentia");
                        }
                        if last_order.is_none_or(|(d, _)| sort_key(&e.date) > sort_key(&d)) {
                            last_order = Some((e.date, r));
                        }
                    }
                    Some(OrderKind::Vacated) => {
                        keep_latest(&mut last_vacate, e.date);
                        facts.add(F::OrderVacated, r, "removal order vacated");
                    }
                    Some(OrderKind::Pending) | None => {
                        keep_latest(&mut last_proceeding, e.date);
                        facts.add(F::ProceedingsPending, r, "removal order not final")
                    }
                },
                EnforcementEvent::NoticeToAppear => {
                    keep_latest(&mut last_proceeding, e.date);
                    facts.add(F::ProceedingsPending, r, "notice to appear issued")
                }
                EnforcementEvent::BorderApprehension | EnforcementEvent::Encounter
                    if e.entry == Some(EntryManner::WithoutInspection) =>
                {
                    facts.add(F::EnteredWithoutInspection, r, "entered without inspection")
                }
                EnforcementEvent::IceDetention => keep_latest(&mut ice_in, e.date),
                EnforcementEvent::IceRelease => keep_latest(&mut ice_out, e.date),
                EnforcementEvent::Deceased => facts.add(F::Deceased, r, "recorded as deceased"),
                _ => {}
            },
            RecordBody::Court(c) => match c.outcome {
                CourtOutcome::Pending => {
                    keep_latest(&mut last_proceeding, c.decided.unwrap_or(c.filed));
                    facts.add(F::ProceedingsPending, r, "immigration court case pending")
                }
                CourtOutcome::RemovalOrdered | CourtOutcome::InAbsentiaOrder
                    if c.appeal_pending =>
                {
                    keep_latest(&mut last_proceeding, c.decided.unwrap_or(c.filed));
                    facts.add(F::ProceedingsPending, r, "removal ordered; appeal pending")
                }
                CourtOutcome::RemovalOrdered | CourtOutcome::InAbsentiaOrder => {
                    if c.outcome == CourtOutcome::InAbsentiaOrder {
                        facts.add(F::InAbsentiaOrder, r, "removal ordered in absentia");
                    }
                    let d = c.decided.unwrap_or(c.filed);
                    if last_order.is_none_or(|(o, _)| sort_key(&d) > sort_key(&o)) {
                        last_order = Some((d, r));
                    }
                }
                CourtOutcome::ReliefGranted | CourtOutcome::Terminated => {
                    let d = c.decided.unwrap_or(c.filed);
                    keep_latest(&mut last_vacate, d);
                    facts.add(F::OrderVacated, r, format!("court: {}", c.outcome));
                    // An immigration judge's grant of asylum is a grant of asylum, whether or
                    // not a benefits record of it exists.
                    if c.outcome == CourtOutcome::ReliefGranted
                        && c.relief.trim().eq_ignore_ascii_case("asylum")
                    {
                        facts.add(
                            F::AsylumGranted,
                            r,
                            "asylum granted by an immigration judge",
                        );
                    }
                }
                CourtOutcome::VoluntaryDeparture => {}
            },
            RecordBody::Custody(c) => {
                if c.released.is_none() {
                    facts.add(
                        F::InLocalCustody,
                        r,
                        format!("in custody at {} ({}, {})", c.facility, c.county, c.state),
                    );
                }
            }
            // Flags come from law-enforcement files, not from the charge, so they count
            // whatever the charge's disposition.
            RecordBody::Criminal(c) => {
                for flag in &c.flags {
                    let name = match flag {
                        LawEnforcementFlag::GangMember => F::GangFlag,
                        LawEnforcementFlag::NationalSecurity => F::NationalSecurityFlag,
                    };
                    facts.add(name, r, format!("record flag: {}", flag.description()));
                }
            }
            RecordBody::Biometrics(_) => {}
        }
    }

    // Proceedings are no longer pending once a final order or a removal came on or after
    // their latest event (a notice to appear before the order is part of the same case; session
    // 3 answered "pending proceedings" for a person removed since).
    if let Some(open) = last_proceeding {
        // An order vacated later does not close anything (the case may be reopened).
        let closed_by_order = last_order.is_some_and(|(d, _)| {
            sort_key(&d) >= sort_key(&open)
                && last_vacate.is_none_or(|v| sort_key(&v) < sort_key(&d))
        });
        let closed_by_removal = last_removal.is_some_and(|d| sort_key(&d) >= sort_key(&open));
        if closed_by_order || closed_by_removal {
            facts.0.remove(&F::ProceedingsPending);
        }
    }

    // A final order stands unless a later decision vacated it or granted relief.
    if let Some((order_date, rec)) = last_order {
        let vacated_later = last_vacate.is_some_and(|v| sort_key(&v) >= sort_key(&order_date));
        if vacated_later {
            // Cite only the decisions that came after the order.
            facts.0.remove(&F::OrderVacated);
            for &r in records {
                let vac = match &r.body {
                    RecordBody::Court(c)
                        if matches!(
                            c.outcome,
                            CourtOutcome::ReliefGranted | CourtOutcome::Terminated
                        ) =>
                    {
                        Some(c.decided.unwrap_or(c.filed))
                    }
                    RecordBody::Enforcement(e)
                        if e.event == EnforcementEvent::RemovalOrder
                            && e.order == Some(OrderKind::Vacated) =>
                    {
                        Some(e.date)
                    }
                    _ => None,
                };
                if vac.is_some_and(|v| sort_key(&v) >= sort_key(&order_date)) {
                    facts.add(
                        F::OrderVacated,
                        r,
                        "the removal order was vacated or relief granted later",
                    );
                }
            }
        } else {
            facts.0.remove(&F::OrderVacated);
            facts.add(F::FinalOrder, rec, "final order of removal");
        }
    }

    // Presence after the latest removal: any dated record of the person in the U.S. later on.
    if let Some(removal) = last_removal {
        for &r in records {
            let seen = match &r.body {
                RecordBody::Criminal(c) => Some(c.arrest_date),
                RecordBody::Custody(c) => Some(c.booking_date),
                RecordBody::Enforcement(e)
                    if matches!(
                        e.event,
                        EnforcementEvent::Encounter | EnforcementEvent::IceDetention
                    ) =>
                {
                    Some(e.date)
                }
                _ => None,
            };
            if seen.is_some_and(|d| sort_key(&d) > sort_key(&removal)) {
                facts.add(
                    F::PresentAfterRemoval,
                    r,
                    "in the United States after removal",
                );
            }
        }
    }

    // Nonimmigrant status: from the latest arrival that was not as LPR or citizen, unless the
    // person departed afterwards.
    if let (Some(a), Some(rec)) = (latest_arrival, latest_arrival_rec) {
        let departed_after = latest_departure.is_some_and(|d| sort_key(&d) >= sort_key(&a.date));
        let class = a.class_of_admission.as_str();
        if !departed_after && class != "LPR" && class != "USC" {
            if class == "PAROLE" {
                if on_or_after(a.admit_until, today) {
                    facts.add(F::ParoleValid, rec, "paroled; parole period current");
                }
            } else if on_or_after(a.admit_until, today) {
                facts.add(
                    F::NonimmigrantAdmittedValid,
                    rec,
                    format!("admitted {class}; admit-until date not passed"),
                );
            } else if a.admit_until.is_some() {
                facts.add(
                    F::NonimmigrantOverstay,
                    rec,
                    format!("admitted {class}; admit-until date passed, no departure recorded"),
                );
            }
        }
    }

    if let Some(i) = ice_in {
        if ice_out.is_none_or(|o| sort_key(&o) < sort_key(&i)) {
            if let Some(r) = records.iter().find(|r| matches!(&r.body, RecordBody::Enforcement(e) if e.event == EnforcementEvent::IceDetention && e.date == i)) {
                facts.add(F::InIceCustody, r, "booked into ICE detention, no release recorded");
            }
        }
    }

    facts.0
}
