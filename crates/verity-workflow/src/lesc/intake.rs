//! The Immigration Alien Query as Verity holds it, and its JSON form.
//!
//! Both intake paths (JSON and Nlets text) produce an [`Iaq`]. Parsing reports **every**
//! problem at once, each naming the field and the reason, so an agency fixes a query in one go.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::OnceLock;
use verity_model::{
    ANumber, FbiNumber, FieldError, Identifiers, Ori, PartialDate, PersonName, Sex, StateId,
};

pub const NCIC_POB_CSV: &str = include_str!("../../../../data/reference/ncic_pob.csv");

/// Why the agency asks (Nlets PUR/): C criminal justice, F firearms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueryPurpose {
    C,
    F,
}

/// One query, validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Iaq {
    /// The client's id: a repeat with the same id is the same query (idempotency).
    pub message_id: String,
    pub ori: Ori,
    pub purpose: QueryPurpose,
    pub attention: String,
    pub phone: String,
    pub name: PersonName,
    pub dob: Option<PartialDate>,
    pub sex: Option<Sex>,
    /// The NCIC place-of-birth code as sent.
    pub pob_code: String,
    /// ISO country of birth read from it (`US` for a U.S. state or territory code).
    pub country_of_birth: String,
    pub in_custody: bool,
    /// 4-digit NCIC code of the most serious charge (`0399` when unknown).
    pub offense_code: String,
    pub ids: Identifiers,
    pub driver_license: String,
    /// Where the encounter happened (USPS state code and county), for routing to the AOR.
    pub encounter_state: String,
    pub encounter_county: String,
    pub citizenship_claimed: bool,
    pub remarks: String,
}

/// NCIC place-of-birth code -> ISO country. U.S. state and territory codes mean U.S. birth and
/// win over any foreign reading of the same letters.
pub fn country_of_pob(code: &str) -> Option<&'static str> {
    static TABLE: OnceLock<HashMap<String, String>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = HashMap::new();
        let mut rdr = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(NCIC_POB_CSV.as_bytes());
        for row in rdr.records().flatten() {
            if let (Some(code), Some(country)) = (row.get(0), row.get(1)) {
                t.insert(code.to_ascii_uppercase(), country.to_string());
            }
        }
        if let Ok(states) = verity_model::States::embedded() {
            for s in states.codes() {
                t.insert(s.to_string(), "US".to_string());
            }
        }
        t
    });
    table
        .get(&code.trim().to_ascii_uppercase())
        .map(String::as_str)
}

const KNOWN_FIELDS: &[&str] = &[
    "message_id",
    "purpose",
    "attention",
    "phone",
    "name",
    "dob",
    "sex",
    "place_of_birth",
    "in_custody",
    "offense_code",
    "a_number",
    "fbi_number",
    "state_id",
    "driver_license",
    "encounter_state",
    "encounter_county",
    "citizenship_claimed",
    "remarks",
];

/// Reads a JSON IAQ sent by the agency `ori`. `today` bounds birth dates (never in the future).
pub fn parse_json(
    body: &[u8],
    ori: &Ori,
    today: chrono::NaiveDate,
) -> Result<Iaq, Vec<FieldError>> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| vec![FieldError::new("body", format!("not valid JSON: {e}"))])?;
    let Value::Object(obj) = value else {
        return Err(vec![FieldError::new("body", "must be a JSON object")]);
    };
    let mut errors = Vec::new();
    for key in obj.keys() {
        if !KNOWN_FIELDS.contains(&key.as_str()) {
            errors.push(FieldError::new(key.as_str(), "unknown field"));
        }
    }
    let mut f = Fields {
        obj: &obj,
        errors: &mut errors,
    };
    let message_id = f.string("message_id", true, 64);
    let purpose = match f.string("purpose", true, 1).as_str() {
        "C" => QueryPurpose::C,
        "F" => QueryPurpose::F,
        "" => QueryPurpose::C, // missing: already reported as required
        other => {
            f.err("purpose", format!("'{other}' is not C or F"));
            QueryPurpose::C
        }
    };
    let attention = f.string("attention", false, 30);
    let phone = f.string("phone", false, 20);
    let name_text = f.string("name", true, 30);
    let name = if name_text.is_empty() {
        PersonName::default()
    } else {
        PersonName::parse_last_first(&name_text).unwrap_or_else(|e| {
            f.err("name", e.problem);
            PersonName::default()
        })
    };
    let dob = f.optional("dob", |s| {
        let d = PartialDate::parse_iso(s).map_err(|e| e.problem)?;
        if d.to_naive().is_some_and(|n| n > today)
            || i32::from(d.year) > chrono::Datelike::year(&today)
        {
            return Err(format!("'{s}' is in the future"));
        }
        Ok(d)
    });
    let sex = f
        .optional("sex", |s| Sex::parse(s).map_err(|e| e.problem))
        .flatten();
    let pob_code = f.string("place_of_birth", false, 2).to_ascii_uppercase();
    let country_of_birth = if pob_code.is_empty() {
        String::new()
    } else {
        match country_of_pob(&pob_code) {
            Some(c) => c.to_string(),
            None => {
                f.err(
                    "place_of_birth",
                    format!("'{pob_code}' is not a known NCIC place-of-birth code"),
                );
                String::new()
            }
        }
    };
    let in_custody = f.boolean("in_custody", true);
    let offense_code = {
        let c = f.string("offense_code", false, 4);
        if c.is_empty() {
            "0399".to_string()
        } else if c.len() != 4 || !c.chars().all(|ch| ch.is_ascii_digit()) {
            f.err(
                "offense_code",
                format!("'{c}' is not a 4-digit NCIC offense code"),
            );
            c
        } else {
            c
        }
    };
    let ids = Identifiers {
        a_number: f.optional("a_number", |s| ANumber::parse(s).map_err(|e| e.problem)),
        fbi_number: f.optional("fbi_number", |s| FbiNumber::parse(s).map_err(|e| e.problem)),
        state_id: f.optional("state_id", |s| StateId::parse(s).map_err(|e| e.problem)),
        ..Default::default()
    };
    let driver_license = f.string("driver_license", false, 25);
    let encounter_state = f.string("encounter_state", false, 2).to_ascii_uppercase();
    let encounter_county = f.string("encounter_county", false, 60);
    let citizenship_claimed = f.boolean("citizenship_claimed", false);
    let remarks = f.string("remarks", false, 500);
    if name.is_empty()
        && ids.a_number.is_none()
        && ids.fbi_number.is_none()
        && !errors.iter().any(|e| e.field == "name")
    {
        errors.push(FieldError::new(
            "name",
            "a name or an identifier is required",
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Iaq {
        message_id,
        ori: ori.clone(),
        purpose,
        attention,
        phone,
        name,
        dob,
        sex,
        pob_code,
        country_of_birth,
        in_custody,
        offense_code,
        ids,
        driver_license,
        encounter_state,
        encounter_county,
        citizenship_claimed: citizenship_claimed || mentions_citizenship(&remarks),
        remarks,
    })
}

/// A remark that claims U.S. citizenship counts as a claim: better a review too many.
pub fn mentions_citizenship(remarks: &str) -> bool {
    let r = remarks.to_ascii_uppercase();
    [
        "US CITIZEN",
        "U.S. CITIZEN",
        "USC",
        "CLAIMS CITIZENSHIP",
        "AMERICAN CITIZEN",
        "BORN IN THE US",
    ]
    .iter()
    .any(|p| r.contains(p))
}

struct Fields<'a> {
    obj: &'a Map<String, Value>,
    errors: &'a mut Vec<FieldError>,
}

impl Fields<'_> {
    fn err(&mut self, field: &str, problem: impl Into<String>) {
        self.errors.push(FieldError::new(field, problem));
    }

    fn string(&mut self, field: &str, required: bool, max: usize) -> String {
        match self.obj.get(field) {
            None | Some(Value::Null) => {
                if required {
                    self.err(field, "is required");
                }
                String::new()
            }
            Some(Value::String(s)) => {
                let t = s.trim();
                if required && t.is_empty() {
                    self.err(field, "is required");
                }
                if t.chars().count() > max {
                    self.err(field, format!("is longer than {max} characters"));
                }
                t.to_string()
            }
            Some(_) => {
                self.err(field, "must be a string");
                String::new()
            }
        }
    }

    fn boolean(&mut self, field: &str, required: bool) -> bool {
        match self.obj.get(field) {
            Some(Value::Bool(b)) => *b,
            None | Some(Value::Null) => {
                if required {
                    self.err(field, "is required (true or false)");
                }
                false
            }
            Some(_) => {
                self.err(field, "must be true or false");
                false
            }
        }
    }

    fn optional<T>(&mut self, field: &str, parse: impl Fn(&str) -> Result<T, String>) -> Option<T> {
        let s = self.string(field, false, 64);
        if s.is_empty() {
            return None;
        }
        match parse(&s) {
            Ok(v) => Some(v),
            Err(problem) => {
                self.err(field, problem);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ori() -> Ori {
        Ori::parse("MD0030000").expect("valid")
    }

    fn today() -> chrono::NaiveDate {
        chrono::NaiveDate::from_ymd_opt(2026, 11, 28).expect("date")
    }

    #[test]
    fn a_good_query_parses() {
        let body = br#"{"message_id":"m-1","purpose":"C","name":"GARCIA LOPEZ, JOSE LUIS","dob":"1985-03-12","sex":"M",
            "place_of_birth":"MX","in_custody":true,"offense_code":"1313","a_number":"12345678","encounter_state":"MD","encounter_county":"Baltimore"}"#;
        let q = parse_json(body, &ori(), today()).expect("valid");
        assert_eq!(q.name.family, "GARCIA LOPEZ");
        assert_eq!(
            q.ids.a_number.map(|a| a.to_string()),
            Some("012345678".into())
        );
        assert_eq!(q.country_of_birth, "MX");
        assert!(!q.citizenship_claimed);
    }

    #[test]
    fn every_problem_is_named() {
        let body = br#"{"purpose":"X","name":"DOE. JOHN","dob":"2099-01-01","sex":"Q","place_of_birth":"ZZ","in_custody":"yes","offense_code":"13","colour":"red"}"#;
        let errors = parse_json(body, &ori(), today()).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "colour",
            "message_id",
            "purpose",
            "name",
            "dob",
            "sex",
            "place_of_birth",
            "in_custody",
            "offense_code",
        ] {
            assert!(fields.contains(&f), "no error for {f}: {errors:?}");
        }
        assert!(errors
            .iter()
            .find(|e| e.field == "colour")
            .is_some_and(|e| e.problem == "unknown field"));
    }

    #[test]
    fn malformed_json_is_one_clear_error() {
        let errors = parse_json(b"{not json", &ori(), today()).unwrap_err();
        assert_eq!(errors[0].field, "body");
    }

    #[test]
    fn a_state_code_place_of_birth_means_us_birth() {
        assert_eq!(
            country_of_pob("CA"),
            Some("US"),
            "NCIC CA is California, not Canada"
        );
        assert_eq!(country_of_pob("tx"), Some("US"));
        assert_eq!(country_of_pob("MX"), Some("MX"));
        assert_eq!(country_of_pob("QQ"), None);
    }

    #[test]
    fn citizenship_in_remarks_counts_as_a_claim() {
        let body = br#"{"message_id":"m","purpose":"C","name":"DOE, JOHN","in_custody":false,"remarks":"subject states he is a US citizen"}"#;
        assert!(
            parse_json(body, &ori(), today())
                .expect("valid")
                .citizenship_claimed
        );
    }
}
