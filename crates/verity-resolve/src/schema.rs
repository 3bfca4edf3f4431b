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
///
/// A large file without quote characters (so no field can hold a line break) is read on all
/// cores in line-aligned chunks; the records, skipped rows and the first error are exactly
/// those of reading it in one pass (a test checks this).
pub fn read_records(
    bytes: &[u8],
    file: &str,
    schema: &Schema,
    skip_bad_rows: bool,
) -> Result<(Vec<Record>, Vec<SkippedRow>), ReadError> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let chunks = if bytes.len() >= PARALLEL_MIN_BYTES {
        threads.min(16) * 2
    } else {
        1
    };
    read_records_in(bytes, file, schema, skip_bad_rows, chunks)
}

/// Files smaller than this are read in one pass (threads would cost more than they save).
const PARALLEL_MIN_BYTES: usize = 256 * 1024;

/// Records of one chunk of rows: the records with their row number within the chunk, the
/// skipped rows, the number of rows read, and the error that stopped the chunk.
struct ChunkRead {
    records: Vec<(u64, Record)>,
    skipped: Vec<SkippedRow>,
    rows: u64,
    error: Option<ReadError>,
}

/// The header's columns: (role -> index) and the trimmed column names.
type Columns<'a> = (BTreeMap<&'a str, usize>, Vec<String>);

fn columns<'a>(
    header: &csv::ByteRecord,
    file: &str,
    schema: &'a Schema,
) -> Result<Columns<'a>, ReadError> {
    let names: Vec<String> = header
        .iter()
        .map(|h| {
            String::from_utf8_lossy(h)
                .trim()
                .trim_start_matches('\u{feff}')
                .to_string()
        })
        .collect();
    let mut cols: BTreeMap<&str, usize> = BTreeMap::new();
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
    Ok((cols, names))
}

/// [`read_records`] with the body split into at most `chunks` line-aligned parts (1: one pass).
fn read_records_in(
    bytes: &[u8],
    file: &str,
    schema: &Schema,
    skip_bad_rows: bool,
    chunks: usize,
) -> Result<(Vec<Record>, Vec<SkippedRow>), ReadError> {
    let builder = || {
        let mut b = csv::ReaderBuilder::new();
        // fields are trimmed where they are read (`parse_row`), without copying the row
        b.trim(csv::Trim::Headers).flexible(true);
        b
    };
    let mut rdr = builder().from_reader(bytes);
    let header = rdr
        .byte_headers()
        .map_err(|e| ReadError::Header {
            file: file.into(),
            problem: e.to_string(),
        })?
        .clone();
    let (cols, names) = columns(&header, file, schema)?;
    let body_start = rdr.position().byte() as usize;
    let body = bytes.get(body_start..).unwrap_or(b"");
    // quotes may hide line breaks inside a field, and blank lines or lone carriage returns
    // make line numbers depend on the reader's state: such files are read in one pass
    let parts = if chunks > 1 && plain_lines(body) {
        split_lines(body, chunks)
    } else {
        Vec::new()
    };
    let mut done: Vec<ChunkRead> = if parts.len() > 1 {
        let first_line = rdr.position().line();
        let mut line = first_line;
        let mut starts = Vec::with_capacity(parts.len());
        for part in &parts {
            starts.push(line);
            line += part.iter().filter(|&&c| c == b'\n').count() as u64;
        }
        let (cols, names) = (&cols, &names);
        let starts = &starts;
        crate::model::parallel_map(parts.len(), |k| {
            let r = builder().has_headers(false).from_reader(parts[k]);
            read_chunk(r, starts[k] - 1, cols, names, schema, file, skip_bad_rows)
        })
    } else {
        vec![read_chunk(
            rdr,
            0,
            &cols,
            &names,
            schema,
            file,
            skip_bad_rows,
        )]
    };
    let mut out = Vec::with_capacity(done.iter().map(|c| c.records.len()).sum());
    let mut skipped = Vec::new();
    let mut rows_before = 0u64;
    let numbered_ids = !cols.contains_key("id");
    for chunk in &mut done {
        if let Some(e) = chunk.error.take() {
            return Err(e);
        }
        for (row, mut r) in chunk.records.drain(..) {
            if numbered_ids {
                r.id = format!("row{}", rows_before + row);
            }
            out.push(r);
        }
        skipped.append(&mut chunk.skipped);
        rows_before += chunk.rows;
    }
    Ok((out, skipped))
}

/// True when every line break is `\n` or `\r\n`, no line is blank and no field is quoted.
fn plain_lines(body: &[u8]) -> bool {
    if body.first() == Some(&b'\n') || body.starts_with(b"\r\n") {
        return false;
    }
    body.iter().enumerate().all(|(k, &c)| match c {
        b'"' => false,
        b'\r' => body.get(k + 1) == Some(&b'\n'),
        b'\n' => !matches!(body.get(k + 1), Some(b'\n' | b'\r')),
        _ => true,
    })
}

/// Splits `body` into about `n` parts, each ending just after a line break (the last part
/// takes the rest).
fn split_lines(body: &[u8], n: usize) -> Vec<&[u8]> {
    let mut parts = Vec::with_capacity(n);
    let target = body.len().div_ceil(n.max(1)).max(1);
    let mut from = 0;
    while from < body.len() {
        let want = (from + target).min(body.len());
        let end = match body[want..].iter().position(|&c| c == b'\n') {
            Some(k) => want + k + 1,
            None => body.len(),
        };
        parts.push(&body[from..end]);
        from = end;
    }
    parts
}

/// Each role's column index (by position in [`ROLES`]), if the schema maps it.
type RoleColumns = [Option<usize>; ROLES.len()];

/// Position of `name` in [`ROLES`] (evaluated at compile time by [`role!`]).
const fn role_index(name: &str) -> usize {
    let mut k = 0;
    while k < ROLES.len() {
        let (a, b) = (ROLES[k].as_bytes(), name.as_bytes());
        if a.len() == b.len() {
            let mut i = 0;
            while i < a.len() && a[i] == b[i] {
                i += 1;
            }
            if i == a.len() {
                return k;
            }
        }
        k += 1;
    }
    panic!("not a role")
}

/// The [`ROLES`] index of a role name, checked at compile time.
macro_rules! role {
    ($name:expr) => {
        const { role_index($name) }
    };
}

/// Reads the rows of one reader; `line_offset` is added to its line numbers.
fn read_chunk<R: std::io::Read>(
    mut rdr: csv::Reader<R>,
    line_offset: u64,
    cols: &BTreeMap<&str, usize>,
    names: &[String],
    schema: &Schema,
    file: &str,
    skip_bad_rows: bool,
) -> ChunkRead {
    let mut out = ChunkRead {
        records: Vec::new(),
        skipped: Vec::new(),
        rows: 0,
        error: None,
    };
    // role -> column resolved once per chunk, not once per field of every row
    let by_role: RoleColumns = std::array::from_fn(|k| cols.get(ROLES[k]).copied());
    let mut rec = csv::ByteRecord::new();
    loop {
        let line_hint = rdr.position().line() + line_offset;
        match rdr.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(line_hint, |p| p.line() + line_offset);
                let err = ReadError::Row {
                    file: file.into(),
                    line,
                    problem: e.to_string(),
                };
                if skip_bad_rows && !matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    out.skipped.push(SkippedRow {
                        file: file.into(),
                        line,
                        problem: err.to_string(),
                    });
                    continue;
                }
                out.error = Some(err);
                return out;
            }
        }
        out.rows += 1;
        let line = rec.position().map_or(line_hint, |p| p.line() + line_offset);
        match parse_row(&rec, &by_role, schema, file, line, out.rows, names) {
            Ok(r) => out.records.push((out.rows, r)),
            Err(e) if skip_bad_rows => out.skipped.push(SkippedRow {
                file: file.into(),
                line,
                problem: e.to_string(),
            }),
            Err(e) => {
                out.error = Some(e);
                return out;
            }
        }
    }
    out
}

fn parse_row(
    rec: &csv::ByteRecord,
    cols: &RoleColumns,
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
    let get = |role: usize| -> Result<&str, ReadError> {
        match cols.get(role).copied().flatten() {
            None => Ok(""),
            // ASCII whitespace trimmed first, as the csv reader's `Trim::All` would
            Some(i) => std::str::from_utf8(rec.get(i).unwrap_or(b"").trim_ascii())
                .map(str::trim)
                .map_err(|e| {
                    value_err(
                        ROLES.get(role).copied().unwrap_or(""),
                        format!("not UTF-8 ({e})"),
                    )
                }),
        }
    };
    let mut identity = Identity::default();
    let full = get(role!("full_name"))?;
    identity.name = if !full.is_empty()
        && get(role!("given_name"))?.is_empty()
        && get(role!("family_name"))?.is_empty()
    {
        split_full_name(full)
    } else {
        PersonName::new(
            get(role!("given_name"))?,
            get(role!("middle_name"))?,
            get(role!("family_name"))?,
        )
    };
    let dob = get(role!("dob"))?;
    if !dob.is_empty() {
        identity.dob = Some(
            PartialDate::parse_with(dob, &schema.dob_format)
                .map_err(|e| value_err("dob", e.problem))?,
        );
    }
    identity.sex = Sex::parse(get(role!("sex"))?).map_err(|e| value_err("sex", e.problem))?;
    identity.country_of_birth = normalize(get(role!("country_of_birth"))?);
    macro_rules! id {
        ($role:literal, $slot:expr, $parse:expr) => {{
            let v = get(role!($role))?;
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
    identity.address.street_number = get(role!("street_number"))?.to_string();
    identity.address.street = get(role!("street"))?.to_string();
    identity.address.locality = get(role!("locality"))?.to_string();
    identity.address.postcode = get(role!("postcode"))?.to_string();
    identity.address.region = get(role!("region"))?.to_string();
    let id = match get(role!("id"))? {
        "" if cols[role!("id")].is_some() => {
            return Err(value_err("id", "record id is empty".into()))
        }
        "" => format!("row{row_no}"),
        v => v.to_string(),
    };
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    Ok(Record {
        id,
        identity,
        national_id: opt(get(role!("national_id"))?),
        other_id: opt(get(role!("other_id"))?),
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
    fn fields_are_trimmed_as_the_reader_trimmed_them() {
        // spaces and tabs around plain and quoted fields, and around an invalid byte: the
        // error still names the column and reports the offset within the trimmed value
        let csv = b"rec,first,last,born,ss\n 1 ,\t Ann \t,\" Lee \", 19800101 ,\n";
        let (r, _) = read_records(csv, "a.csv", &schema(), false).expect("ok");
        assert_eq!(r[0].id, "1");
        assert_eq!(r[0].identity.name.given, "Ann");
        assert_eq!(r[0].identity.name.family, "Lee");
        let bad = b"rec,first,last,born,ss\n1,  \xffB,Kim,19800102,\n";
        let msg = read_records(bad, "a.csv", &schema(), false)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("'first'") && msg.contains("index 0"), "{msg}");
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

    /// A CSV text of `rows` rows, some of them bad (date, field count, encoding).
    fn sample_csv(rows: usize, with_id: bool, line_end: &str, blank_lines: bool) -> Vec<u8> {
        let mut t = String::new();
        t.push_str(if with_id {
            "rec,first,last,born,ss"
        } else {
            "first,last,born,ss"
        });
        t.push_str(line_end);
        for k in 0..rows {
            let born = match k % 37 {
                5 => "1980-13-01".to_string(),
                _ => format!("19{:02}{:02}{:02}", 40 + k % 50, 1 + k % 12, 1 + k % 28),
            };
            let id = if with_id {
                format!("r{k},")
            } else {
                String::new()
            };
            if k % 53 == 7 {
                t.push_str(&format!("{id}ONLY,TWO"));
            } else if blank_lines && k % 61 == 9 {
                t.push_str(line_end);
                continue;
            } else {
                t.push_str(&format!("{id}Ann{k}, Lee{k} ,{born},"));
            }
            t.push_str(line_end);
        }
        t.into_bytes()
    }

    #[test]
    fn chunked_reading_equals_one_pass() {
        let plain = schema();
        let no_id = Schema::parse(
            "given_name = \"first\"\nfamily_name = \"last\"\ndob = \"born\"\ndob_format = \"%Y%m%d\"\nssn = \"ss\"",
        )
        .expect("valid schema");
        for (with_id, s) in [(true, &plain), (false, &no_id)] {
            for (line_end, blank) in [("\n", false), ("\r\n", false), ("\n", true), ("\r\n", true)]
            {
                let csv = sample_csv(400, with_id, line_end, blank);
                for skip in [true, false] {
                    let one = read_records_in(&csv, "f.csv", s, skip, 1);
                    for chunks in [2, 3, 7, 50] {
                        let many = read_records_in(&csv, "f.csv", s, skip, chunks);
                        if let (Ok((a, x)), Ok((b, y))) = (&one, &many) {
                            let first = a.iter().zip(b).position(|(r, q)| r != q);
                            let first_skip = x.iter().zip(y).position(|(r, q)| r != q);
                            assert!(
                                first.is_none() && first_skip.is_none() && a.len() == b.len(),
                                "chunks {chunks}: {:?} {:?} / {:?} {:?}",
                                first.map(|k| (&a[k].id, &b[k].id)),
                                first_skip.map(|k| (&x[k], &y[k])),
                                a.len(),
                                b.len()
                            );
                        }
                        assert_eq!(one, many, "chunks {chunks} skip {skip} id {with_id}");
                    }
                    if skip {
                        let (ok, bad) = one.expect("skip mode reads");
                        assert!(
                            ok.len() > 300 && bad.len() > 10,
                            "{} / {}",
                            ok.len(),
                            bad.len()
                        );
                    } else {
                        assert!(one.is_err());
                    }
                }
            }
        }
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
