//! Fuzzes the `verity link` readers: schema TOML and CSV bytes must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use verity_resolve::schema::{read_records, Schema};

fuzz_target!(|data: &[u8]| {
    // first line (if UTF-8) is tried as a schema; the whole input as CSV under a fixed schema
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    if let Ok(text) = std::str::from_utf8(&data[..split]) {
        let _ = Schema::parse(text);
    }
    let schema = Schema::parse("id = \"id\"\nfull_name = \"name\"\ndob = \"dob\"\na_number = \"a\"\npassport = \"p\"\nsex = \"sex\"")
        .expect("fixed schema is valid");
    let csv = &data[split.min(data.len())..];
    let _ = read_records(csv, "fuzz.csv", &schema, false);
    let _ = read_records(csv, "fuzz.csv", &schema, true);
});
