//! Interned name units and prepared names: the comparison hot path without string work.
//!
//! A [`TokenTable`] gives every distinct name unit a [`TokenId`] and computes once, when the
//! unit is first seen, every form the unit rules of [`compare`](mod@crate::compare) look at:
//! compact spelling, particle-free core, the suffixes left after a merged particle run, the
//! ABD- compound key, and for the core its variant family, nickname neighbours, gendered
//! surname stems, vowel skeleton, Double Metaphone codes and particle-stripped rests. A
//! [`PreparedName`] holds a name's units as ids, and [`compare_levels_prepared`] returns
//! exactly what [`crate::compare_levels`] returns for the same names (a property test and a
//! corpus test check this), while a unit pair costs a few id comparisons, and Jaro-Winkler only
//! when nothing cheaper decides.
//!
//! Unit-pair results are cached per thread in a direct-mapped array keyed by (table, a, b,
//! kind): no lock, no string hashing and no allocation per comparison. A cache slot keeps both
//! ids and the kind, so a collision can only cost a recomputation, never a wrong answer.

use crate::compare::{
    abd_key, best_assignment, compact, core, is_match, level_score, particle_run_prefixes,
    surname_stems, Objective, PartKind, FUZZY_THRESHOLD,
};
use crate::phonetic::{metaphone_codes, vowel_skeleton};
use crate::similarity::jaro_winkler;
use crate::tables::{tables, HashMap};
use crate::{NameAgreement, ParsedName};
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use NameAgreement::*;

/// Id of one interned name unit (a word, or a particle phrase such as "DE LA ROSA") in the
/// [`TokenTable`] that issued it. Ids are dense from 0 and only meaningful with that table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TokenId(u32);

impl TokenId {
    /// The id as a number (for callers that pack ids into their own storage).
    pub fn as_u32(self) -> u32 {
        self.0
    }

    /// An id from a number previously taken with [`TokenId::as_u32`] from the same table.
    pub fn from_u32(raw: u32) -> TokenId {
        TokenId(raw)
    }
}

/// Id of an interned string form (compact spelling, core, canonical, stem, code, ...).
type StrId = u32;
/// "No such form" in id fields.
const NONE: u32 = u32::MAX;

/// Forms of a particle-free core token, used by the token rules.
#[derive(Debug)]
struct CoreForms {
    text: StrId,
    /// Length in bytes (the rules compare byte lengths).
    len: usize,
    /// First byte, for the initial rule (0 when empty).
    first: u8,
    /// Canonical member of the variant family, or NONE.
    canonical: StrId,
    /// The variant family applies to family names only.
    family_only: bool,
    /// Surname stems (the token and its gendered-ending replacements) of 4+ bytes.
    stems: Box<[StrId]>,
    skeleton: StrId,
    /// Double Metaphone primary and alternate codes (NONE when absent).
    codes: [StrId; 2],
    /// Cores of the rests after a leading particle run (ALRASHID -> RASHID), cut at 2..len-3.
    rests: Box<[u32]>,
}

/// Forms of a whole name unit.
#[derive(Debug)]
struct UnitForms {
    compact: StrId,
    /// Index into `TokenTable::cores`.
    core: u32,
    /// Every suffix of the compact spelling that follows a non-empty particle run
    /// (DELAROSA -> ROSA, LAROSA after DE, ...), for the merged-particle family rule.
    merged_suffixes: Box<[StrId]>,
    /// ABD- compound key, or NONE.
    abd: StrId,
}

/// A name's units that did not fit inline in a [`PreparedName`].
#[derive(Debug)]
struct SpilledName {
    units: Box<[TokenId]>,
    lens: [usize; 3],
}

static NEXT_TABLE_UID: AtomicU64 = AtomicU64::new(1);

/// Interned name units with their comparison forms (see module doc).
///
/// Reading (`&TokenTable`) is thread-safe and lock-free; adding units needs `&mut`. For tables
/// shared between threads that keep adding units, use [`SharedTokenTable`].
#[derive(Debug)]
pub struct TokenTable {
    /// Distinguishes tables in the per-thread pair cache; never reused.
    uid: u64,
    strings: Vec<Box<str>>,
    string_ids: HashMap<Box<str>, StrId>,
    /// Per string: index into `nick_lists`, or NONE.
    string_nicknames: Vec<u32>,
    /// Sorted nickname neighbours of a name (one hop, as in the nickname table).
    nick_lists: Vec<Box<[StrId]>>,
    cores: Vec<CoreForms>,
    core_of_string: HashMap<StrId, u32>,
    units: Vec<UnitForms>,
    /// Per unit: its text.
    unit_text: Vec<StrId>,
    unit_of_string: HashMap<StrId, TokenId>,
    spilled: Vec<SpilledName>,
    /// Spilled names by content, so preparing the same long name again reuses its entry.
    spilled_index: HashMap<(Box<[TokenId]>, [usize; 3]), u32>,
}

impl Default for TokenTable {
    fn default() -> Self {
        Self::new()
    }
}

/// What a unit comparison decided; each outcome has one level and one reason, as in
/// [`crate::unit_agreement`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Outcome {
    Same = 1,
    JoinedSplit,
    Particle,
    AbdCompound,
    ParticleAndVariant,
    Empty,
    InitialSame,
    InitialDiffers,
    Variant,
    Nickname,
    GenderedEnding,
    SoundsAlike,
    PrefixName,
    CloseSpelling,
    Different,
}

impl Outcome {
    const ALL: [Outcome; 15] = [
        Outcome::Same,
        Outcome::JoinedSplit,
        Outcome::Particle,
        Outcome::AbdCompound,
        Outcome::ParticleAndVariant,
        Outcome::Empty,
        Outcome::InitialSame,
        Outcome::InitialDiffers,
        Outcome::Variant,
        Outcome::Nickname,
        Outcome::GenderedEnding,
        Outcome::SoundsAlike,
        Outcome::PrefixName,
        Outcome::CloseSpelling,
        Outcome::Different,
    ];

    fn from_code(code: u8) -> Outcome {
        Outcome::ALL
            .get(usize::from(code).wrapping_sub(1))
            .copied()
            .unwrap_or(Outcome::Different)
    }

    fn level(self) -> NameAgreement {
        self.result().0
    }

    fn result(self) -> (NameAgreement, &'static str) {
        match self {
            Outcome::Same => (Exact, "same"),
            Outcome::JoinedSplit => (Equivalent, "joined/split spelling"),
            Outcome::Particle => (Equivalent, "particle"),
            Outcome::AbdCompound => (Equivalent, "abd- compound"),
            Outcome::ParticleAndVariant => (Equivalent, "particle and variant"),
            Outcome::Empty => (Missing, "empty"),
            Outcome::InitialSame => (Initial, "initial"),
            Outcome::InitialDiffers => (Disagree, "initial differs"),
            Outcome::Variant => (Equivalent, "variant"),
            Outcome::Nickname => (Equivalent, "nickname"),
            Outcome::GenderedEnding => (Equivalent, "gendered/transliterated ending"),
            Outcome::SoundsAlike => (Phonetic, "sounds alike"),
            Outcome::PrefixName => (Disagree, "different name (prefix)"),
            Outcome::CloseSpelling => (Fuzzy, "close spelling"),
            Outcome::Different => (Disagree, "different"),
        }
    }
}

impl TokenTable {
    /// An empty table holding the nickname graph of the embedded name tables.
    pub fn new() -> TokenTable {
        let mut t = TokenTable {
            uid: NEXT_TABLE_UID.fetch_add(1, Ordering::Relaxed),
            strings: Vec::new(),
            string_ids: HashMap::default(),
            string_nicknames: Vec::new(),
            nick_lists: Vec::new(),
            cores: Vec::new(),
            core_of_string: HashMap::default(),
            units: Vec::new(),
            unit_text: Vec::new(),
            unit_of_string: HashMap::default(),
            spilled: Vec::new(),
            spilled_index: HashMap::default(),
        };
        // Sorted by name so ids do not depend on hash-map iteration order.
        let mut names: Vec<(&String, _)> = tables().nicknames.iter().collect();
        names.sort_by(|x, y| x.0.cmp(y.0));
        for (name, others) in names {
            let id = t.intern_str(name);
            let mut list: Vec<StrId> = others.iter().map(|o| t.intern_str(o)).collect();
            list.sort_unstable();
            list.dedup();
            if let Some(slot) = t.string_nicknames.get_mut(id as usize) {
                *slot = t.nick_lists.len() as u32;
            }
            t.nick_lists.push(list.into_boxed_slice());
        }
        t
    }

    /// Number of distinct units interned.
    pub fn len(&self) -> usize {
        self.units.len()
    }

    /// True when no unit has been interned.
    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    fn intern_str(&mut self, s: &str) -> StrId {
        if let Some(&id) = self.string_ids.get(s) {
            return id;
        }
        let id = self.strings.len() as StrId;
        self.strings.push(s.into());
        self.string_ids.insert(s.into(), id);
        self.string_nicknames.push(NONE);
        id
    }

    fn str_of(&self, id: StrId) -> &str {
        self.strings.get(id as usize).map_or("", |s| s)
    }

    fn nick_list(&self, id: StrId) -> &[StrId] {
        self.string_nicknames
            .get(id as usize)
            .and_then(|&i| self.nick_lists.get(i as usize))
            .map_or(&[], |l| l)
    }

    /// Index of the core forms of `token`, computing them (and its rests') on first sight.
    fn core_index(&mut self, token: &str) -> u32 {
        let text = self.intern_str(token);
        if let Some(&i) = self.core_of_string.get(&text) {
            return i;
        }
        // Rests are strictly shorter than the token, so this recursion ends.
        let mut rests = Vec::new();
        let runs = particle_run_prefixes(token);
        for cut in 2..token.len().saturating_sub(3) {
            let (Some(_), Some(rest)) = (token.get(..cut), token.get(cut..)) else {
                continue;
            };
            if runs.get(cut).copied().unwrap_or(false) {
                rests.push(self.core_index(rest));
            }
        }
        let (canonical, family_only) = match tables().variants.get(token) {
            Some(v) => (self.intern_str(&v.canonical), v.family_only),
            None => (NONE, false),
        };
        let stems: Vec<StrId> = surname_stems(token)
            .iter()
            .filter(|s| s.len() >= 4)
            .map(|s| self.intern_str(s))
            .collect();
        let skeleton = self.intern_str(&vowel_skeleton(token));
        let mut codes = [NONE; 2];
        for (slot, code) in codes.iter_mut().zip(metaphone_codes(token)) {
            *slot = self.intern_str(&code);
        }
        let index = self.cores.len() as u32;
        self.cores.push(CoreForms {
            text,
            len: token.len(),
            first: token.as_bytes().first().copied().unwrap_or(0),
            canonical,
            family_only,
            stems: stems.into_boxed_slice(),
            skeleton,
            codes,
            rests: rests.into_boxed_slice(),
        });
        self.core_of_string.insert(text, index);
        index
    }

    /// The id of a name unit (as found in [`ParsedName`] parts), interning it and computing its
    /// forms on first sight.
    pub fn intern(&mut self, unit: &str) -> TokenId {
        let text = self.intern_str(unit);
        if let Some(&id) = self.unit_of_string.get(&text) {
            return id;
        }
        let compact_form = compact(unit);
        let compact_id = self.intern_str(&compact_form);
        let core_form = core(unit);
        let core_index = self.core_index(&core_form);
        let mut merged_suffixes = Vec::new();
        let runs = particle_run_prefixes(&compact_form);
        for cut in 1..=compact_form.len() {
            let (Some(_), Some(rest)) = (compact_form.get(..cut), compact_form.get(cut..)) else {
                continue;
            };
            if runs.get(cut).copied().unwrap_or(false) {
                merged_suffixes.push(self.intern_str(rest));
            }
        }
        let abd = match abd_key(&compact_form) {
            Some(key) => self.intern_str(&key),
            None => NONE,
        };
        let id = TokenId(self.units.len() as u32);
        self.units.push(UnitForms {
            compact: compact_id,
            core: core_index,
            merged_suffixes: merged_suffixes.into_boxed_slice(),
            abd,
        });
        self.unit_text.push(text);
        self.unit_of_string.insert(text, id);
        id
    }

    /// The id of a unit already interned, without adding it.
    pub fn lookup(&self, unit: &str) -> Option<TokenId> {
        let text = self.string_ids.get(unit)?;
        self.unit_of_string.get(text).copied()
    }

    /// The text of a unit ("" for an id this table did not issue).
    pub fn unit_str(&self, id: TokenId) -> &str {
        self.unit_text
            .get(id.0 as usize)
            .map_or("", |&s| self.str_of(s))
    }

    /// A prepared name, interning any unit not seen before.
    pub fn prepare(&mut self, name: &ParsedName) -> PreparedName {
        let given: Vec<TokenId> = name.given.iter().map(|u| self.intern(u)).collect();
        let middle: Vec<TokenId> = name.middle.iter().map(|u| self.intern(u)).collect();
        let family: Vec<TokenId> = name.family.iter().map(|u| self.intern(u)).collect();
        self.prepare_ids(&given, &middle, &family)
    }

    /// A prepared name when every unit is already interned (and a long name was prepared
    /// before), so no mutation is needed; else `None`.
    pub fn try_prepare(&self, name: &ParsedName) -> Option<PreparedName> {
        let total = name.given.len() + name.middle.len() + name.family.len();
        if total > INLINE_UNITS {
            let all = name.given.iter().chain(&name.middle).chain(&name.family);
            let ids: Option<Vec<TokenId>> = all.map(|u| self.lookup(u)).collect();
            let key = (
                ids?.into_boxed_slice(),
                [name.given.len(), name.middle.len(), name.family.len()],
            );
            let index = *self.spilled_index.get(&key)?;
            return Some(PreparedName::spilled(index));
        }
        let mut units = [TokenId(0); INLINE_UNITS];
        let all = name.given.iter().chain(&name.middle).chain(&name.family);
        for (slot, unit) in units.iter_mut().zip(all) {
            *slot = self.lookup(unit)?;
        }
        Some(PreparedName {
            units,
            lens: [
                name.given.len() as u8,
                name.middle.len() as u8,
                name.family.len() as u8,
            ],
            spilled: false,
        })
    }

    /// A prepared name from unit ids this table issued (given, middle, family).
    pub fn prepare_ids(
        &mut self,
        given: &[TokenId],
        middle: &[TokenId],
        family: &[TokenId],
    ) -> PreparedName {
        let total = given.len() + middle.len() + family.len();
        if total <= INLINE_UNITS {
            let mut units = [TokenId(0); INLINE_UNITS];
            for (slot, id) in units
                .iter_mut()
                .zip(given.iter().chain(middle).chain(family))
            {
                *slot = *id;
            }
            return PreparedName {
                units,
                lens: [given.len() as u8, middle.len() as u8, family.len() as u8],
                spilled: false,
            };
        }
        let units: Vec<TokenId> = given.iter().chain(middle).chain(family).copied().collect();
        let key = (
            units.into_boxed_slice(),
            [given.len(), middle.len(), family.len()],
        );
        if let Some(&index) = self.spilled_index.get(&key) {
            return PreparedName::spilled(index);
        }
        let index = self.spilled.len() as u32;
        self.spilled.push(SpilledName {
            units: key.0.clone(),
            lens: key.1,
        });
        self.spilled_index.insert(key, index);
        PreparedName::spilled(index)
    }

    /// Agreement of two interned units, with its reason: exactly
    /// [`crate::unit_agreement`] of their texts (computed from the stored forms, not cached).
    pub fn unit_agreement(
        &self,
        a: TokenId,
        b: TokenId,
        kind: PartKind,
    ) -> (NameAgreement, &'static str) {
        self.unit_outcome(a, b, kind).result()
    }

    fn unit_outcome(&self, a: TokenId, b: TokenId, kind: PartKind) -> Outcome {
        if a == b {
            return Outcome::Same;
        }
        let (Some(ua), Some(ub)) = (self.units.get(a.0 as usize), self.units.get(b.0 as usize))
        else {
            return Outcome::Different;
        };
        if ua.compact == ub.compact {
            return Outcome::JoinedSplit;
        }
        let (Some(ka), Some(kb)) = (
            self.cores.get(ua.core as usize),
            self.cores.get(ub.core as usize),
        ) else {
            return Outcome::Different;
        };
        if ka.text == kb.text {
            return Outcome::Particle;
        }
        let family = kind == PartKind::Family;
        if family
            && (ua.merged_suffixes.contains(&kb.text) || ub.merged_suffixes.contains(&ka.text))
        {
            return Outcome::Particle;
        }
        if ua.abd != NONE && ua.abd == ub.abd {
            return Outcome::AbdCompound;
        }
        let direct = self.token_outcome(ka, kb, kind);
        if family && direct.level() > Equivalent {
            for (whole, other) in [(ka, kb), (kb, ka)] {
                for &rest in whole.rests.iter() {
                    let Some(rest) = self.cores.get(rest as usize) else {
                        continue;
                    };
                    if self.token_outcome(rest, other, kind).level() <= Equivalent {
                        return Outcome::ParticleAndVariant;
                    }
                }
            }
        }
        direct
    }

    /// [`crate::token_agreement`] on stored forms.
    fn token_outcome(&self, a: &CoreForms, b: &CoreForms, kind: PartKind) -> Outcome {
        if a.text == b.text {
            return Outcome::Same;
        }
        if a.len == 0 || b.len == 0 {
            return Outcome::Empty;
        }
        if a.len == 1 || b.len == 1 {
            return if a.first == b.first {
                Outcome::InitialSame
            } else {
                Outcome::InitialDiffers
            };
        }
        let variants_allowed = matches!(kind, PartKind::Family | PartKind::Crossed);
        let variant = |c: &CoreForms| {
            if c.canonical != NONE && (!c.family_only || variants_allowed) {
                c.canonical
            } else {
                NONE
            }
        };
        let (va, vb) = (variant(a), variant(b));
        if va != NONE && va == vb {
            return Outcome::Variant;
        }
        // One hop only: a direct edge between the names or their canonical spellings.
        let ca = if va == NONE { a.text } else { va };
        let cb = if vb == NONE { b.text } else { vb };
        let edge = |x: StrId, y: StrId| self.nick_list(x).binary_search(&y).is_ok();
        if edge(a.text, b.text) || edge(ca, b.text) || edge(a.text, cb) || edge(ca, cb) {
            return Outcome::Nickname;
        }
        if kind == PartKind::Family && a.stems.iter().any(|s| b.stems.contains(s)) {
            return Outcome::GenderedEnding;
        }
        if a.len >= 3 && b.len >= 3 && a.skeleton == b.skeleton {
            let shared = a.codes.iter().any(|&x| x != NONE && b.codes.contains(&x));
            if shared {
                return Outcome::SoundsAlike;
            }
        }
        let (sa, sb) = (self.str_of(a.text), self.str_of(b.text));
        let (short, long) = if sa.len() <= sb.len() {
            (sa, sb)
        } else {
            (sb, sa)
        };
        if long.len() >= short.len() + 2 && short.len() < 8 && long.starts_with(short) {
            return Outcome::PrefixName;
        }
        if a.len >= 4 && b.len >= 4 && jaro_winkler(sa, sb) >= FUZZY_THRESHOLD {
            return Outcome::CloseSpelling;
        }
        Outcome::Different
    }

    /// Compact spelling of a unit (its letters without spaces).
    fn compact_of(&self, id: TokenId) -> &str {
        self.units
            .get(id.0 as usize)
            .map_or("", |u| self.str_of(u.compact))
    }
}

/// Units stored inline in a [`PreparedName`]; longer names spill into the table.
const INLINE_UNITS: usize = 7;

/// A parsed name as interned unit ids (given, middle, family), 32 bytes and `Copy`. Only
/// meaningful with the [`TokenTable`] that prepared it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PreparedName {
    units: [TokenId; INLINE_UNITS],
    lens: [u8; 3],
    /// Units live in the table's spill list at index `units[0]`.
    spilled: bool,
}

impl PreparedName {
    fn spilled(index: u32) -> PreparedName {
        let mut units = [TokenId(0); INLINE_UNITS];
        units[0] = TokenId(index);
        PreparedName {
            units,
            lens: [0; 3],
            spilled: true,
        }
    }

    /// The (given, middle, family) unit ids.
    pub fn parts<'a>(&'a self, table: &'a TokenTable) -> [&'a [TokenId]; 3] {
        if self.spilled {
            let Some(s) = table.spilled.get(self.units[0].0 as usize) else {
                return [&[], &[], &[]];
            };
            let (g, rest) = s.units.split_at(s.lens[0].min(s.units.len()));
            let (m, f) = rest.split_at(s.lens[1].min(rest.len()));
            return [g, m, f];
        }
        let [g, m, f] = self.lens.map(usize::from);
        let (given, rest) = self.units.split_at(g.min(INLINE_UNITS));
        let (middle, rest) = rest.split_at(m.min(rest.len()));
        let family = rest.get(..f).unwrap_or(rest);
        [given, middle, family]
    }
}

/// A [`TokenTable`] shared between threads that may add units: reads take a read lock once
/// (hold the guard across many comparisons), preparing a name with unseen units takes the
/// write lock briefly.
#[derive(Debug, Default)]
pub struct SharedTokenTable {
    table: RwLock<TokenTable>,
}

impl SharedTokenTable {
    pub fn new() -> SharedTokenTable {
        SharedTokenTable::default()
    }

    /// Wraps an existing table.
    pub fn from_table(table: TokenTable) -> SharedTokenTable {
        SharedTokenTable {
            table: RwLock::new(table),
        }
    }

    /// Read access for comparisons (a panic elsewhere while writing cannot leave the table
    /// half-updated in a way reads depend on: units are pushed complete, so a poisoned lock
    /// is still read).
    pub fn read(&self) -> RwLockReadGuard<'_, TokenTable> {
        self.table.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Write access (bulk interning).
    pub fn write(&self) -> RwLockWriteGuard<'_, TokenTable> {
        self.table.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Prepares a name, taking the write lock only when it has unseen units.
    pub fn prepare(&self, name: &ParsedName) -> PreparedName {
        if let Some(p) = self.read().try_prepare(name) {
            return p;
        }
        self.write().prepare(name)
    }
}

/// Levels of two prepared names: exactly [`crate::compare_levels`] of the names they were
/// prepared from (given, middle, family, swapped). Both must come from `table`.
pub fn compare_levels_prepared(
    a: &PreparedName,
    b: &PreparedName,
    table: &TokenTable,
) -> NameLevels {
    compare_levels_parts(a.parts(table), b.parts(table), table)
}

/// [`compare_levels_prepared`] on unit-id slices (given, middle, family), for callers that
/// keep ids in their own storage.
pub fn compare_levels_parts(
    a: [&[TokenId]; 3],
    b: [&[TokenId]; 3],
    table: &TokenTable,
) -> NameLevels {
    with_cache(table, a, b)
}

/// Given, middle, family levels and whether given and family were swapped (the result of
/// [`crate::compare_levels`]).
pub type NameLevels = (NameAgreement, NameAgreement, NameAgreement, bool);

/// `compare_levels` of `compare.rs` on ids.
fn name_levels(a: [&[TokenId]; 3], b: [&[TokenId]; 3], cx: &mut Cx<'_>) -> NameLevels {
    let surname_move = |x: &[&[TokenId]; 3], y: &[&[TokenId]; 3]| {
        !x[1].is_empty() && y[1].is_empty() && y[2].len() == x[1].len() + x[2].len()
    };
    let (na, nb) = (a[0].len(), b[0].len());
    let forename_move = na != nb && na + a[1].len() == nb + b[1].len() && na.min(nb) != 0;
    if surname_move(&a, &b) || surname_move(&b, &a) || forename_move {
        return rebalanced_levels(a, b, cx);
    }
    levels(a, b, cx)
}

/// The straight path of `compare_levels` (no boundary rebalancing).
fn levels(a: [&[TokenId]; 3], b: [&[TokenId]; 3], cx: &mut Cx<'_>) -> NameLevels {
    let given = part_level(a[0], b[0], PartKind::Given, cx);
    let middle = part_level(a[1], b[1], PartKind::Middle, cx);
    let family = part_level(a[2], b[2], PartKind::Family, cx);
    let all_present = [a[0], a[2], b[0], b[2]].iter().all(|p| !p.is_empty());
    if all_present && (given > Fuzzy || family > Fuzzy) {
        let ab = part_level(a[0], b[2], PartKind::Crossed, cx);
        let ba = part_level(a[2], b[0], PartKind::Crossed, cx);
        let worst = ab.max(ba).max(Equivalent);
        let straight = level_score(given) + level_score(family);
        if is_match(ab) && is_match(ba) && 2.0 * level_score(worst) > straight {
            return (worst, middle, worst, true);
        }
    }
    (given, middle, family, false)
}

/// `compare_impl`'s boundary rebalancing on ids, then the straight path (rare).
fn rebalanced_levels(a: [&[TokenId]; 3], b: [&[TokenId]; 3], cx: &mut Cx<'_>) -> NameLevels {
    let mut x: [Vec<TokenId>; 3] = a.map(<[TokenId]>::to_vec);
    let mut y: [Vec<TokenId>; 3] = b.map(<[TokenId]>::to_vec);
    if !move_middle_into_family(&mut x, &y, cx) {
        move_middle_into_family(&mut y, &x, cx);
    }
    let (na, nb) = (x[0].len(), y[0].len());
    if !(na == nb || na + x[1].len() != nb + y[1].len() || na.min(nb) == 0) {
        let (long, keep) = if na > nb { (&mut x, nb) } else { (&mut y, na) };
        let moved = long[0].split_off(keep);
        long[1].splice(0..0, moved);
    }
    levels(
        [x[0].as_slice(), x[1].as_slice(), x[2].as_slice()],
        [y[0].as_slice(), y[1].as_slice(), y[2].as_slice()],
        cx,
    )
}

fn move_middle_into_family(
    x: &mut [Vec<TokenId>; 3],
    y: &[Vec<TokenId>; 3],
    cx: &mut Cx<'_>,
) -> bool {
    if x[1].is_empty() || !y[1].is_empty() || y[2].len() != x[1].len() + x[2].len() {
        return false;
    }
    let merged: Vec<TokenId> = x[1].iter().chain(&x[2]).copied().collect();
    if part_level(&merged, &y[2], PartKind::Family, cx) > Fuzzy {
        return false;
    }
    x[2] = merged;
    x[1].clear();
    true
}

/// Largest part (in units) whose assignment runs on the stack.
const SMALL_PART: usize = 8;

/// `part_level` of `compare.rs` on ids.
fn part_level(xs: &[TokenId], ys: &[TokenId], kind: PartKind, cx: &mut Cx<'_>) -> NameAgreement {
    if xs.is_empty() || ys.is_empty() {
        return Missing;
    }
    if xs == ys {
        return Exact;
    }
    if let ([x], [y]) = (xs, ys) {
        return cx.unit(*x, *y, kind).level();
    }
    if same_letters(xs, ys, cx.table) {
        return Equivalent;
    }
    let (matched, ordered, worst) = if xs.len() <= SMALL_PART && ys.len() <= SMALL_PART {
        let mut m = [[Disagree; SMALL_PART]; SMALL_PART];
        for (row, &x) in m.iter_mut().zip(xs) {
            for (cell, &y) in row.iter_mut().zip(ys) {
                *cell = cx.unit(x, y, kind).level();
            }
        }
        small_assignment(&m, xs.len(), ys.len())
    } else {
        let mut matrix: Vec<Vec<(NameAgreement, &'static str)>> = Vec::with_capacity(xs.len());
        for &x in xs {
            let mut row = Vec::with_capacity(ys.len());
            for &y in ys {
                row.push(cx.unit(x, y, kind).result());
            }
            matrix.push(row);
        }
        let a = best_assignment(&matrix, xs.len(), ys.len());
        (a.objective.matched, a.objective.ordered, a.worst)
    };
    if matched == 0 {
        Disagree
    } else if matched == xs.len() && matched == ys.len() && ordered {
        worst
    } else {
        Partial
    }
}

/// True when both parts spell the same letters once spaces are removed.
fn same_letters(xs: &[TokenId], ys: &[TokenId], table: &TokenTable) -> bool {
    let len =
        |units: &[TokenId]| -> usize { units.iter().map(|&u| table.compact_of(u).len()).sum() };
    if len(xs) != len(ys) {
        return false;
    }
    let x = xs.iter().flat_map(|&u| table.compact_of(u).bytes());
    let y = ys.iter().flat_map(|&u| table.compact_of(u).bytes());
    x.eq(y)
}

/// The search of `best_assignment` (same order, objective and budget) on a stack matrix of
/// levels; returns (matched, ordered, worst) of the best assignment.
fn small_assignment(
    m: &[[NameAgreement; SMALL_PART]; SMALL_PART],
    rows: usize,
    cols: usize,
) -> (usize, bool, NameAgreement) {
    struct Search<'m> {
        m: &'m [[NameAgreement; SMALL_PART]; SMALL_PART],
        rows: usize,
        cols: usize,
        used: u32,
        cur_cols: [usize; SMALL_PART],
        cur_levels: [NameAgreement; SMALL_PART],
        n: usize,
        best: Objective,
        best_worst: NameAgreement,
        budget: u32,
    }
    impl Search<'_> {
        fn go(&mut self, row: usize) {
            if self.budget == 0 {
                return;
            }
            self.budget -= 1;
            if row == self.rows {
                let levels = &self.cur_levels[..self.n];
                let worst = levels.iter().copied().max().unwrap_or(Disagree);
                let ordered = self.cur_cols[..self.n].windows(2).all(|w| w[0] < w[1]);
                let objective = Objective {
                    matched: self.n,
                    score: levels.iter().map(|&l| level_score(l)).sum(),
                    worst_rank: -(worst as i32),
                    ordered,
                };
                if objective > self.best {
                    self.best = objective;
                    self.best_worst = worst;
                }
                return;
            }
            self.go(row + 1);
            for col in 0..self.cols {
                let level = self.m[row][col];
                if self.used & (1 << col) == 0 && is_match(level) {
                    self.used |= 1 << col;
                    self.cur_cols[self.n] = col;
                    self.cur_levels[self.n] = level;
                    self.n += 1;
                    self.go(row + 1);
                    self.n -= 1;
                    self.used &= !(1 << col);
                }
            }
        }
    }
    let mut s = Search {
        m,
        rows,
        cols,
        used: 0,
        cur_cols: [0; SMALL_PART],
        cur_levels: [Disagree; SMALL_PART],
        n: 0,
        best: Objective::default(),
        best_worst: Disagree,
        budget: 20_000,
    };
    s.go(0);
    (s.best.matched, s.best.ordered, s.best_worst)
}

/// Slots in the per-thread unit-pair cache (12 bytes each: 768 KiB per thread).
const CACHE_BITS: u32 = 16;

#[derive(Clone, Copy, Default)]
struct Slot {
    a: u32,
    b: u32,
    /// 0 = empty; else (kind + 1) << 8 | outcome code.
    tag: u32,
}

struct PairCache {
    table_uid: u64,
    slots: Box<[Slot]>,
}

thread_local! {
    static PAIR_CACHE: RefCell<PairCache> = RefCell::new(PairCache {
        table_uid: 0,
        slots: Box::default(),
    });
}

/// One comparison's view of the table and this thread's pair cache.
struct Cx<'a> {
    table: &'a TokenTable,
    slots: Option<&'a mut [Slot]>,
}

fn kind_code(kind: PartKind) -> u32 {
    match kind {
        PartKind::Given => 1,
        PartKind::Middle => 2,
        PartKind::Family => 3,
        PartKind::Crossed => 4,
    }
}

impl Cx<'_> {
    #[inline]
    fn unit(&mut self, a: TokenId, b: TokenId, kind: PartKind) -> Outcome {
        if a == b {
            return Outcome::Same;
        }
        let Some(slots) = self.slots.as_deref_mut() else {
            return self.table.unit_outcome(a, b, kind);
        };
        let k = kind_code(kind);
        let key = ((u64::from(a.0) << 32) | u64::from(b.0)) ^ (u64::from(k) << 61);
        let index = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - CACHE_BITS)) as usize;
        let Some(slot) = slots.get_mut(index) else {
            return self.table.unit_outcome(a, b, kind);
        };
        if slot.a == a.0 && slot.b == b.0 && slot.tag >> 8 == k {
            return Outcome::from_code(slot.tag as u8);
        }
        let outcome = self.table.unit_outcome(a, b, kind);
        *slot = Slot {
            a: a.0,
            b: b.0,
            tag: (k << 8) | outcome as u32,
        };
        outcome
    }
}

/// Runs the comparison with this thread's pair cache for `table` (cleared when the table
/// changes), or without a cache when it is unavailable (thread shutting down, re-entered).
fn with_cache(table: &TokenTable, a: [&[TokenId]; 3], b: [&[TokenId]; 3]) -> NameLevels {
    let cached = PAIR_CACHE.try_with(|cell| {
        let mut cache = cell.try_borrow_mut().ok()?;
        if cache.slots.is_empty() {
            cache.slots = vec![Slot::default(); 1 << CACHE_BITS].into_boxed_slice();
        } else if cache.table_uid != table.uid {
            cache.slots.fill(Slot::default());
        }
        cache.table_uid = table.uid;
        let mut cx = Cx {
            table,
            slots: Some(&mut cache.slots[..]),
        };
        Some(name_levels(a, b, &mut cx))
    });
    match cached {
        Ok(Some(levels)) => levels,
        _ => name_levels(a, b, &mut Cx { table, slots: None }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{compare_levels, parse, unit_agreement};
    use verity_model::PersonName;

    fn p(g: &str, m: &str, f: &str) -> ParsedName {
        parse(&PersonName::new(g, m, f))
    }

    #[test]
    fn interning_is_stable_and_lookup_does_not_add() {
        let mut t = TokenTable::new();
        let a = t.intern("GARCIA");
        assert_eq!(t.intern("GARCIA"), a);
        assert_eq!(t.lookup("GARCIA"), Some(a));
        assert_eq!(t.lookup("LOPEZ"), None);
        assert_eq!(t.unit_str(a), "GARCIA");
        assert_eq!(t.unit_str(TokenId::from_u32(999)), "");
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn unit_agreement_matches_strings() {
        let mut t = TokenTable::new();
        let pairs = [
            ("JOSE", "PEPE"),
            ("BETO", "ROBERTO"),
            ("ROBERTO", "ALBERTO"),
            ("MUHAMMAD", "MOHAMMED"),
            ("DE LA ROSA", "DELAROSA"),
            ("DE LA ROSA", "ROSA"),
            ("AL RASHID", "RASHED"),
            ("ALRASHID", "RASHED"),
            ("ABDUL RAHMAN", "ABDURRAHMAN"),
            ("PETROVA", "PETROV"),
            ("STEPHEN", "STEVEN"),
            ("JOSE", "JOSEFINA"),
            ("HERNANDEZ", "FERNANDEZ"),
            ("KIM", "GIM"),
            ("J", "JOSE"),
            ("", "JOSE"),
        ];
        for (x, y) in pairs {
            let (ix, iy) = (t.intern(x), t.intern(y));
            for kind in [
                PartKind::Given,
                PartKind::Middle,
                PartKind::Family,
                PartKind::Crossed,
            ] {
                assert_eq!(
                    t.unit_agreement(ix, iy, kind),
                    unit_agreement(x, y, kind),
                    "{x} / {y} {kind:?}"
                );
                assert_eq!(
                    t.unit_agreement(iy, ix, kind),
                    unit_agreement(y, x, kind),
                    "{y} / {x} {kind:?}"
                );
            }
        }
    }

    #[test]
    fn prepared_levels_match_compare_levels() {
        let names = [
            p("Jose", "", "Garcia Lopez"),
            p("Pepe", "", "Garcia"),
            p("Garcia", "", "Jose"),
            p("Maria Jose", "", "de la Rosa"),
            p("Maria", "Jose", "Delarosa"),
            p("Jose", "Garcia", "Lopez"),
            p("Anna", "", "Petrova"),
            p("Anna", "", "Petrov"),
            p("Wei", "", "Zhang"),
            p("", "", "Zhang Wei"),
            p("A B C D", "E F G", "H I J"),
        ];
        let mut t = TokenTable::new();
        let prepared: Vec<PreparedName> = names.iter().map(|n| t.prepare(n)).collect();
        for (i, a) in names.iter().enumerate() {
            for (j, b) in names.iter().enumerate() {
                assert_eq!(
                    compare_levels_prepared(&prepared[i], &prepared[j], &t),
                    compare_levels(a, b),
                    "{a:?} / {b:?}"
                );
            }
        }
    }

    #[test]
    fn long_names_spill_and_round_trip() {
        let mut t = TokenTable::new();
        let long = p("A B C D E", "F G", "H I");
        let prepared = t.prepare(&long);
        let [g, m, f] = prepared.parts(&t);
        let text = |ids: &[TokenId]| {
            ids.iter()
                .map(|&i| t.unit_str(i).to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            (text(g), text(m), text(f)),
            (long.given.clone(), long.middle.clone(), long.family.clone())
        );
        assert_eq!(t.try_prepare(&long), Some(prepared));
        assert_eq!(t.prepare(&long), prepared);
        assert!(t.try_prepare(&p("A B C D E", "F G", "H X")).is_none());
        let short = p("Ana", "", "Rosa");
        let sp = t.prepare(&short);
        assert_eq!(t.try_prepare(&short), Some(sp));
        assert_eq!(std::mem::size_of::<PreparedName>(), 32);
    }

    #[test]
    fn shared_table_prepares_from_many_threads() {
        let shared = SharedTokenTable::new();
        let names = [p("Jose", "", "Garcia"), p("Pepe", "", "Garcia")];
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for n in &names {
                        shared.prepare(n);
                    }
                });
            }
        });
        let a = shared.prepare(&names[0]);
        let b = shared.prepare(&names[1]);
        let t = shared.read();
        assert_eq!(
            compare_levels_prepared(&a, &b, &t),
            compare_levels(&names[0], &names[1])
        );
        assert_eq!(t.len(), 3);
    }
}
