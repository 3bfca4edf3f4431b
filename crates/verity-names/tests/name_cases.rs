//! Data-driven comparison cases from `name_cases.txt` (one line per case; easy to extend).
//! Each case must hold in both argument orders.

use verity_model::PersonName;
use verity_names::{compare, compare_levels, parse, NameAgreement, NameComparison};

const CASES: &str = include_str!("name_cases.txt");

fn level(s: &str) -> NameAgreement {
    match s {
        "Exact" => NameAgreement::Exact,
        "Equivalent" => NameAgreement::Equivalent,
        "Phonetic" => NameAgreement::Phonetic,
        "Fuzzy" => NameAgreement::Fuzzy,
        "Initial" => NameAgreement::Initial,
        "Partial" => NameAgreement::Partial,
        "Disagree" => NameAgreement::Disagree,
        "Missing" => NameAgreement::Missing,
        other => panic!("unknown level '{other}'"),
    }
}

fn name_of(kind: &str, s: &str) -> PersonName {
    match kind {
        "given" => PersonName::new(s, "", ""),
        "middle" => PersonName::new("", s, ""),
        "family" => PersonName::new("", "", s),
        "name" => {
            let parts: Vec<&str> = s.split(';').collect();
            assert_eq!(parts.len(), 3, "name '{s}' must be given;middle;family");
            PersonName::new(parts[0], parts[1], parts[2])
        }
        other => panic!("unknown kind '{other}'"),
    }
}

fn check(kind: &str, expected: &str, c: &NameComparison) -> Result<(), String> {
    let part = |p: &str| match p {
        "given" => c.given,
        "middle" => c.middle,
        _ => c.family,
    };
    if kind != "name" {
        let got = part(kind);
        return if got == level(expected) {
            Ok(())
        } else {
            Err(format!("{kind}: got {got:?}, want {expected}"))
        };
    }
    for item in expected.split_whitespace() {
        match item {
            "swapped" if !c.swapped => return Err("want swapped".into()),
            "straight" if c.swapped => return Err("want not swapped".into()),
            "swapped" | "straight" => {}
            _ => {
                let (p, l) = item
                    .split_once('=')
                    .ok_or_else(|| format!("bad item '{item}'"))?;
                if part(p) != level(l) {
                    return Err(format!("{p}: got {:?}, want {l}", part(p)));
                }
            }
        }
    }
    Ok(())
}

#[test]
fn name_cases_hold_in_both_orders() {
    let mut failures = Vec::new();
    let mut count = 0;
    for (i, line) in CASES.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split('|').map(str::trim).collect();
        assert_eq!(f.len(), 4, "name_cases.txt:{}: need 4 fields", i + 1);
        let (kind, a, b, expected) = (f[0], f[1], f[2], f[3]);
        let pa = parse(&name_of(kind, a));
        let pb = parse(&name_of(kind, b));
        for (x, y, order) in [(&pa, &pb, "a,b"), (&pb, &pa, "b,a")] {
            let c = compare(x, y);
            if compare_levels(x, y) != (c.given, c.middle, c.family, c.swapped) {
                failures.push(format!(
                    "name_cases.txt:{} [{order}]: compare_levels differs from compare",
                    i + 1
                ));
            }
            if let Err(e) = check(kind, expected, &c) {
                failures.push(format!(
                    "name_cases.txt:{} [{order}] {a} | {b}: {e}; notes {:?}",
                    i + 1,
                    c.notes
                ));
            }
        }
        count += 1;
    }
    assert!(count > 100, "only {count} cases");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
