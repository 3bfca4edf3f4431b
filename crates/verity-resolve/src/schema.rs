//! `verity link` inputs: the flat TOML schema (role -> column) and the CSV reader.
//!
//! Errors name what to fix: the unknown role, the missing column and file, or the line and
//! column of a bad value. With `skip_bad_rows` bad rows are reported instead of fatal.

use crate::names::normalize;
use crate::record::Record;
use std::collections::BTreeMap;
use verity_model::{
    ANumber, FbiNumber, Fin, Identity, PartialDate, Passport, PersonName, Sex, Ssn,
};

/// Roles a schema may map (besides `dob_format`).
pub const ROLES: &[&str] = &[
    "id",
    "given_name",
    "middle_name",
    "family_name",
    "full_name",
    "dob",
    "sex",
    "country_of_birth",
    "a_number",
    "passport",
    "fbi_number",
    "ssn",
    "national_id",
    "other_id",
    "fin",
    "street_number",
    "street",
    "locality",
    "postcode",
    "region",
];

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SchemaError {
    #[error("schema: {0}")]
    Toml(String),
    #[error("schema: unknown role '{role}' (known roles: {known})")]
    UnknownRole { role: String, known: String },
    #[error("schema: role '{role}' must map to a column name (a string)")]
    NotAString { role: String },
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ReadError {
    #[error("{file}: mapped column '{column}' (role {role}) is not in the header")]
    MissingColumn {
        file: String,
        column: String,
        role: String,
    },
    #[error("{file}: header: {problem}")]
    Header { file: String, problem: String },
    #[error("{file}, line {line}, column '{column}': {problem}")]
    Value {
        file: String,
        line: u64,
        column: String,
        problem: String,
    },
    #[error("{file}, line {line}: {problem}")]
    Row {
        file: String,
        line: u64,
        problem: String,
    },
}

/// Column mapping from a schema file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    pub roles: BTreeMap<String, String>,
    pub dob_format: String,
}

impl Schema {
    pub fn parse(text: &str) -> Result<Schema, SchemaError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| SchemaError::Toml(e.message().to_string()))?;
        let mut roles = BTreeMap::new();
        let mut dob_format = "%Y-%m-%d".to_string();
        for (k, v) in table {
            let Some(s) = v.as_str() else {
                return Err(SchemaError::NotAString { role: k });
            };
            if k == "dob_format" {
                dob_format = s.to_string();
            } else if ROLES.contains(&k.as_str()) {
                roles.insert(k, s.trim().to_string());
            } else {
                return Err(SchemaError::UnknownRole {
                    role: k,
                    known: ROLES.join(", "),
                });
            }
        }
        Ok(Schema { roles, dob_format })
    }
}

/// A row left out under `skip_bad_rows`, with the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct SkippedRow {
    pub file: String,
    pub line: u64,
    pub problem: String,
}

/// Splits a full name: `LAST, FIRST MIDDLE` when it has a comma, else `FIRST MIDDLE LAST`.
fn split_full_name(s: &str) -> PersonName {
    if s.contains(',') {
        let (f, r) = s.split_once(',').unwrap_or((s, ""));
        let mut it = r.split_whitespace();
        let g = it.next().unwrap_or("");
        let m: Vec<&str> = it.collect();
        return PersonName::new(g, &m.join(" "), f);
    }
    let t: Vec<&str> = s.split_whitespace().collect();
    match t.len() {
        0 => PersonName::default(),
        1 => PersonName::new("", "", t[0]),
        n => PersonName::new(t[0], &t[1..n - 1].join(" "), t[n - 1]),
    }
}

/// Reads records from CSV bytes. `file` names the source in errors.
pub fn read_records(
    bytes: &[u8],
    file: &str,
    schema: &Schema,
    skip_bad_rows: bool,
) -> Result<(Vec<Record>, Vec<SkippedRow>), ReadError> {
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(bytes);
    let header = rdr
        .byte_headers()
        .map_err(|e| ReadError::Header {
            file: file.into(),
            problem: e.to_string(),
        })?
        .clone();
    let mut cols: BTreeMap<&str, usize> = BTreeMap::new();
    let names: Vec<String> = header
        .iter()
        .map(|h| {
            String::from_utf8_lossy(h)
                .trim()
                .trim_start_matches('\u{feff}')
                .to_string()
        })
        .collect();
    for (role, column) in &schema.roles {
        match names.iter().position(|n| n == column) {
            Some(i) => {
                cols.insert(role.as_str(), i);
            }
            None => {
                return Err(ReadError::MissingColumn {
                    file: file.into(),
                    column: column.clone(),
                    role: role.clone(),
                })
            }
        }
    }
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    let mut rec = csv::ByteRecord::new();
    let mut row_no = 0u64;
    loop {
        let line_hint = rdr.position().line();
        match rdr.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(line_hint, csv::Position::line);
                let err = ReadError::Row {
                    file: file.into(),
                    line,
                    problem: e.to_string(),
                };
                if skip_bad_rows && !matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    skipped.push(SkippedRow {
                        file: file.into(),
                        line,
                        problem: err.to_string(),
                    });
                    continue;
                }
                return Err(err);
            }
        }
        row_no += 1;
        let line = rec.position().map_or(line_hint, csv::Position::line);
        match parse_row(&rec, &cols, schema, file, line, row_no, &names) {
            Ok(r) => out.push(r),
            Err(e) if skip_bad_rows => skipped.push(SkippedRow {
                file: file.into(),
                line,
                problem: e.to_string(),
            }),
            Err(e) => return Err(e),
        }
    }
    Ok((out, skipped))
}

fn parse_row(
    rec: &csv::ByteRecord,
    cols: &BTreeMap<&str, usize>,
    schema: &Schema,
    file: &str,
    line: u64,
    row_no: u64,
    names: &[String],
) -> Result<Record, ReadError> {
    let value_err = |role: &str, problem: String| ReadError::Value {
        file: file.into(),
        line,
        column: schema.roles.get(role).cloned().unwrap_or_default(),
        problem,
    };
    if rec.len() != names.len() {
        return Err(ReadError::Row {
            file: file.into(),
            line,
            problem: format!("{} fields, header has {}", rec.len(), names.len()),
        });
    }
    let get = |role: &str| -> Result<&str, ReadError> {
        match cols.get(role) {
            None => Ok(""),
            Some(&i) => std::str::from_utf8(rec.get(i).unwrap_or(b""))
                .map(str::trim)
                .map_err(|e| value_err(role, format!("not UTF-8 ({e})"))),
        }
    };
    let mut identity = Identity::default();
    let full = get("full_name")?;
    identity.name =
        if !full.is_empty() && get("given_name")?.is_empty() && get("family_name")?.is_empty() {
            split_full_name(full)
        } else {
            PersonName::new(get("given_name")?, get("middle_name")?, get("family_name")?)
        };
    let dob = get("dob")?;
    if !dob.is_empty() {
        identity.dob = Some(
            PartialDate::parse_with(dob, &schema.dob_format)
                .map_err(|e| value_err("dob", e.problem))?,
        );
    }
    identity.sex = Sex::parse(get("sex")?).map_err(|e| value_err("sex", e.problem))?;
    identity.country_of_birth = normalize(get("country_of_birth")?);
    macro_rules! id {
        ($role:literal, $slot:expr, $parse:expr) => {{
            let v = get($role)?;
            if !v.is_empty() {
                $slot = Some(
                    $parse(v).map_err(|e: verity_model::FieldError| value_err($role, e.problem))?,
                );
            }
        }};
    }
    id!("a_number", identity.ids.a_number, ANumber::parse);
    id!("fbi_number", identity.ids.fbi_number, FbiNumber::parse);
    id!("ssn", identity.ids.ssn, Ssn::parse);
    id!("fin", identity.ids.fin, Fin::parse);
    id!("passport", identity.ids.passport, Passport::parse);
    identity.address.street_number = get("street_number")?.to_string();
    identity.address.street = get("street")?.to_string();
    identity.address.locality = get("locality")?.to_string();
    identity.address.postcode = get("postcode")?.to_string();
    identity.address.region = get("region")?.to_string();
    let id = match get("id")? {
        "" if cols.contains_key("id") => return Err(value_err("id", "record id is empty".into())),
        "" => format!("row{row_no}"),
        v => v.to_string(),
    };
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    Ok(Record {
        id,
        identity,
        national_id: opt(get("national_id")?),
        other_id: opt(get("other_id")?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn schema() -> Schema {
        Schema::parse("id = \"rec\"\ngiven_name = \"first\"\nfamily_name = \"last\"\ndob = \"born\"\ndob_format = \"%Y%m%d\"\nssn = \"ss\"").expect("valid schema")
    }

    #[test]
    fn unknown_role_is_named() {
        let e = Schema::parse("id = \"a\"\nfamily_name = \"b\"\nshoe_size = \"c\"").unwrap_err();
        assert!(e.to_string().contains("shoe_size"), "{e}");
    }

    #[test]
    fn missing_column_names_column_and_file() {
        let e = read_records(
            b"rec,first,last,born\n1,A,B,19800101\n",
            "a.csv",
            &schema(),
            false,
        )
        .unwrap_err();
        assert_eq!(
            e,
            ReadError::MissingColumn {
                file: "a.csv".into(),
                column: "ss".into(),
                role: "ssn".into()
            }
        );
    }

    #[test]
    fn bad_date_names_line_and_column() {
        let csv = b"rec , first, last, born, ss\n1,Ann,Lee,19800101,\n2, Bo , Kim , 1980-01-02,\n";
        let e = read_records(csv, "a.csv", &schema(), false).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("line 3") && msg.contains("'born'"), "{msg}");
        let (ok, skipped) = read_records(csv, "a.csv", &schema(), true).expect("skip mode");
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].identity.name.given, "Ann");
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].line, 3);
    }

    #[test]
    fn bad_utf8_names_line_and_column() {
        let csv = b"rec,first,last,born,ss\n1,Ann,Lee,19800101,\n2,B\xff,Kim,19800102,\n";
        let msg = read_records(csv, "a.csv", &schema(), false)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("line 3") && msg.contains("'first'"), "{msg}");
    }

    #[test]
    fn quoted_fields_and_full_names() {
        let s = Schema::parse("full_name = \"name\"").expect("valid");
        let (r, _) = read_records(
            b"name\n\"GARCIA LOPEZ, JOSE LUIS\"\nJohn Q Public\n",
            "f.csv",
            &s,
            false,
        )
        .expect("ok");
        assert_eq!(r[0].identity.name.family, "GARCIA LOPEZ");
        assert_eq!(r[1].identity.name.family, "Public");
        assert_eq!(r[1].id, "row2");
    }

    proptest! {
        #[test]
        fn readers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400), schema_text in ".{0,80}") {
            let _ = read_records(&bytes, "fuzz.csv", &schema(), false);
            let _ = read_records(&bytes, "fuzz.csv", &schema(), true);
            let _ = Schema::parse(&schema_text);
        }

        #[test]
        fn csv_shaped_input_never_panics(rows in proptest::collection::vec(("[0-9]{0,3}", "[A-Za-z ,\"]{0,8}", "[0-9A-Z\u{e9}]{0,9}"), 0..6)) {
            let mut text = String::from("rec,first,last,born,ss\n");
            for (a, b, c) in rows {
                text.push_str(&format!("{a},{b},{c},{c},{a}\n"));
            }
            let _ = read_records(text.as_bytes(), "f.csv", &schema(), true);
        }
    }
}
