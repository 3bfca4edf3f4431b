//! Source records from the eight record systems, and their flat CSV form.
//!
//! Every record has the same identity block (name, birth date, sex, country of birth,
//! identifiers, address) followed by the columns of its own system. The CSV header of system
//! `S` is [`IDENTITY_COLUMNS`] + `S`'s [`RecordBody::columns`]. Files are named
//! `<system>.csv` (see [`RecordSystem::file_name`]).

use crate::code_enum;
use crate::date::PartialDate;
use crate::error::FieldError;
use crate::ids::*;
use crate::name::{format_aliases, parse_aliases, PersonName, Sex};
use serde::{Deserialize, Serialize};

code_enum! {
    /// The record systems Verity searches.
    RecordSystem {
        Benefits = "benefits",
        Travel = "travel",
        Enforcement = "enforcement",
        Court = "court",
        Criminal = "criminal",
        Custody = "custody",
        Citizenship = "citizenship",
        Biometrics = "biometrics",
    }
}

impl RecordSystem {
    pub fn file_name(self) -> String {
        format!("{}.csv", self.code())
    }
}

/// Where a person lives or was last seen. `region` is the USPS state code for U.S. addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub street_number: String,
    pub street: String,
    pub locality: String,
    pub postcode: String,
    pub region: String,
    pub county: String,
}

impl Address {
    pub fn is_empty(&self) -> bool {
        self.street.is_empty()
            && self.locality.is_empty()
            && self.region.is_empty()
            && self.county.is_empty()
    }
}

/// Who a record says the person is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub name: PersonName,
    pub aliases: Vec<PersonName>,
    pub dob: Option<PartialDate>,
    pub sex: Option<Sex>,
    /// ISO 3166-1 alpha-2 country code of birth (`US` for U.S. birth).
    pub country_of_birth: String,
    pub ids: Identifiers,
    pub address: Address,
}

code_enum! { BenefitType {
    Naturalization = "naturalization",
    CitizenshipCertificate = "citizenship_certificate",
    Adjustment = "adjustment",
    ImmigrantVisa = "immigrant_visa",
    NonimmigrantVisa = "nonimmigrant_visa",
    Asylum = "asylum",
    Refugee = "refugee",
    Tps = "tps",
    Daca = "daca",
    Parole = "parole",
}}

code_enum! { BenefitOutcome {
    Granted = "granted",
    Pending = "pending",
    Denied = "denied",
    Withdrawn = "withdrawn",
    Expired = "expired",
}}

code_enum! { TravelDirection { Arrival = "arrival", Departure = "departure" }}

code_enum! { EnforcementEvent {
    Encounter = "encounter",
    BorderApprehension = "border_apprehension",
    NoticeToAppear = "notice_to_appear",
    RemovalOrder = "removal_order",
    Removal = "removal",
    VoluntaryReturn = "voluntary_return",
    IceDetention = "ice_detention",
    IceRelease = "ice_release",
    Deceased = "deceased",
}}

code_enum! { OrderKind {
    Final = "final",
    InAbsentia = "in_absentia",
    Pending = "pending",
    Vacated = "vacated",
}}

code_enum! { EntryManner {
    Inspected = "inspected",
    WithoutInspection = "without_inspection",
    Unknown = "unknown",
}}

code_enum! { CourtOutcome {
    Pending = "pending",
    RemovalOrdered = "removal_ordered",
    InAbsentiaOrder = "in_absentia_order",
    ReliefGranted = "relief_granted",
    Terminated = "terminated",
    VoluntaryDeparture = "voluntary_departure",
}}

code_enum! { Disposition {
    Pending = "pending",
    Convicted = "convicted",
    Dismissed = "dismissed",
    Acquitted = "acquitted",
}}

code_enum! {
    /// A law-enforcement flag on a criminal record. The priority policy weighs them.
    LawEnforcementFlag {
        GangMember = "gang_member",
        NationalSecurity = "national_security",
    }
}

impl LawEnforcementFlag {
    /// What the flag means, for explanations shown to specialists.
    pub fn description(self) -> &'static str {
        match self {
            LawEnforcementFlag::GangMember => {
                "known or suspected gang member, from a law-enforcement gang file"
            }
            LawEnforcementFlag::NationalSecurity => "watchlist / national-security hit",
        }
    }
}

/// Separator between flag codes in the `flags` CSV cell.
pub const FLAG_SEPARATOR: char = ';';

/// Formats flags for the `flags` CSV cell: codes joined by `;`, empty for none.
pub fn format_flags(flags: &[LawEnforcementFlag]) -> String {
    flags
        .iter()
        .map(|f| f.code())
        .collect::<Vec<_>>()
        .join(&FLAG_SEPARATOR.to_string())
}

/// Parses the `flags` CSV cell; empty (or absent) means no flags. Empty items between
/// separators are ignored; an unknown code is an error naming the `flags` column and value.
pub fn parse_flags(cell: &str) -> Result<Vec<LawEnforcementFlag>, FieldError> {
    let mut flags = Vec::new();
    for item in cell.split(FLAG_SEPARATOR).map(str::trim) {
        if item.is_empty() {
            continue;
        }
        let flag = LawEnforcementFlag::parse(item)
            .map_err(|e| FieldError::new("flags", format!("'{item}': {}", e.problem)))?;
        if !flags.contains(&flag) {
            flags.push(flag);
        }
    }
    Ok(flags)
}

code_enum! { CitizenshipEvidence {
    UsBirthRecord = "us_birth_record",
    UsPassport = "us_passport",
    NaturalizationCertificate = "naturalization_certificate",
    CitizenshipCertificate = "citizenship_certificate",
    CitizenshipClaim = "citizenship_claim",
}}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BenefitsRecord {
    pub receipt_number: String,
    pub benefit: BenefitType,
    pub outcome: BenefitOutcome,
    pub filed: Option<PartialDate>,
    pub decided: Option<PartialDate>,
    /// End of validity for time-limited grants (TPS, DACA, parole, visas).
    pub valid_until: Option<PartialDate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TravelRecord {
    pub direction: TravelDirection,
    pub date: PartialDate,
    /// Class of admission (B2, F1, H1B, WT, LPR, PAROLE, USC, ...).
    pub class_of_admission: String,
    pub admit_until: Option<PartialDate>,
    pub port: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnforcementRecord {
    pub event: EnforcementEvent,
    pub date: PartialDate,
    pub order: Option<OrderKind>,
    pub entry: Option<EntryManner>,
    pub office: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CourtRecord {
    pub case_number: String,
    pub filed: PartialDate,
    pub outcome: CourtOutcome,
    pub decided: Option<PartialDate>,
    pub relief: String,
    pub appeal_pending: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CriminalRecord {
    pub arrest_date: PartialDate,
    pub arresting_ori: Option<Ori>,
    /// 4-digit NCIC offense code of the charge.
    pub ncic_code: String,
    pub charge: String,
    pub disposition: Disposition,
    pub disposition_date: Option<PartialDate>,
    pub sentence_days: Option<u32>,
    /// Law-enforcement flags on the record (none for most records).
    #[serde(default)]
    pub flags: Vec<LawEnforcementFlag>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustodyRecord {
    pub booking_number: String,
    pub facility: String,
    pub ori: Ori,
    pub county: String,
    /// USPS state code.
    pub state: String,
    pub booking_date: PartialDate,
    pub expected_release: Option<PartialDate>,
    pub released: Option<PartialDate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CitizenshipRecord {
    pub evidence: CitizenshipEvidence,
    pub document_number: String,
    pub issued: Option<PartialDate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BiometricsRecord {
    pub fin: Fin,
    pub enrolled: PartialDate,
    /// The record system whose encounter captured the prints.
    pub captured_by: RecordSystem,
    pub fingers: u8,
}

/// The system-specific part of a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "system", rename_all = "snake_case")]
pub enum RecordBody {
    Benefits(BenefitsRecord),
    Travel(TravelRecord),
    Enforcement(EnforcementRecord),
    Court(CourtRecord),
    Criminal(CriminalRecord),
    Custody(CustodyRecord),
    Citizenship(CitizenshipRecord),
    Biometrics(BiometricsRecord),
}

/// One record from one system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRecord {
    /// Unique across all systems (synthetic ids carry a system prefix).
    pub record_id: String,
    pub identity: Identity,
    pub body: RecordBody,
}

impl SourceRecord {
    pub fn system(&self) -> RecordSystem {
        self.body.system()
    }
}

pub const IDENTITY_COLUMNS: &[&str] = &[
    "record_id",
    "given_name",
    "middle_name",
    "family_name",
    "name_original",
    "aliases",
    "dob",
    "sex",
    "country_of_birth",
    "a_number",
    "fin",
    "fbi_number",
    "state_id",
    "passport",
    "ssn",
    "street_number",
    "street",
    "locality",
    "postcode",
    "region",
    "county",
];

impl RecordBody {
    pub fn system(&self) -> RecordSystem {
        match self {
            RecordBody::Benefits(_) => RecordSystem::Benefits,
            RecordBody::Travel(_) => RecordSystem::Travel,
            RecordBody::Enforcement(_) => RecordSystem::Enforcement,
            RecordBody::Court(_) => RecordSystem::Court,
            RecordBody::Criminal(_) => RecordSystem::Criminal,
            RecordBody::Custody(_) => RecordSystem::Custody,
            RecordBody::Citizenship(_) => RecordSystem::Citizenship,
            RecordBody::Biometrics(_) => RecordSystem::Biometrics,
        }
    }

    /// The system-specific CSV columns, in file order.
    pub fn columns(system: RecordSystem) -> &'static [&'static str] {
        match system {
            RecordSystem::Benefits => &[
                "receipt_number",
                "benefit",
                "outcome",
                "filed",
                "decided",
                "valid_until",
            ],
            RecordSystem::Travel => &[
                "direction",
                "date",
                "class_of_admission",
                "admit_until",
                "port",
            ],
            RecordSystem::Enforcement => &["event", "date", "order", "entry", "office", "detail"],
            RecordSystem::Court => &[
                "case_number",
                "filed",
                "outcome",
                "decided",
                "relief",
                "appeal_pending",
            ],
            RecordSystem::Criminal => &[
                "arrest_date",
                "arresting_ori",
                "ncic_code",
                "charge",
                "disposition",
                "disposition_date",
                "sentence_days",
                "flags",
            ],
            RecordSystem::Custody => &[
                "booking_number",
                "facility",
                "ori",
                "custody_county",
                "custody_state",
                "booking_date",
                "expected_release",
                "released",
            ],
            RecordSystem::Citizenship => &["evidence", "document_number", "issued"],
            RecordSystem::Biometrics => &["fin_enrolled", "enrolled", "captured_by", "fingers"],
        }
    }

    fn values(&self) -> Vec<String> {
        fn od(d: &Option<PartialDate>) -> String {
            d.map(|d| d.to_string()).unwrap_or_default()
        }
        fn oc<T: std::fmt::Display>(v: &Option<T>) -> String {
            v.as_ref().map(|v| v.to_string()).unwrap_or_default()
        }
        match self {
            RecordBody::Benefits(b) => vec![
                b.receipt_number.clone(),
                b.benefit.to_string(),
                b.outcome.to_string(),
                od(&b.filed),
                od(&b.decided),
                od(&b.valid_until),
            ],
            RecordBody::Travel(t) => vec![
                t.direction.to_string(),
                t.date.to_string(),
                t.class_of_admission.clone(),
                od(&t.admit_until),
                t.port.clone(),
            ],
            RecordBody::Enforcement(e) => vec![
                e.event.to_string(),
                e.date.to_string(),
                oc(&e.order),
                oc(&e.entry),
                e.office.clone(),
                e.detail.clone(),
            ],
            RecordBody::Court(c) => vec![
                c.case_number.clone(),
                c.filed.to_string(),
                c.outcome.to_string(),
                od(&c.decided),
                c.relief.clone(),
                if c.appeal_pending { "Y" } else { "N" }.into(),
            ],
            RecordBody::Criminal(c) => vec![
                c.arrest_date.to_string(),
                oc(&c.arresting_ori),
                c.ncic_code.clone(),
                c.charge.clone(),
                c.disposition.to_string(),
                od(&c.disposition_date),
                oc(&c.sentence_days),
                format_flags(&c.flags),
            ],
            RecordBody::Custody(c) => vec![
                c.booking_number.clone(),
                c.facility.clone(),
                c.ori.to_string(),
                c.county.clone(),
                c.state.clone(),
                c.booking_date.to_string(),
                od(&c.expected_release),
                od(&c.released),
            ],
            RecordBody::Citizenship(c) => vec![
                c.evidence.to_string(),
                c.document_number.clone(),
                od(&c.issued),
            ],
            RecordBody::Biometrics(b) => vec![
                b.fin.to_string(),
                b.enrolled.to_string(),
                b.captured_by.to_string(),
                b.fingers.to_string(),
            ],
        }
    }
}

/// The full CSV header for a system's file.
pub fn csv_header(system: RecordSystem) -> Vec<&'static str> {
    IDENTITY_COLUMNS
        .iter()
        .chain(RecordBody::columns(system))
        .copied()
        .collect()
}

impl SourceRecord {
    /// The CSV row, in [`csv_header`] order.
    pub fn to_csv_row(&self) -> Vec<String> {
        let i = &self.identity;
        let mut row = vec![
            self.record_id.clone(),
            i.name.given.clone(),
            i.name.middle.clone(),
            i.name.family.clone(),
            i.name.original.clone(),
            format_aliases(&i.aliases),
            i.dob.map(|d| d.to_string()).unwrap_or_default(),
            i.sex.map(|s| s.code().to_string()).unwrap_or_default(),
            i.country_of_birth.clone(),
            i.ids
                .a_number
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            i.ids
                .fin
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            i.ids
                .fbi_number
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            i.ids
                .state_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            i.ids
                .passport
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            i.ids
                .ssn
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            i.address.street_number.clone(),
            i.address.street.clone(),
            i.address.locality.clone(),
            i.address.postcode.clone(),
            i.address.region.clone(),
            i.address.county.clone(),
        ];
        row.extend(self.body.values());
        row
    }

    /// Reads one CSV row of `system`'s file. `get` returns the trimmed cell for a column name,
    /// `None` when the column is absent. Errors name the column.
    pub fn from_csv_row<'a>(
        system: RecordSystem,
        get: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<SourceRecord, FieldError> {
        let cell = |c: &str| get(c).map(str::trim).unwrap_or("");
        let need = |c: &str| -> Result<&str, FieldError> {
            let v = cell(c);
            if v.is_empty() {
                Err(FieldError::new(c, "is required"))
            } else {
                Ok(v)
            }
        };
        let on = |c: &str, e: FieldError| FieldError::new(c, e.problem);
        let opt_date = |c: &str| -> Result<Option<PartialDate>, FieldError> {
            let v = cell(c);
            if v.is_empty() {
                Ok(None)
            } else {
                PartialDate::parse_iso(v).map(Some).map_err(|e| on(c, e))
            }
        };
        let date = |c: &str| -> Result<PartialDate, FieldError> {
            PartialDate::parse_iso(need(c)?).map_err(|e| on(c, e))
        };
        fn opt_id<T>(
            v: &str,
            f: impl Fn(&str) -> Result<T, FieldError>,
        ) -> Result<Option<T>, FieldError> {
            if v.is_empty() {
                Ok(None)
            } else {
                f(v).map(Some)
            }
        }
        fn code<T>(
            c: &str,
            v: &str,
            f: impl Fn(&str) -> Result<T, FieldError>,
        ) -> Result<T, FieldError> {
            f(v).map_err(|e| FieldError::new(c, e.problem))
        }
        fn opt_code<T>(
            c: &str,
            v: &str,
            f: impl Fn(&str) -> Result<T, FieldError>,
        ) -> Result<Option<T>, FieldError> {
            if v.is_empty() {
                Ok(None)
            } else {
                f(v).map(Some).map_err(|e| FieldError::new(c, e.problem))
            }
        }

        let record_id = need("record_id")?.to_string();
        let mut name =
            PersonName::new(cell("given_name"), cell("middle_name"), cell("family_name"));
        name.original = cell("name_original").to_string();
        let identity = Identity {
            name,
            aliases: parse_aliases(cell("aliases"))?,
            dob: opt_date("dob")?,
            sex: Sex::parse(cell("sex"))?,
            country_of_birth: cell("country_of_birth").to_ascii_uppercase(),
            ids: Identifiers {
                a_number: opt_id(cell("a_number"), ANumber::parse)?,
                fin: opt_id(cell("fin"), Fin::parse)?,
                fbi_number: opt_id(cell("fbi_number"), FbiNumber::parse)?,
                state_id: opt_id(cell("state_id"), StateId::parse)?,
                passport: opt_id(cell("passport"), Passport::parse)?,
                ssn: opt_id(cell("ssn"), Ssn::parse)?,
            },
            address: Address {
                street_number: cell("street_number").into(),
                street: cell("street").into(),
                locality: cell("locality").into(),
                postcode: cell("postcode").into(),
                region: cell("region").into(),
                county: cell("county").into(),
            },
        };
        let body = match system {
            RecordSystem::Benefits => RecordBody::Benefits(BenefitsRecord {
                receipt_number: cell("receipt_number").into(),
                benefit: code("benefit", need("benefit")?, BenefitType::parse)?,
                outcome: code("outcome", need("outcome")?, BenefitOutcome::parse)?,
                filed: opt_date("filed")?,
                decided: opt_date("decided")?,
                valid_until: opt_date("valid_until")?,
            }),
            RecordSystem::Travel => RecordBody::Travel(TravelRecord {
                direction: code("direction", need("direction")?, TravelDirection::parse)?,
                date: date("date")?,
                class_of_admission: cell("class_of_admission").to_ascii_uppercase(),
                admit_until: opt_date("admit_until")?,
                port: cell("port").into(),
            }),
            RecordSystem::Enforcement => RecordBody::Enforcement(EnforcementRecord {
                event: code("event", need("event")?, EnforcementEvent::parse)?,
                date: date("date")?,
                order: opt_code("order", cell("order"), OrderKind::parse)?,
                entry: opt_code("entry", cell("entry"), EntryManner::parse)?,
                office: cell("office").into(),
                detail: cell("detail").into(),
            }),
            RecordSystem::Court => RecordBody::Court(CourtRecord {
                case_number: cell("case_number").into(),
                filed: date("filed")?,
                outcome: code("outcome", need("outcome")?, CourtOutcome::parse)?,
                decided: opt_date("decided")?,
                relief: cell("relief").into(),
                appeal_pending: match cell("appeal_pending") {
                    "Y" | "y" | "true" => true,
                    "" | "N" | "n" | "false" => false,
                    other => {
                        return Err(FieldError::new(
                            "appeal_pending",
                            format!("'{other}' is not Y or N"),
                        ))
                    }
                },
            }),
            RecordSystem::Criminal => RecordBody::Criminal(CriminalRecord {
                arrest_date: date("arrest_date")?,
                arresting_ori: opt_code("arresting_ori", cell("arresting_ori"), Ori::parse)?,
                ncic_code: {
                    let c = need("ncic_code")?;
                    if c.len() != 4 || !c.chars().all(|ch| ch.is_ascii_digit()) {
                        return Err(FieldError::new(
                            "ncic_code",
                            format!("'{c}' is not a 4-digit NCIC code"),
                        ));
                    }
                    c.to_string()
                },
                charge: cell("charge").into(),
                disposition: code("disposition", need("disposition")?, Disposition::parse)?,
                disposition_date: opt_date("disposition_date")?,
                sentence_days: opt_code("sentence_days", cell("sentence_days"), |v| {
                    v.parse::<u32>().map_err(|_| {
                        FieldError::new("sentence_days", format!("'{v}' is not a whole number"))
                    })
                })?,
                // Files written before the column existed have no flags.
                flags: parse_flags(cell("flags"))?,
            }),
            RecordSystem::Custody => RecordBody::Custody(CustodyRecord {
                booking_number: cell("booking_number").into(),
                facility: cell("facility").into(),
                ori: code("ori", need("ori")?, Ori::parse)?,
                county: cell("custody_county").into(),
                state: cell("custody_state").to_ascii_uppercase(),
                booking_date: date("booking_date")?,
                expected_release: opt_date("expected_release")?,
                released: opt_date("released")?,
            }),
            RecordSystem::Citizenship => RecordBody::Citizenship(CitizenshipRecord {
                evidence: code("evidence", need("evidence")?, CitizenshipEvidence::parse)?,
                document_number: cell("document_number").into(),
                issued: opt_date("issued")?,
            }),
            RecordSystem::Biometrics => RecordBody::Biometrics(BiometricsRecord {
                fin: code("fin_enrolled", need("fin_enrolled")?, Fin::parse)?,
                enrolled: date("enrolled")?,
                captured_by: code("captured_by", need("captured_by")?, RecordSystem::parse)?,
                fingers: {
                    let v = need("fingers")?;
                    v.parse::<u8>()
                        .ok()
                        .filter(|n| (1..=10).contains(n))
                        .ok_or_else(|| FieldError::new("fingers", format!("'{v}' is not 1-10")))?
                },
            }),
        };
        Ok(SourceRecord {
            record_id,
            identity,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SourceRecord {
        SourceRecord {
            record_id: "CRM-000001".into(),
            identity: Identity {
                name: PersonName::new("JOSE", "LUIS", "GARCIA LOPEZ"),
                aliases: vec![PersonName::new("PEPE", "", "GARCIA")],
                dob: Some(PartialDate::full(1985, 3, 12).expect("valid")),
                sex: Some(Sex::Male),
                country_of_birth: "MX".into(),
                ids: Identifiers {
                    a_number: Some(ANumber::parse("012345678").expect("valid")),
                    ..Default::default()
                },
                address: Address {
                    locality: "Baltimore".into(),
                    region: "MD".into(),
                    ..Default::default()
                },
            },
            body: RecordBody::Criminal(CriminalRecord {
                arrest_date: PartialDate::full(2024, 5, 1).expect("valid"),
                arresting_ori: Some(Ori::parse("MD0030000").expect("valid")),
                ncic_code: "1313".into(),
                charge: "Simple assault".into(),
                disposition: Disposition::Pending,
                disposition_date: None,
                sentence_days: None,
                flags: vec![LawEnforcementFlag::GangMember],
            }),
        }
    }

    #[test]
    fn csv_row_round_trips() {
        let r = sample();
        let header = csv_header(RecordSystem::Criminal);
        let row = r.to_csv_row();
        assert_eq!(header.len(), row.len());
        let get = |c: &str| header.iter().position(|h| *h == c).map(|i| row[i].as_str());
        assert_eq!(
            SourceRecord::from_csv_row(RecordSystem::Criminal, get),
            Ok(r)
        );
    }

    #[test]
    fn bad_cell_names_its_column() {
        let r = sample();
        let header = csv_header(RecordSystem::Criminal);
        let mut row = r.to_csv_row();
        let i = header
            .iter()
            .position(|h| *h == "ncic_code")
            .expect("column");
        row[i] = "13X".into();
        let get = |c: &str| header.iter().position(|h| *h == c).map(|i| row[i].as_str());
        let e = SourceRecord::from_csv_row(RecordSystem::Criminal, get).unwrap_err();
        assert_eq!(e.field, "ncic_code");
    }

    #[test]
    fn file_without_flags_column_reads_as_no_flags() {
        let mut r = sample();
        let header = csv_header(RecordSystem::Criminal);
        let row = r.to_csv_row();
        let get = |c: &str| {
            (c != "flags")
                .then(|| header.iter().position(|h| *h == c))
                .flatten()
                .map(|i| row[i].as_str())
        };
        if let RecordBody::Criminal(c) = &mut r.body {
            c.flags.clear();
        }
        assert_eq!(
            SourceRecord::from_csv_row(RecordSystem::Criminal, get),
            Ok(r)
        );
    }

    #[test]
    fn flags_cell_round_trips_several_codes() {
        let both = vec![
            LawEnforcementFlag::NationalSecurity,
            LawEnforcementFlag::GangMember,
        ];
        assert_eq!(format_flags(&both), "national_security;gang_member");
        assert_eq!(parse_flags(&format_flags(&both)), Ok(both));
        assert_eq!(parse_flags(""), Ok(vec![]));
        assert_eq!(
            parse_flags(" GANG_MEMBER ; "),
            Ok(vec![LawEnforcementFlag::GangMember])
        );
    }

    #[test]
    fn bad_flag_code_names_column_and_value() {
        let r = sample();
        let header = csv_header(RecordSystem::Criminal);
        let mut row = r.to_csv_row();
        let i = header.iter().position(|h| *h == "flags").expect("column");
        row[i] = "gang_member;terrorist".into();
        let get = |c: &str| header.iter().position(|h| *h == c).map(|i| row[i].as_str());
        let e = SourceRecord::from_csv_row(RecordSystem::Criminal, get).unwrap_err();
        assert_eq!(e.field, "flags");
        assert!(e.problem.contains("terrorist"), "{}", e.problem);
    }

    proptest::proptest! {
        #[test]
        fn criminal_row_round_trips_any_flag_set(
            picks in proptest::collection::vec(proptest::sample::select(LawEnforcementFlag::ALL), 0..4)
        ) {
            let mut flags = Vec::new();
            for f in picks {
                if !flags.contains(&f) {
                    flags.push(f);
                }
            }
            let mut r = sample();
            if let RecordBody::Criminal(c) = &mut r.body {
                c.flags = flags;
            }
            let header = csv_header(RecordSystem::Criminal);
            let row = r.to_csv_row();
            let get = |c: &str| header.iter().position(|h| *h == c).map(|i| row[i].as_str());
            proptest::prop_assert_eq!(SourceRecord::from_csv_row(RecordSystem::Criminal, get), Ok(r));
        }
    }

    #[test]
    fn every_system_has_distinct_body_columns() {
        for s in RecordSystem::ALL {
            let h = csv_header(*s);
            let set: std::collections::HashSet<_> = h.iter().collect();
            assert_eq!(set.len(), h.len(), "duplicate column in {s}");
        }
    }
}
