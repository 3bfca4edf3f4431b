//! Prints `verity_formats::describe` for each file given: a quick look at a minutiae record or
//! an ANSI/NIST transaction until `verity bio inspect` is wired.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for path in std::env::args().skip(1) {
        let bytes = std::fs::read(&path)?;
        println!("== {path}");
        match verity_formats::describe(&bytes) {
            Ok(text) => print!("{text}"),
            Err(e) => println!("error: {e}"),
        }
    }
    Ok(())
}
