//! Fuzz target: the ANSI/NIST-ITL transaction reader must never panic, and whatever it
//! accepts must re-encode and read back to the same transaction.
#![no_main]

use libfuzzer_sys::fuzz_target;
use verity_formats::ansi_nist::{read_transaction, write_transaction};

fuzz_target!(|data: &[u8]| {
    if let Ok(tx) = read_transaction(data) {
        let again = read_transaction(&write_transaction(&tx)).expect("a transaction we read must re-read after writing");
        assert_eq!(again, tx);
        let _ = verity_formats::describe(data);
    }
});
