//! Fuzz target: the finger minutiae record reader (ISO 19794-2 / INCITS 378) must never
//! panic, and whatever it accepts must re-encode and read back to the same record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use verity_formats::fmr::{read_fmr, write_fmr};

fuzz_target!(|data: &[u8]| {
    if let Ok(rec) = read_fmr(data) {
        let again = read_fmr(&write_fmr(&rec)).expect("a record we read must re-read after writing");
        assert_eq!(again, rec);
    }
    let _ = verity_formats::read_subject(data);
});
