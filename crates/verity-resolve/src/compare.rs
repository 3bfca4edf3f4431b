//! Comparators: each field of a record pair becomes one discrete level of the Fellegi–Sunter
//! comparison vector. Level 0 is always "null" (a side is unknown: no evidence either way).
//! Levels are ordered strongest agreement first; the last level is the disagreement.

use crate::names::{compare_levels, compare_names, NameAgreement, NameComparison};
use crate::record::Prepared;
use crate::strsim::{one_typo, one_typo_bytes};
use verity_model::PartialDate;

/// One comparison field: its name, level labels, and starting m-probabilities for EM.
#[derive(Debug)]
pub struct FieldDef {
    pub name: &'static str,
    pub levels: &'static [&'static str],
    pub initial_m: &'static [f64],
    /// Levels that are evidence of nothing by policy (weight pinned to 0).
    pub neutral: &'static [&'static str],
}

pub const GIVEN: usize = 0;
pub const MIDDLE: usize = 1;
pub const FAMILY: usize = 2;
pub const DOB: usize = 3;
pub const SEX: usize = 4;
pub const COUNTRY: usize = 5;
pub const A_NUMBER: usize = 6;
pub const FBI: usize = 7;
pub const PASSPORT: usize = 8;
pub const SSN: usize = 9;
pub const FIN: usize = 10;
pub const STATE_ID: usize = 11;
pub const NATIONAL_ID: usize = 12;
pub const OTHER_ID: usize = 13;
pub const ADDRESS: usize = 14;
pub const N_FIELDS: usize = 15;

/// Identifier fields (agreement on one of these is corroboration beyond name and birth date).
pub const IDENTIFIER_FIELDS: [usize; 8] = [
    A_NUMBER,
    FBI,
    PASSPORT,
    SSN,
    FIN,
    STATE_ID,
    NATIONAL_ID,
    OTHER_ID,
];

pub(crate) const NULL: &str = "null";
const ID_LEVELS: &[&str] = &[NULL, "exact", "one_typo", "disagree"];
const ID_M: &[f64] = &[0.0, 0.85, 0.05, 0.10];
const SIMPLE_ID_LEVELS: &[&str] = &[NULL, "exact", "disagree"];
const SIMPLE_ID_M: &[f64] = &[0.0, 0.9, 0.1];

pub static FIELDS: [FieldDef; N_FIELDS] = [
    FieldDef {
        name: "given_name",
        levels: &[
            NULL,
            "exact",
            "equivalent",
            "phonetic",
            "fuzzy",
            "initial",
            "partial",
            "swapped",
            "disagree",
        ],
        initial_m: &[0.0, 0.75, 0.06, 0.04, 0.05, 0.02, 0.03, 0.02, 0.03],
        neutral: &[],
    },
    FieldDef {
        name: "middle_name",
        levels: &[NULL, "exact", "initial", "similar", "disagree"],
        initial_m: &[0.0, 0.8, 0.08, 0.07, 0.05],
        neutral: &[],
    },
    FieldDef {
        name: "family_name",
        levels: &[
            NULL,
            "exact",
            "equivalent",
            "phonetic",
            "fuzzy",
            "partial",
            "swapped",
            "disagree",
        ],
        initial_m: &[0.0, 0.8, 0.03, 0.04, 0.05, 0.03, 0.02, 0.03],
        neutral: &[],
    },
    FieldDef {
        name: "dob",
        levels: &[
            NULL,
            "exact",
            "exact_placeholder",
            "day_month_swap",
            "one_digit_typo",
            "year_month",
            "plus_minus_1_year",
            "year_only_same_year",
            "mismatch",
        ],
        initial_m: &[0.0, 0.8, 0.03, 0.03, 0.04, 0.02, 0.03, 0.02, 0.03],
        neutral: &[],
    },
    FieldDef {
        name: "sex",
        levels: &[NULL, "agree", "disagree"],
        initial_m: &[0.0, 0.97, 0.03],
        neutral: &[],
    },
    FieldDef {
        name: "country_of_birth",
        levels: &[NULL, "agree", "disagree"],
        initial_m: &[0.0, 0.95, 0.05],
        neutral: &[],
    },
    FieldDef {
        name: "a_number",
        levels: ID_LEVELS,
        initial_m: ID_M,
        neutral: &[],
    },
    FieldDef {
        name: "fbi_number",
        levels: ID_LEVELS,
        initial_m: ID_M,
        neutral: &[],
    },
    FieldDef {
        name: "passport",
        levels: &[
            NULL,
            "exact",
            "one_typo",
            "same_country_other_number",
            "other_country",
        ],
        initial_m: &[0.0, 0.7, 0.05, 0.2, 0.05],
        // a renewed passport has a new number: same country, different number says nothing
        neutral: &["same_country_other_number"],
    },
    FieldDef {
        name: "ssn",
        levels: ID_LEVELS,
        initial_m: ID_M,
        neutral: &[],
    },
    FieldDef {
        name: "fin",
        levels: SIMPLE_ID_LEVELS,
        initial_m: SIMPLE_ID_M,
        neutral: &[],
    },
    FieldDef {
        name: "state_id",
        levels: SIMPLE_ID_LEVELS,
        initial_m: SIMPLE_ID_M,
        neutral: &[],
    },
    FieldDef {
        name: "national_id",
        levels: ID_LEVELS,
        initial_m: ID_M,
        neutral: &[],
    },
    FieldDef {
        name: "other_id",
        levels: SIMPLE_ID_LEVELS,
        initial_m: SIMPLE_ID_M,
        neutral: &[],
    },
    FieldDef {
        name: "address",
        levels: &[
            NULL,
            "street_and_place",
            "postcode_and_locality",
            "locality_or_postcode",
            "region_only",
            "disagree",
        ],
        initial_m: &[0.0, 0.3, 0.1, 0.2, 0.2, 0.2],
        neutral: &[],
    },
];

/// The comparison vector of one pair: a level index per field.
pub type Vector = [u8; N_FIELDS];

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Level index of a label in a field; unknown labels map to null. A `const fn` so that call
/// sites written `const { lvl(F, "label") }` cost nothing at run time.
pub const fn lvl(field: usize, label: &str) -> u8 {
    let levels = FIELDS[field].levels;
    let mut i = 0;
    while i < levels.len() {
        if str_eq(levels[i], label) {
            return i as u8;
        }
        i += 1;
    }
    0
}

const fn name_label(field: usize, a: NameAgreement) -> &'static str {
    use NameAgreement::*;
    match (field, a) {
        (_, Missing) => NULL,
        (_, Exact) => "exact",
        (MIDDLE, Initial) => "initial",
        (MIDDLE, Equivalent | Phonetic | Fuzzy | Partial) => "similar",
        (_, Equivalent) => "equivalent",
        (_, Phonetic) => "phonetic",
        (_, Fuzzy) => "fuzzy",
        (GIVEN, Initial) => "initial",
        (_, Initial | Partial) => "partial",
        _ => "disagree",
    }
}

/// Level of each name agreement (in `NameAgreement` order) for GIVEN, MIDDLE, FAMILY.
const NAME_LEVELS: [[u8; 8]; 3] = {
    use NameAgreement::*;
    let order = [
        Exact, Equivalent, Phonetic, Fuzzy, Initial, Partial, Disagree, Missing,
    ];
    let mut t = [[0u8; 8]; 3];
    let mut f = 0;
    while f < 3 {
        let mut k = 0;
        while k < 8 {
            t[f][k] = lvl(f, name_label(f, order[k]));
            k += 1;
        }
        f += 1;
    }
    t
};

fn name_level(field: usize, a: NameAgreement, swapped: bool) -> u8 {
    if a == NameAgreement::Missing {
        return 0;
    }
    if swapped && a <= NameAgreement::Fuzzy {
        return match field {
            GIVEN => const { lvl(GIVEN, "swapped") },
            _ => const { lvl(FAMILY, "swapped") },
        };
    }
    NAME_LEVELS[field.min(2)][a as usize]
}

/// Birth-date level. Placeholders (01/01) and year-only dates are weak evidence and get their
/// own levels so that EM weighs them apart from a real birthday.
pub fn dob_level(a: Option<PartialDate>, b: Option<PartialDate>) -> u8 {
    let (Some(a), Some(b)) = (a, b) else { return 0 };
    let weak = |d: &PartialDate| !d.is_complete() || d.is_placeholder();
    if weak(&a) || weak(&b) {
        if a == b && a.is_placeholder() {
            return const { lvl(DOB, "exact_placeholder") };
        }
        if a.year == b.year {
            return const { lvl(DOB, "year_only_same_year") };
        }
        return const { lvl(DOB, "mismatch") };
    }
    if a == b {
        return const { lvl(DOB, "exact") };
    }
    if a.year == b.year && a.month == b.day && a.day == b.month {
        return const { lvl(DOB, "day_month_swap") };
    }
    if one_typo_digits(&date_digits(&a), &date_digits(&b)) {
        return const { lvl(DOB, "one_digit_typo") };
    }
    if a.year == b.year && a.month == b.month {
        return const { lvl(DOB, "year_month") };
    }
    if a.year.abs_diff(b.year) == 1 && a.month == b.month && a.day == b.day {
        return const { lvl(DOB, "plus_minus_1_year") };
    }
    const { lvl(DOB, "mismatch") }
}

/// [`dob_level`] with the digits taken from the packed fields (the same level).
fn dob_level_packed(ca: &CheapFields, cb: &CheapFields) -> u8 {
    let (Some(a), Some(b)) = (ca.dob, cb.dob) else {
        return 0;
    };
    let weak = |d: &PartialDate| !d.is_complete() || d.is_placeholder();
    if weak(&a) || weak(&b) {
        if a == b && a.is_placeholder() {
            return const { lvl(DOB, "exact_placeholder") };
        }
        if a.year == b.year {
            return const { lvl(DOB, "year_only_same_year") };
        }
        return const { lvl(DOB, "mismatch") };
    }
    if a == b {
        return const { lvl(DOB, "exact") };
    }
    if a.year == b.year && a.month == b.day && a.day == b.month {
        return const { lvl(DOB, "day_month_swap") };
    }
    if one_typo_digits(&ca.dob_digits, &cb.dob_digits) {
        return const { lvl(DOB, "one_digit_typo") };
    }
    if a.year == b.year && a.month == b.month {
        return const { lvl(DOB, "year_month") };
    }
    if a.year.abs_diff(b.year) == 1 && a.month == b.month && a.day == b.day {
        return const { lvl(DOB, "plus_minus_1_year") };
    }
    const { lvl(DOB, "mismatch") }
}

fn date_digits(d: &PartialDate) -> [u8; 8] {
    let (y, m, dd) = (d.year, d.month.unwrap_or(0), d.day.unwrap_or(0));
    [
        (y / 1000 % 10) as u8,
        (y / 100 % 10) as u8,
        (y / 10 % 10) as u8,
        (y % 10) as u8,
        m / 10,
        m % 10,
        dd / 10,
        dd % 10,
    ]
}

fn one_typo_digits(a: &[u8; 8], b: &[u8; 8]) -> bool {
    let mut diffs = [0usize; 3];
    let mut n = 0;
    for i in 0..8 {
        if a[i] != b[i] {
            if n == 2 {
                return false;
            }
            diffs[n] = i;
            n += 1;
        }
    }
    match n {
        1 => true,
        2 => diffs[1] == diffs[0] + 1 && a[diffs[0]] == b[diffs[1]] && a[diffs[1]] == b[diffs[0]],
        _ => false,
    }
}

fn id_level(field: usize, a: &str, b: &str) -> u8 {
    if a.is_empty() || b.is_empty() {
        return 0;
    }
    // every identifier field is [null, exact, (one_typo,) disagree]; a test checks it
    let n = FIELDS[field].levels.len() as u8;
    if a == b {
        return 1;
    }
    if n == 4 && one_typo(a, b) {
        return 2;
    }
    n - 1
}

fn passport_level(a: &Prepared, b: &Prepared) -> u8 {
    if a.passport_number.is_empty() || b.passport_number.is_empty() {
        return 0;
    }
    let same_country = a.passport_country == b.passport_country;
    if same_country && a.passport_number == b.passport_number {
        return const { lvl(PASSPORT, "exact") };
    }
    if same_country && one_typo(&a.passport_number, &b.passport_number) {
        return const { lvl(PASSPORT, "one_typo") };
    }
    if same_country {
        return const { lvl(PASSPORT, "same_country_other_number") };
    }
    const { lvl(PASSPORT, "other_country") }
}

fn address_level(a: &Prepared, b: &Prepared) -> u8 {
    let has = |p: &Prepared| {
        !(p.street.is_empty()
            && p.locality.is_empty()
            && p.postcode.is_empty()
            && p.region.is_empty())
    };
    if !has(a) || !has(b) {
        return 0;
    }
    let eq = |x: &str, y: &str| !x.is_empty() && x == y;
    let street = eq(&a.street, &b.street)
        && (a.street_number.is_empty()
            || b.street_number.is_empty()
            || a.street_number == b.street_number);
    let place = eq(&a.postcode, &b.postcode) || eq(&a.locality, &b.locality);
    if street && place {
        return const { lvl(ADDRESS, "street_and_place") };
    }
    if eq(&a.postcode, &b.postcode) && eq(&a.locality, &b.locality) {
        return const { lvl(ADDRESS, "postcode_and_locality") };
    }
    if place {
        return const { lvl(ADDRESS, "locality_or_postcode") };
    }
    if eq(&a.region, &b.region) {
        return const { lvl(ADDRESS, "region_only") };
    }
    const { lvl(ADDRESS, "disagree") }
}

/// Compares a pair: the comparison vector and the name comparison (kept for explanations).
pub fn compare(a: &Prepared, b: &Prepared) -> (Vector, NameComparison) {
    compare_with(a, b, true)
}

/// The comparison vector only (hot path: no explanation notes are built).
pub fn vector(a: &Prepared, b: &Prepared) -> Vector {
    compare_with(a, b, false).0
}

fn compare_with(a: &Prepared, b: &Prepared, notes: bool) -> (Vector, NameComparison) {
    if !notes {
        let mut v = vector_without_names(a, b);
        let [g, m, f] = name_levels(a, b);
        (v[GIVEN], v[MIDDLE], v[FAMILY]) = (g, m, f);
        let n = NameComparison {
            given: NameAgreement::Missing,
            middle: NameAgreement::Missing,
            family: NameAgreement::Missing,
            swapped: false,
            similarity: 0.0,
            notes: Vec::new(),
        };
        return (v, n);
    }
    let n = compare_names(&a.name, &b.name);
    let mut v = vector_without_names(a, b);
    v[GIVEN] = name_level(GIVEN, n.given, n.swapped);
    v[MIDDLE] = name_level(MIDDLE, n.middle, false);
    v[FAMILY] = name_level(FAMILY, n.family, n.swapped);
    (v, n)
}

/// The comparison vector with the name fields left null: every field that is cheap to compare
/// (no name alignment). Scoring bounds the name fields' weight before paying for them.
pub fn vector_without_names(a: &Prepared, b: &Prepared) -> Vector {
    let mut v = [0u8; N_FIELDS];
    v[DOB] = dob_level(a.dob, b.dob);
    v[SEX] = match (a.sex, b.sex) {
        (Some(x), Some(y)) if x == y => const { lvl(SEX, "agree") },
        (Some(_), Some(_)) => const { lvl(SEX, "disagree") },
        _ => 0,
    };
    v[COUNTRY] = if a.country_of_birth.is_empty() || b.country_of_birth.is_empty() {
        0
    } else {
        if a.country_of_birth == b.country_of_birth {
            const { lvl(COUNTRY, "agree") }
        } else {
            const { lvl(COUNTRY, "disagree") }
        }
    };
    v[A_NUMBER] = id_level(A_NUMBER, &a.a_number, &b.a_number);
    v[FBI] = id_level(FBI, &a.fbi_number, &b.fbi_number);
    v[PASSPORT] = passport_level(a, b);
    v[SSN] = id_level(SSN, &a.ssn, &b.ssn);
    v[FIN] = id_level(FIN, &a.fin, &b.fin);
    v[STATE_ID] = id_level(STATE_ID, &a.state_id, &b.state_id);
    v[NATIONAL_ID] = id_level(NATIONAL_ID, &a.national_id, &b.national_id);
    v[OTHER_ID] = id_level(OTHER_ID, &a.other_id, &b.other_id);
    v[ADDRESS] = address_level(a, b);
    v
}

/// A field value packed into 16 bytes for the batch hot path: a value of up to 15 bytes is
/// stored inline (bytes, then its length in the last byte: equality is exact); a longer one
/// as a 120-bit hash under a marker byte (equal values give equal hashes; two different long
/// values share one with probability 2^-120). The empty value is all zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Packed(u128);

const HASHED: u8 = 0xff;

impl Packed {
    pub fn new(s: &str) -> Packed {
        let b = s.as_bytes();
        let mut x = [0u8; 16];
        if b.len() <= 15 {
            x[..b.len()].copy_from_slice(b);
            x[15] = b.len() as u8;
            return Packed(u128::from_le_bytes(x));
        }
        let hash = |seed: u64| {
            let mut h = seed;
            for &c in b {
                h = (h ^ u64::from(c)).wrapping_mul(0x0000_0100_0000_01b3);
            }
            h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            h ^ (h >> 31)
        };
        let v = (u128::from(hash(0xcbf2_9ce4_8422_2325)) << 64)
            | u128::from(hash(0x9e37_79b9_7f4a_7c15));
        Packed((v & !(0xffu128 << 120)) | (u128::from(HASHED) << 120))
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The inline bytes, or None for a hashed (long) value.
    fn inline(&self) -> Option<([u8; 16], usize)> {
        let x = self.0.to_le_bytes();
        (x[15] != HASHED).then_some((x, usize::from(x[15])))
    }
}

/// [`one_typo`] on packed values; long (hashed) values are compared from their text.
fn one_typo_packed(a: Packed, b: Packed, text_a: &str, text_b: &str) -> bool {
    match (a.inline(), b.inline()) {
        (Some((x, n)), Some((y, m))) => n == m && one_typo_bytes(&x[..n], &y[..m]),
        _ => one_typo(text_a, text_b),
    }
}

/// The fields of a record that [`vector_without_names`] compares, packed into one small block
/// (no pointers to follow), for batch runs that compare each record many times.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CheapFields {
    pub dob: Option<PartialDate>,
    /// The birth date's digits (YYYYMMDD, 0 for an unknown part), for the one-digit-typo test.
    pub dob_digits: [u8; 8],
    pub sex: Option<verity_model::Sex>,
    pub country: Packed,
    pub region: Packed,
    pub postcode: Packed,
    pub locality: Packed,
    pub street: Packed,
    pub street_number: Packed,
    /// Identifier fields in the order of [`IDENTIFIER_FIELDS`] (passport: the number).
    pub ids: [Packed; 8],
    pub passport_country: Packed,
    /// The name's shape, for the batch bound's exact-level tests.
    pub name: crate::model::NameShape,
    /// Which values are present: bit k for `ids[k]`, then [`COUNTRY_PRESENT`] and
    /// [`ADDRESS_PRESENT`] (any address part), so a pair skips fields either side lacks at once.
    pub present: u16,
}

/// [`CheapFields::present`] bit of the country of birth.
pub const COUNTRY_PRESENT: u16 = 1 << 8;
/// [`CheapFields::present`] bit of the address (street, locality, postcode or region).
pub const ADDRESS_PRESENT: u16 = 1 << 9;

impl CheapFields {
    pub fn of(p: &Prepared) -> CheapFields {
        let mut c = CheapFields {
            dob: p.dob,
            dob_digits: p.dob.as_ref().map_or([0; 8], date_digits),
            sex: p.sex,
            country: Packed::new(&p.country_of_birth),
            region: Packed::new(&p.region),
            postcode: Packed::new(&p.postcode),
            locality: Packed::new(&p.locality),
            street: Packed::new(&p.street),
            street_number: Packed::new(&p.street_number),
            ids: IDENTIFIER_FIELDS.map(|f| Packed::new(id_text(p, f))),
            passport_country: Packed::new(&p.passport_country),
            name: crate::model::NameShape::of(p),
            present: 0,
        };
        for (k, id) in c.ids.iter().enumerate() {
            if !id.is_empty() {
                c.present |= 1 << k;
            }
        }
        if !c.country.is_empty() {
            c.present |= COUNTRY_PRESENT;
        }
        let address = !(c.street.is_empty()
            && c.locality.is_empty()
            && c.postcode.is_empty()
            && c.region.is_empty());
        if address {
            c.present |= ADDRESS_PRESENT;
        }
        c
    }
}

/// The text of an identifier field (passport: the number).
fn id_text(p: &Prepared, field: usize) -> &str {
    match field {
        A_NUMBER => &p.a_number,
        FBI => &p.fbi_number,
        PASSPORT => &p.passport_number,
        SSN => &p.ssn,
        FIN => &p.fin,
        STATE_ID => &p.state_id,
        NATIONAL_ID => &p.national_id,
        _ => &p.other_id,
    }
}

/// [`vector_without_names`] from packed fields (`a`, `b` are the records they were packed
/// from, read only for identifiers longer than 15 bytes). Same levels.
pub fn vector_without_names_packed(
    ca: &CheapFields,
    cb: &CheapFields,
    a: &Prepared,
    b: &Prepared,
) -> Vector {
    let mut v = [0u8; N_FIELDS];
    v[DOB] = dob_level_packed(ca, cb);
    v[SEX] = match (ca.sex, cb.sex) {
        (Some(x), Some(y)) if x == y => const { lvl(SEX, "agree") },
        (Some(_), Some(_)) => const { lvl(SEX, "disagree") },
        _ => 0,
    };
    let both = ca.present & cb.present;
    v[COUNTRY] = if both & COUNTRY_PRESENT == 0 {
        0
    } else if ca.country == cb.country {
        const { lvl(COUNTRY, "agree") }
    } else {
        const { lvl(COUNTRY, "disagree") }
    };
    // identifiers both sides hold (most pairs share none)
    let mut ids = both & 0xff;
    while ids != 0 {
        let k = ids.trailing_zeros() as usize;
        ids &= ids - 1;
        let (Some(&f), Some(&x), Some(&y)) =
            (IDENTIFIER_FIELDS.get(k), ca.ids.get(k), cb.ids.get(k))
        else {
            continue;
        };
        v[f] = if f == PASSPORT {
            let same_country = ca.passport_country == cb.passport_country;
            if same_country && x == y {
                const { lvl(PASSPORT, "exact") }
            } else if same_country && one_typo_packed(x, y, &a.passport_number, &b.passport_number)
            {
                const { lvl(PASSPORT, "one_typo") }
            } else if same_country {
                const { lvl(PASSPORT, "same_country_other_number") }
            } else {
                const { lvl(PASSPORT, "other_country") }
            }
        } else {
            let n = FIELDS[f].levels.len() as u8;
            if x == y {
                1
            } else if n == 4 && one_typo_packed(x, y, id_text(a, f), id_text(b, f)) {
                2
            } else {
                n - 1
            }
        };
    }
    if both & ADDRESS_PRESENT != 0 {
        let eq = |x: Packed, y: Packed| !x.is_empty() && x == y;
        let street = eq(ca.street, cb.street)
            && (ca.street_number.is_empty()
                || cb.street_number.is_empty()
                || ca.street_number == cb.street_number);
        let place = eq(ca.postcode, cb.postcode) || eq(ca.locality, cb.locality);
        v[ADDRESS] = if street && place {
            const { lvl(ADDRESS, "street_and_place") }
        } else if eq(ca.postcode, cb.postcode) && eq(ca.locality, cb.locality) {
            const { lvl(ADDRESS, "postcode_and_locality") }
        } else if place {
            const { lvl(ADDRESS, "locality_or_postcode") }
        } else if eq(ca.region, cb.region) {
            const { lvl(ADDRESS, "region_only") }
        } else {
            const { lvl(ADDRESS, "disagree") }
        };
    }
    v
}

/// [`CheapFields`] of every record, on all cores.
pub fn cheap_fields_all(records: &[Prepared]) -> Vec<CheapFields> {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .clamp(1, 16);
    let chunk = records.len().div_ceil(threads * 4).max(1);
    let parts: Vec<&[Prepared]> = records.chunks(chunk).collect();
    crate::model::parallel_map(parts.len(), |k| {
        parts[k].iter().map(CheapFields::of).collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect()
}

/// The name fields' levels (given, middle, family) of a pair.
pub fn name_levels(a: &Prepared, b: &Prepared) -> [u8; 3] {
    let (given, middle, family, swapped) = compare_levels(&a.name, &b.name);
    levels_of_agreements(given, middle, family, swapped)
}

/// The name fields' levels (given, middle, family) from the agreements a name comparison
/// reports (`verity_names::compare_levels` or its prepared-name form).
pub fn levels_of_agreements(
    given: NameAgreement,
    middle: NameAgreement,
    family: NameAgreement,
    swapped: bool,
) -> [u8; 3] {
    [
        name_level(GIVEN, given, swapped),
        name_level(MIDDLE, middle, false),
        name_level(FAMILY, family, swapped),
    ]
}

/// The two values a field compared, for explanations.
pub fn field_values(field: usize, a: &Prepared, b: &Prepared) -> String {
    let pair = |x: &str, y: &str| {
        format!(
            "{} | {}",
            if x.is_empty() { "-" } else { x },
            if y.is_empty() { "-" } else { y }
        )
    };
    let date = |d: Option<PartialDate>| d.map(|d| d.to_string()).unwrap_or_default();
    let sex = |s: Option<verity_model::Sex>| s.map(|s| s.code().to_string()).unwrap_or_default();
    let addr = |p: &Prepared| {
        [
            p.street_number.as_str(),
            &p.street,
            &p.locality,
            &p.postcode,
            &p.region,
        ]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
    };
    match field {
        GIVEN => pair(&a.given, &b.given),
        MIDDLE => pair(&a.middle, &b.middle),
        FAMILY => pair(&a.family, &b.family),
        DOB => pair(&date(a.dob), &date(b.dob)),
        SEX => pair(&sex(a.sex), &sex(b.sex)),
        COUNTRY => pair(&a.country_of_birth, &b.country_of_birth),
        A_NUMBER => pair(&a.a_number, &b.a_number),
        FBI => pair(&a.fbi_number, &b.fbi_number),
        PASSPORT => pair(
            &format!("{}:{}", a.passport_country, a.passport_number),
            &format!("{}:{}", b.passport_country, b.passport_number),
        ),
        SSN => pair(&a.ssn, &b.ssn),
        FIN => pair(&a.fin, &b.fin),
        STATE_ID => pair(&a.state_id, &b.state_id),
        NATIONAL_ID => pair(&a.national_id, &b.national_id),
        OTHER_ID => pair(&a.other_id, &b.other_id),
        _ => pair(&addr(a), &addr(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use verity_model::{ANumber, Identity, Passport, PersonName};

    fn d(s: &str) -> Option<PartialDate> {
        PartialDate::parse_iso(s).ok()
    }
    fn label(field: usize, v: u8) -> &'static str {
        FIELDS[field].levels[v as usize]
    }

    #[test]
    fn dob_levels() {
        let l = |a: &str, b: &str| label(DOB, dob_level(d(a), d(b)));
        assert_eq!(l("1985-03-12", "1985-03-12"), "exact");
        assert_eq!(l("1985-03-12", "1985-12-03"), "day_month_swap");
        assert_eq!(l("1985-03-12", "1985-03-18"), "one_digit_typo");
        assert_eq!(l("1985-03-12", "1985-03-21"), "one_digit_typo");
        assert_eq!(l("1985-03-12", "1985-03-29"), "year_month");
        assert_eq!(l("1985-03-12", "1991-03-12"), "mismatch");
        assert_eq!(l("1985-03-12", "1987-03-12"), "one_digit_typo");
        assert_eq!(l("1985-03-12", "1984-03-12"), "one_digit_typo");
        assert_eq!(l("1980-03-12", "1979-03-12"), "plus_minus_1_year");
        assert_eq!(l("1985-01-01", "1985-01-01"), "exact_placeholder");
        assert_eq!(l("1985-01-01", "1985-07-19"), "year_only_same_year");
        assert_eq!(l("1985-00-00", "1985-07-19"), "year_only_same_year");
        assert_eq!(l("1985-00-00", "1990-07-19"), "mismatch");
        assert_eq!(dob_level(None, d("1985-03-12")), 0);
    }

    fn prep(f: impl FnOnce(&mut Identity)) -> Prepared {
        let mut i = Identity {
            name: PersonName::new("JOSE", "", "GARCIA"),
            ..Default::default()
        };
        f(&mut i);
        Prepared::from_identity(&i)
    }

    #[test]
    fn identifier_levels() {
        let a = prep(|i| i.ids.a_number = ANumber::parse("012345678").ok());
        let b = prep(|i| i.ids.a_number = ANumber::parse("012345687").ok());
        let c = prep(|i| i.ids.a_number = ANumber::parse("099999999").ok());
        assert_eq!(label(A_NUMBER, compare(&a, &a).0[A_NUMBER]), "exact");
        assert_eq!(label(A_NUMBER, compare(&a, &b).0[A_NUMBER]), "one_typo");
        assert_eq!(label(A_NUMBER, compare(&a, &c).0[A_NUMBER]), "disagree");
        assert_eq!(compare(&a, &prep(|_| {})).0[A_NUMBER], 0);
    }

    #[test]
    fn passport_renewal_is_not_a_disagreement() {
        let a = prep(|i| i.ids.passport = Passport::parse("MX:G1234567").ok());
        let b = prep(|i| i.ids.passport = Passport::parse("MX:H7654321").ok());
        let c = prep(|i| i.ids.passport = Passport::parse("GT:H7654321").ok());
        assert_eq!(
            label(PASSPORT, compare(&a, &b).0[PASSPORT]),
            "same_country_other_number"
        );
        assert!(FIELDS[PASSPORT]
            .neutral
            .contains(&"same_country_other_number"));
        assert_eq!(
            label(PASSPORT, compare(&a, &c).0[PASSPORT]),
            "other_country"
        );
        assert_eq!(label(PASSPORT, compare(&a, &a).0[PASSPORT]), "exact");
    }

    #[test]
    fn swapped_names_get_the_lower_swapped_level() {
        let a = prep(|i| i.name = PersonName::new("WEI", "", "ZHANG"));
        let b = prep(|i| i.name = PersonName::new("ZHANG", "", "WEI"));
        let v = compare(&a, &b).0;
        assert_eq!(label(GIVEN, v[GIVEN]), "swapped");
        assert_eq!(label(FAMILY, v[FAMILY]), "swapped");
    }

    #[test]
    fn address_and_sex_levels() {
        let a = prep(|i| {
            i.address.locality = "Houston".into();
            i.address.region = "TX".into();
            i.sex = Some(verity_model::Sex::Male)
        });
        let b = prep(|i| {
            i.address.locality = "Dallas".into();
            i.address.region = "TX".into();
            i.sex = Some(verity_model::Sex::Female)
        });
        let v = compare(&a, &b).0;
        assert_eq!(label(ADDRESS, v[ADDRESS]), "region_only");
        assert_eq!(label(SEX, v[SEX]), "disagree");
        assert_eq!(
            label(ADDRESS, compare(&a, &a).0[ADDRESS]),
            "locality_or_postcode"
        );
    }

    #[test]
    fn packed_fields_give_the_same_levels() {
        use crate::bench::{generate, BenchConfig};
        use crate::record::Record;
        let w = generate(&BenchConfig {
            identities: 150,
            probes: 60,
            seed: 12,
            hard_negative_share: 0.35,
        });
        let mut records: Vec<Record> = w.gallery.iter().chain(&w.probes).cloned().collect();
        // long values (hashed when packed), one typo apart, equal, or of other lengths
        let long = [
            "AB12345678901234567",
            "AB12345678901234576",
            "AB1234567890123456",
        ];
        for (k, r) in records.iter_mut().enumerate().take(40) {
            r.national_id = Some(long[k % 3].to_string());
            r.other_id = Some(long[k % 2].to_string());
            r.identity.address.street = if k % 2 == 0 {
                "A VERY LONG STREET NAME INDEED".into()
            } else {
                "A VERY LONG STREET NAME INDEEX".into()
            };
        }
        let p: Vec<Prepared> = records.iter().map(Prepared::from_record).collect();
        let c: Vec<CheapFields> = p.iter().map(CheapFields::of).collect();
        for i in 0..p.len() {
            for j in 0..p.len() {
                assert_eq!(
                    vector_without_names(&p[i], &p[j]),
                    vector_without_names_packed(&c[i], &c[j], &p[i], &p[j]),
                    "records {i} and {j}"
                );
            }
        }
        assert_eq!(Packed::new(""), Packed::default());
        assert_ne!(Packed::new(long[0]), Packed::new(long[1]));
        assert_eq!(Packed::new(long[0]), Packed::new(long[0]));
    }

    #[test]
    fn every_field_has_consistent_tables() {
        for f in IDENTIFIER_FIELDS.into_iter().filter(|&f| f != PASSPORT) {
            let l = FIELDS[f].levels;
            assert_eq!(l[1], "exact");
            assert_eq!(l[l.len() - 1], "disagree");
            assert!(l.len() == 3 || l[2] == "one_typo");
        }
        assert_eq!(
            name_level(GIVEN, NameAgreement::Initial, false),
            lvl(GIVEN, "initial")
        );
        assert_eq!(
            name_level(MIDDLE, NameAgreement::Fuzzy, false),
            lvl(MIDDLE, "similar")
        );
        assert_eq!(
            name_level(FAMILY, NameAgreement::Initial, false),
            lvl(FAMILY, "partial")
        );
        assert_eq!(
            name_level(FAMILY, NameAgreement::Disagree, false),
            lvl(FAMILY, "disagree")
        );
        for f in &FIELDS {
            assert_eq!(f.levels.len(), f.initial_m.len(), "{}", f.name);
            assert_eq!(f.levels[0], "null");
        }
    }
}
