//! Fuzz target: the Nlets IAQ parser must never panic on any text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 28).expect("valid date");
        if let Ok(iaq) = verity_formats::nlets::parse_iaq(text, today) {
            let again = verity_formats::nlets::parse_iaq(&verity_formats::nlets::write_iaq(&iaq), today)
                .expect("an IAQ we parsed must re-parse after writing");
            assert_eq!(again, iaq);
        }
    }
});
