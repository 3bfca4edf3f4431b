//! Writes a synthetic CAR ten-print transaction (Type-1, Type-2, 10 x Type-4, 10 x Type-9)
//! to the path given as the first argument: a seed for fuzzing and a demo input for
//! `verity bio inspect`. All values are synthetic.

use verity_formats::ansi_nist::{write_transaction, Biographics, TransactionBuilder};
use verity_model::{PartialDate, PersonName, Sex};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: write_sample_transaction OUT_FILE")?;
    let bio = Biographics {
        name: Some(PersonName::new("JOSE", "LUIS", "GARCIA LOPEZ")),
        dob: Some(PartialDate::full(1985, 3, 12)?),
        sex: Some(Sex::Male),
        pob: Some("MX".into()),
        ..Biographics::default()
    };
    let tx = TransactionBuilder::car("MD0030000", "MD20240501000001", "20240501")
        .biographics(bio)
        .synthetic_fingers(7)
        .build();
    std::fs::write(&path, write_transaction(&tx))?;
    Ok(())
}
