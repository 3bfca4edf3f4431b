//! Compact storage of the indexed records that search scores.
//!
//! A [`Prepared`] record costs about a kilobyte on the heap (twenty `String`s and three
//! `Vec<String>`s), which is 10 GB at 10 million records. Search only ever scores the few
//! hundred candidates the index proposes, so each record is kept here as one packed byte run
//! in a shared arena (length-prefixed normalized fields, low-cardinality fields interned) and
//! decoded into a reused `Prepared` when it becomes a candidate: about 100 bytes per record,
//! and decoding allocates nothing once the scratch record has grown.

use std::collections::HashMap;

use verity_model::{PartialDate, Sex};

use crate::record::Prepared;

/// Offset marking a document that holds no record.
const ABSENT: u64 = u64::MAX;

/// Interned values of low-cardinality fields (countries, localities, regions); id 0 is "".
#[derive(Debug, Default)]
struct Interner {
    values: Vec<Box<str>>,
    ids: HashMap<Box<str>, u32, fnv::FnvBuildHasher>,
}

impl Interner {
    fn id(&mut self, value: &str) -> u32 {
        if value.is_empty() {
            return 0;
        }
        if let Some(&id) = self.ids.get(value) {
            return id;
        }
        self.values.push(value.into());
        let id = self.values.len() as u32;
        self.ids.insert(value.into(), id);
        id
    }

    fn value(&self, id: u32) -> Option<&str> {
        match id {
            0 => Some(""),
            _ => self.values.get(id as usize - 1).map(|v| &**v),
        }
    }

    fn bytes(&self) -> usize {
        // each value is held twice (list and map) plus map overhead per entry
        self.values.iter().map(|v| 2 * v.len() + 48).sum()
    }
}

/// Sizes of the record store, for benchmarks and monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Documents holding a record.
    pub records: usize,
    /// Packed field bytes (including bytes of replaced records not yet reclaimed).
    pub arena_bytes: usize,
    /// Bytes of replaced records inside `arena_bytes`.
    pub garbage_bytes: usize,
    /// Offsets, birth dates and sexes (fixed size per document slot).
    pub column_bytes: usize,
    /// Interned values.
    pub interned_bytes: usize,
}

impl StoreStats {
    pub fn total_bytes(&self) -> usize {
        self.arena_bytes + self.column_bytes + self.interned_bytes
    }
}

/// The indexed records in packed form, addressed by document id.
#[derive(Debug, Default)]
pub struct CompactRecords {
    offsets: Vec<u64>,
    dobs: Vec<Option<PartialDate>>,
    sexes: Vec<Option<Sex>>,
    arena: Vec<u8>,
    interned: Interner,
    records: usize,
    garbage: usize,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Reads the packed fields of one record; every read is bounds-checked (None on corruption).
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.bytes.get(self.pos)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    fn str(&mut self) -> Option<&'a str> {
        let len = usize::try_from(self.varint()?).ok()?;
        let end = self.pos.checked_add(len)?;
        let s = std::str::from_utf8(self.bytes.get(self.pos..end)?).ok()?;
        self.pos = end;
        Some(s)
    }
}

fn set(dst: &mut String, src: &str) {
    dst.clear();
    dst.push_str(src);
}

/// Name units into `units` (reusing its strings) and their space-joined form into `joined`.
fn read_units(r: &mut Reader<'_>, units: &mut Vec<String>, joined: &mut String) -> Option<()> {
    let n = usize::try_from(r.varint()?).ok()?;
    units.truncate(n);
    joined.clear();
    for i in 0..n {
        let s = r.str()?;
        match units.get_mut(i) {
            Some(u) => set(u, s),
            None => units.push(s.to_string()),
        }
        if i > 0 {
            joined.push(' ');
        }
        joined.push_str(s);
    }
    Some(())
}

impl CompactRecords {
    pub fn new() -> Self {
        CompactRecords::default()
    }

    /// Stores (or replaces) the record of `doc`. The name's original-script form is not kept:
    /// scoring never reads it.
    pub fn insert(&mut self, doc: u32, p: &Prepared) {
        let slot = doc as usize;
        if self.offsets.len() <= slot {
            self.offsets.resize(slot + 1, ABSENT);
            self.dobs.resize(slot + 1, None);
            self.sexes.resize(slot + 1, None);
        }
        let start = self.arena.len();
        if self.offsets[slot] == ABSENT {
            self.records += 1;
        } else {
            self.garbage += self.encoded_len(slot);
        }
        self.offsets[slot] = start as u64;
        self.dobs[slot] = p.dob;
        self.sexes[slot] = p.sex;
        let out = &mut self.arena;
        for units in [&p.name.given, &p.name.middle, &p.name.family] {
            put_varint(out, units.len() as u64);
            for u in units {
                put_str(out, u);
            }
        }
        for s in Self::plain_fields(p) {
            put_str(out, s);
        }
        for s in [
            &p.country_of_birth,
            &p.passport_country,
            &p.locality,
            &p.region,
        ] {
            let id = self.interned.id(s);
            put_varint(&mut self.arena, u64::from(id));
        }
    }

    /// Fields stored as plain length-prefixed strings, in storage order.
    fn plain_fields(p: &Prepared) -> [&String; 11] {
        [
            &p.a_number,
            &p.fbi_number,
            &p.passport_number,
            &p.ssn,
            &p.fin,
            &p.state_id,
            &p.national_id,
            &p.other_id,
            &p.street_number,
            &p.street,
            &p.postcode,
        ]
    }

    /// Bytes of the packed run of `slot` (walks it; used only when a record is replaced).
    fn encoded_len(&self, slot: usize) -> usize {
        let mut scratch = Prepared::default();
        let start = self.offsets[slot] as usize;
        let mut r = Reader {
            bytes: &self.arena,
            pos: start,
        };
        match self.read_into(&mut r, &mut scratch) {
            Some(()) => r.pos - start,
            None => 0,
        }
    }

    /// Whether `doc` holds a record.
    pub fn contains(&self, doc: u32) -> bool {
        self.offsets.get(doc as usize).is_some_and(|&o| o != ABSENT)
    }

    /// Decodes the record of `doc` into `out`, reusing its allocations. False when `doc`
    /// holds no record (then `out` is unspecified).
    pub fn decode_into(&self, doc: u32, out: &mut Prepared) -> bool {
        let slot = doc as usize;
        let Some(&offset) = self.offsets.get(slot) else {
            return false;
        };
        let Ok(pos) = usize::try_from(offset) else {
            return false; // ABSENT, or beyond this platform's address space
        };
        out.dob = self.dobs.get(slot).copied().flatten();
        out.sex = self.sexes.get(slot).copied().flatten();
        let mut r = Reader {
            bytes: &self.arena,
            pos,
        };
        self.read_into(&mut r, out).is_some()
    }

    /// The record of `doc` as a new `Prepared`.
    pub fn get(&self, doc: u32) -> Option<Prepared> {
        let mut p = Prepared::default();
        self.decode_into(doc, &mut p).then_some(p)
    }

    fn read_into(&self, r: &mut Reader<'_>, out: &mut Prepared) -> Option<()> {
        read_units(r, &mut out.name.given, &mut out.given)?;
        read_units(r, &mut out.name.middle, &mut out.middle)?;
        read_units(r, &mut out.name.family, &mut out.family)?;
        out.name.original.clear();
        for dst in [
            &mut out.a_number,
            &mut out.fbi_number,
            &mut out.passport_number,
            &mut out.ssn,
            &mut out.fin,
            &mut out.state_id,
            &mut out.national_id,
            &mut out.other_id,
            &mut out.street_number,
            &mut out.street,
            &mut out.postcode,
        ] {
            set(dst, r.str()?);
        }
        for dst in [
            &mut out.country_of_birth,
            &mut out.passport_country,
            &mut out.locality,
            &mut out.region,
        ] {
            let id = u32::try_from(r.varint()?).ok()?;
            set(dst, self.interned.value(id)?);
        }
        Some(())
    }

    /// Document slots (highest doc + 1).
    pub fn slots(&self) -> usize {
        self.offsets.len()
    }

    pub fn stats(&self) -> StoreStats {
        StoreStats {
            records: self.records,
            arena_bytes: self.arena.capacity(),
            garbage_bytes: self.garbage,
            column_bytes: self.offsets.capacity() * 8
                + self.dobs.capacity() * std::mem::size_of::<Option<PartialDate>>()
                + self.sexes.capacity() * std::mem::size_of::<Option<Sex>>(),
            interned_bytes: self.interned.bytes(),
        }
    }

    /// Releases spare capacity (after a bulk build).
    pub fn shrink_to_fit(&mut self) {
        self.arena.shrink_to_fit();
        self.offsets.shrink_to_fit();
        self.dobs.shrink_to_fit();
        self.sexes.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{generate, BenchConfig};
    use proptest::prelude::*;
    use verity_model::{Identity, PersonName};

    /// The decoded record must equal the prepared one in every field scoring can read (all
    /// but the original-script name): compared through `Debug`, so a field added to
    /// `Prepared` later and not stored here makes this fail.
    fn assert_round_trip(store: &CompactRecords, doc: u32, p: &Prepared) {
        let mut expected = p.clone();
        expected.name.original.clear();
        let got = store.get(doc).expect("stored");
        assert_eq!(format!("{got:?}"), format!("{expected:?}"));
    }

    #[test]
    fn generated_records_round_trip_through_a_reused_scratch() {
        let world = generate(&BenchConfig {
            identities: 500,
            probes: 0,
            seed: 3,
            hard_negative_share: 0.35,
        });
        let prepared: Vec<Prepared> = world.gallery.iter().map(Prepared::from_record).collect();
        let mut store = CompactRecords::new();
        for (i, p) in prepared.iter().enumerate() {
            store.insert(i as u32, p);
        }
        let mut scratch = Prepared::default();
        // decode in an order that shrinks and grows the scratch's name lists
        for i in (0..prepared.len()).rev().step_by(7) {
            assert!(store.decode_into(i as u32, &mut scratch));
            let mut expected = prepared[i].clone();
            expected.name.original.clear();
            assert_eq!(format!("{scratch:?}"), format!("{expected:?}"));
        }
        for (i, p) in prepared.iter().enumerate() {
            assert_round_trip(&store, i as u32, p);
        }
        assert_eq!(store.stats().records, 500);
        assert!(store.stats().arena_bytes < 500 * 200, "{:?}", store.stats());
    }

    #[test]
    fn absent_docs_and_replacements() {
        let mut store = CompactRecords::new();
        let id = |g: &str, f: &str| {
            Prepared::from_identity(&Identity {
                name: PersonName::new(g, "", f),
                country_of_birth: "Mexico".into(),
                ..Identity::default()
            })
        };
        store.insert(5, &id("Ana", "Lopez"));
        assert!(!store.contains(0) && !store.contains(4) && !store.contains(99));
        assert!(store.get(4).is_none() && store.get(99).is_none());
        let replacement = id("José Luis", "García de la Rosa");
        store.insert(5, &replacement);
        assert_round_trip(&store, 5, &replacement);
        let stats = store.stats();
        assert_eq!(stats.records, 1);
        assert!(stats.garbage_bytes > 0);
    }

    proptest! {
        #[test]
        fn arbitrary_fields_round_trip(
            given in "\\PC{0,12}",
            family in "\\PC{0,30}",
            street in "\\PC{0,200}",
            locality in "[a-zA-Z ]{0,10}",
            number in "[A-Z0-9]{0,300}",
        ) {
            let mut p = Prepared::from_identity(&Identity {
                name: PersonName::new(&given, "", &family),
                ..Identity::default()
            });
            p.street = street;
            p.locality = locality;
            p.other_id = number;
            let mut store = CompactRecords::new();
            store.insert(0, &Prepared::default());
            store.insert(1, &p);
            assert_round_trip(&store, 1, &p);
            assert_round_trip(&store, 0, &Prepared::default());
        }
    }
}
