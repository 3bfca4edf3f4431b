//! The 1:N gallery: compact storage of enrolled ten-prints, an inverted index used as a
//! pre-filter, and the search that runs the full matcher on a shortlist only.
//!
//! Index keys are quantised local edges (length, and both ends' angles relative to the edge),
//! from each minutia to its [`INDEX_NEIGHBOURS`] nearest neighbours: invariant to rotation and
//! translation, and local enough to survive distortion and partial contact. Each finger
//! position has its own key space; a posting list holds the subjects (ascending, delta-coded as
//! LEB128 varints, about one byte per posting). A probe expands each of its keys to the adjacent
//! cells when a value sits near a cell boundary, counts, per finger, the distinct keys each
//! subject shares, normalises by the subject's key count, and sums over fingers. Only the best
//! `shortlist` subjects are then compared finger by finger and fused.
//!
//! Cost per search: the posting lists of a few hundred keys per finger (grows linearly with the
//! gallery, but at ~1 ns per posting) plus a constant number of full comparisons.

use crate::calibration::{open_set_posteriors, Calibration};
use crate::matcher::Matcher;
use crate::template::{nearest_edges, Edge, Minutia, MinutiaType, Template, MAX_MINUTIAE};
use std::io::Write;

/// Neighbours per minutia whose edges become index keys.
pub const INDEX_NEIGHBOURS: usize = 4;
/// Finger slots: 0 = position unknown, 1..=10 = ISO/ANSI finger positions.
pub const SLOTS: usize = 11;
const LEN_BIN: u16 = 12;
const LEN_BINS: u16 = 16;
const ANGLE_BIN_SHIFT: u32 = 4;
const ANGLE_BINS: u16 = 16;
const KEYS: usize = (LEN_BINS * ANGLE_BINS * ANGLE_BINS) as usize;
/// Within this fraction of a bin from its edge, a probe value also tries the adjacent bin.
const EXPAND_MARGIN: f32 = 0.3;
const MAGIC: &[u8; 8] = b"VRTYBIX1";
/// Average per-finger LLR below which a shortlisted subject is dropped after three fingers.
const ABANDON_PER_FINGER: f64 = -2.0;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("gallery index byte {offset}: {problem}")]
    Corrupt { offset: usize, problem: String },
    #[error("gallery index has {0} subjects; at most 2^32 - 2 fit")]
    TooMany(usize),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// One subject's prints: (finger position 0..=10, minutiae) per finger view.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SubjectPrints {
    pub fingers: Vec<(u8, Vec<Minutia>)>,
}

fn slot_of(position: u8) -> usize {
    if usize::from(position) < SLOTS {
        usize::from(position)
    } else {
        0
    }
}

/// One shortlisted gallery subject, after full comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub subject: u32,
    /// Fused log-likelihood ratio (sum over compared fingers).
    pub llr: f64,
    /// Open-set probability that this subject is the probe's mate.
    pub probability: f64,
    pub fingers_compared: u8,
    pub prefilter: f32,
}

/// Search settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchOptions {
    /// Subjects compared in full after the pre-filter.
    pub shortlist: usize,
    /// Candidates returned.
    pub top: usize,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            shortlist: 200,
            top: 1,
        }
    }
}

/// Per-thread reusable search buffers.
#[derive(Debug, Default)]
pub struct SearchScratch {
    votes: Vec<u16>,
    totals: Vec<f32>,
    order: Vec<u32>,
    keys: Vec<u16>,
    knn: Vec<(i32, u8)>,
    offsets: Vec<u16>,
    edges: Vec<Edge>,
    matcher: Matcher,
    gallery_template: Option<Template>,
}

/// The enrolled gallery.
#[derive(Debug, Clone, PartialEq)]
pub struct GalleryIndex {
    names: Vec<String>,
    /// Subject s owns fingers `subject_fingers[s]..subject_fingers[s + 1]`.
    subject_fingers: Vec<u32>,
    finger_slot: Vec<u8>,
    /// Finger f owns minutiae `finger_minutiae[f]..finger_minutiae[f + 1]`.
    finger_minutiae: Vec<u32>,
    minutiae: Vec<Minutia>,
    /// Distinct index keys per subject and slot.
    slot_keys: Vec<[u16; SLOTS]>,
    postings: Vec<Vec<u8>>,
    /// Last subject id + 1 appended to each posting list (0 = empty).
    last: Vec<u32>,
}

fn push_varint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Calls `f` with every subject id in a posting list.
#[inline]
fn for_each_posting(list: &[u8], mut f: impl FnMut(u32)) {
    let mut id: u32 = 0;
    let mut first = true;
    let mut value: u32 = 0;
    let mut shift = 0;
    for &b in list {
        value |= u32::from(b & 0x7F) << shift;
        if b & 0x80 != 0 {
            shift += 7;
            if shift > 28 {
                return; // malformed; lists are validated on load, so this is unreachable
            }
            continue;
        }
        id = if first { value } else { id.wrapping_add(value) };
        first = false;
        f(id);
        value = 0;
        shift = 0;
    }
}

fn edge_key(len_bin: u16, from_bin: u16, to_bin: u16) -> u16 {
    (len_bin * ANGLE_BINS + from_bin) * ANGLE_BINS + to_bin
}

/// Exact keys of a gallery finger (sorted, distinct).
fn gallery_keys(
    minutiae: &[Minutia],
    knn: &mut Vec<(i32, u8)>,
    offsets: &mut Vec<u16>,
    edges: &mut Vec<Edge>,
    keys: &mut Vec<u16>,
) {
    nearest_edges(minutiae, INDEX_NEIGHBOURS, knn, offsets, edges);
    keys.clear();
    for e in edges.iter() {
        keys.push(edge_key(
            (e.length / LEN_BIN).min(LEN_BINS - 1),
            u16::from(e.from_angle >> ANGLE_BIN_SHIFT),
            u16::from(e.to_angle >> ANGLE_BIN_SHIFT),
        ));
    }
    keys.sort_unstable();
    keys.dedup();
}

/// The one or two bins to try for a value at `position` (in bins), wrapping or clamping.
fn bins_near(position: f32, bins: u16, wrap: bool) -> [Option<u16>; 2] {
    let bin = position.floor();
    let frac = position - bin;
    let bin = bin as i32;
    let last = i32::from(bins) - 1;
    let fix = |b: i32| -> Option<u16> {
        if wrap {
            Some(b.rem_euclid(i32::from(bins)) as u16)
        } else if (0..=last).contains(&b) {
            Some(b as u16)
        } else {
            None
        }
    };
    let own = fix(bin.min(last));
    let other = if bin >= last && !wrap {
        None
    } else if frac < EXPAND_MARGIN {
        fix(bin - 1)
    } else if frac > 1.0 - EXPAND_MARGIN {
        fix(bin + 1)
    } else {
        None
    };
    [own, other]
}

/// Keys of a probe finger, expanded near bin boundaries (sorted, distinct).
fn probe_keys(
    minutiae: &[Minutia],
    knn: &mut Vec<(i32, u8)>,
    offsets: &mut Vec<u16>,
    edges: &mut Vec<Edge>,
    keys: &mut Vec<u16>,
) {
    nearest_edges(minutiae, INDEX_NEIGHBOURS, knn, offsets, edges);
    keys.clear();
    let angle_scale = (1u32 << ANGLE_BIN_SHIFT) as f32;
    for e in edges.iter() {
        let lens = bins_near(f32::from(e.length) / f32::from(LEN_BIN), LEN_BINS, false);
        let froms = bins_near(f32::from(e.from_angle) / angle_scale, ANGLE_BINS, true);
        let tos = bins_near(f32::from(e.to_angle) / angle_scale, ANGLE_BINS, true);
        for l in lens.iter().flatten() {
            for f in froms.iter().flatten() {
                for t in tos.iter().flatten() {
                    keys.push(edge_key(*l, *f, *t));
                }
            }
        }
    }
    keys.sort_unstable();
    keys.dedup();
}

impl Default for GalleryIndex {
    fn default() -> Self {
        Self::new()
    }
}

impl GalleryIndex {
    pub fn new() -> Self {
        GalleryIndex {
            names: Vec::new(),
            subject_fingers: vec![0],
            finger_slot: Vec::new(),
            finger_minutiae: vec![0],
            minutiae: Vec::new(),
            slot_keys: Vec::new(),
            postings: vec![Vec::new(); SLOTS * KEYS],
            last: vec![0; SLOTS * KEYS],
        }
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn name(&self, subject: u32) -> Option<&str> {
        self.names.get(subject as usize).map(String::as_str)
    }

    /// Enrols a subject; returns its id. Fingers keep at most [`MAX_MINUTIAE`] minutiae.
    pub fn insert(&mut self, name: &str, prints: &SubjectPrints) -> Result<u32, IndexError> {
        let id = self.names.len();
        if id >= u32::MAX as usize - 1 {
            return Err(IndexError::TooMany(id));
        }
        let id = id as u32;
        let mut knn = Vec::new();
        let mut offsets = Vec::new();
        let mut edges = Vec::new();
        let mut keys = Vec::new();
        let mut per_slot: [Vec<u16>; SLOTS] = Default::default();
        for (position, ms) in &prints.fingers {
            let ms = &ms[..ms.len().min(MAX_MINUTIAE)];
            let slot = slot_of(*position);
            self.finger_slot.push(slot as u8);
            self.minutiae.extend_from_slice(ms);
            self.finger_minutiae.push(self.minutiae.len() as u32);
            gallery_keys(ms, &mut knn, &mut offsets, &mut edges, &mut keys);
            per_slot[slot].extend_from_slice(&keys);
        }
        let mut counts = [0u16; SLOTS];
        for (slot, keys) in per_slot.iter_mut().enumerate() {
            keys.sort_unstable();
            keys.dedup();
            counts[slot] = keys.len().min(usize::from(u16::MAX)) as u16;
            for &k in keys.iter() {
                let list = slot * KEYS + usize::from(k);
                let delta = if self.last[list] == 0 {
                    id
                } else {
                    id - (self.last[list] - 1)
                };
                push_varint(&mut self.postings[list], delta);
                self.last[list] = id + 1;
            }
        }
        self.slot_keys.push(counts);
        self.subject_fingers.push(self.finger_slot.len() as u32);
        self.names.push(name.to_string());
        Ok(id)
    }

    fn fingers_of(&self, subject: usize) -> impl Iterator<Item = (usize, &[Minutia])> {
        let a = self.subject_fingers[subject] as usize;
        let b = self.subject_fingers[subject + 1] as usize;
        (a..b).map(move |f| {
            let from = self.finger_minutiae[f] as usize;
            let to = self.finger_minutiae[f + 1] as usize;
            (usize::from(self.finger_slot[f]), &self.minutiae[from..to])
        })
    }

    /// Searches one probe subject. Candidates come back best first (by fused LLR).
    pub fn search(
        &self,
        probe: &SubjectPrints,
        options: &SearchOptions,
        calibration: &Calibration,
        scratch: &mut SearchScratch,
    ) -> Vec<Candidate> {
        let n = self.len();
        if n == 0 || options.top == 0 || probe.fingers.iter().all(|(_, ms)| ms.is_empty()) {
            return Vec::new();
        }
        let s = scratch;
        s.totals.clear();
        s.totals.resize(n, 0.0);
        s.votes.resize(n, 0);
        for (position, ms) in &probe.fingers {
            let probe_slot = slot_of(*position);
            probe_keys(ms, &mut s.knn, &mut s.offsets, &mut s.edges, &mut s.keys);
            s.votes.fill(0);
            let slots: &[usize] = if probe_slot == 0 {
                &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
            } else {
                &[probe_slot, 0]
            };
            for &slot in slots {
                for &k in &s.keys {
                    for_each_posting(&self.postings[slot * KEYS + usize::from(k)], |id| {
                        if let Some(v) = s.votes.get_mut(id as usize) {
                            *v = v.saturating_add(1);
                        }
                    });
                }
            }
            for (subject, &v) in s.votes.iter().enumerate() {
                if v > 0 {
                    let keys: u32 = slots
                        .iter()
                        .map(|&slot| u32::from(self.slot_keys[subject][slot]))
                        .sum();
                    s.totals[subject] += f32::from(v) / ((keys + 16) as f32).sqrt();
                }
            }
        }
        s.order.clear();
        s.order
            .extend((0..n as u32).filter(|&i| s.totals[i as usize] > 0.0));
        let wanted = options.shortlist.max(options.top).min(n);
        if s.order.len() < wanted {
            // Too few subjects share any key (tiny gallery or probe): compare some more anyway,
            // so that `top` rows still come back.
            let missing = wanted - s.order.len();
            s.order.extend(
                (0..n as u32)
                    .filter(|&i| s.totals[i as usize] <= 0.0)
                    .take(missing),
            );
        }
        let keep = wanted.min(s.order.len());
        if keep < s.order.len() {
            let totals = &s.totals;
            s.order.select_nth_unstable_by(keep, |a, b| {
                totals[*b as usize].total_cmp(&totals[*a as usize])
            });
            s.order.truncate(keep);
        }

        let probe_templates: Vec<(usize, Template)> = probe
            .fingers
            .iter()
            .map(|(p, ms)| (slot_of(*p), Template::new(ms)))
            .collect();
        let mut candidates: Vec<Candidate> = Vec::with_capacity(s.order.len());
        let gallery_template = s.gallery_template.get_or_insert_with(|| Template::new(&[]));
        for &subject in &s.order {
            let mut llr = 0.0;
            let mut fingers = 0u8;
            for (pslot, pt) in &probe_templates {
                // Best score over the subject's fingers in a compatible slot.
                let mut best: Option<f32> = None;
                for (gslot, ms) in self.fingers_of(subject as usize) {
                    if *pslot != gslot && *pslot != 0 && gslot != 0 {
                        continue;
                    }
                    gallery_template.rebuild_edges_only(ms, &mut s.knn);
                    let score = s.matcher.compare(gallery_template, pt).score;
                    best = Some(best.map_or(score, |b: f32| b.max(score)));
                }
                if let Some(score) = best {
                    llr += calibration.finger_llr(score);
                    fingers += 1;
                }
                // Sequential test: a mate averages about +9 per finger, an impostor about -5.
                // After three fingers averaging below ABANDON_PER_FINGER the rest cannot matter.
                if fingers >= 3 && llr < ABANDON_PER_FINGER * f64::from(fingers) {
                    break;
                }
            }
            candidates.push(Candidate {
                subject,
                llr,
                probability: 0.0,
                fingers_compared: fingers,
                prefilter: s.totals[subject as usize],
            });
        }
        let llrs: Vec<f64> = candidates.iter().map(|c| c.llr).collect();
        for (c, p) in candidates.iter_mut().zip(open_set_posteriors(&llrs, n)) {
            c.probability = p;
        }
        candidates.sort_by(|a, b| b.llr.total_cmp(&a.llr).then(a.subject.cmp(&b.subject)));
        candidates.truncate(options.top);
        candidates
    }

    /// Heap bytes held (capacity-based estimate).
    pub fn heap_bytes(&self) -> usize {
        self.names.iter().map(|n| n.capacity() + 24).sum::<usize>()
            + self.subject_fingers.capacity() * 4
            + self.finger_slot.capacity()
            + self.finger_minutiae.capacity() * 4
            + self.minutiae.capacity() * std::mem::size_of::<Minutia>()
            + self.slot_keys.capacity() * std::mem::size_of::<[u16; SLOTS]>()
            + self
                .postings
                .iter()
                .map(|p| p.capacity() + 24)
                .sum::<usize>()
            + self.last.capacity() * 4
    }

    /// Total postings bytes (the index proper).
    pub fn postings_bytes(&self) -> usize {
        self.postings.iter().map(Vec::len).sum()
    }

    /// Writes the gallery in its own binary format (little-endian, see [`GalleryIndex::read`]).
    pub fn write(&self, out: &mut impl Write) -> Result<(), IndexError> {
        let mut buf: Vec<u8> = Vec::with_capacity(self.heap_bytes());
        buf.extend_from_slice(MAGIC);
        let put = |buf: &mut Vec<u8>, v: u32| buf.extend_from_slice(&v.to_le_bytes());
        put(&mut buf, self.names.len() as u32);
        put(&mut buf, self.finger_slot.len() as u32);
        put(&mut buf, self.minutiae.len() as u32);
        for name in &self.names {
            put(&mut buf, name.len() as u32);
            buf.extend_from_slice(name.as_bytes());
        }
        for &v in &self.subject_fingers {
            put(&mut buf, v);
        }
        buf.extend_from_slice(&self.finger_slot);
        for &v in &self.finger_minutiae {
            put(&mut buf, v);
        }
        for m in &self.minutiae {
            buf.extend_from_slice(&m.x.to_le_bytes());
            buf.extend_from_slice(&m.y.to_le_bytes());
            buf.push(m.angle);
            buf.push(m.kind.code());
        }
        for counts in &self.slot_keys {
            for c in counts {
                buf.extend_from_slice(&c.to_le_bytes());
            }
        }
        for (list, last) in self.postings.iter().zip(&self.last) {
            put(&mut buf, list.len() as u32);
            put(&mut buf, *last);
            buf.extend_from_slice(list);
        }
        out.write_all(&buf)?;
        Ok(())
    }

    /// Reads a gallery written by [`GalleryIndex::write`], checking every count and offset.
    pub fn read(bytes: &[u8]) -> Result<Self, IndexError> {
        let mut r = Reader { bytes, pos: 0 };
        if r.take(MAGIC.len(), "magic")? != MAGIC {
            return Err(r.corrupt(0, "not a Verity gallery index (bad magic)"));
        }
        let subjects = r.u32("subject count")? as usize;
        let fingers = r.u32("finger count")? as usize;
        let minutiae = r.u32("minutia count")? as usize;
        // Every subject, finger and minutia takes at least one byte: bounds allocations.
        if subjects.saturating_add(fingers).saturating_add(minutiae) > bytes.len() {
            return Err(r.corrupt(8, "counts exceed the file size"));
        }
        let mut g = GalleryIndex::new();
        for _ in 0..subjects {
            let len = r.u32("name length")? as usize;
            let at = r.pos;
            let raw = r.take(len, "name")?;
            let name =
                std::str::from_utf8(raw).map_err(|_| r.corrupt(at, "subject name is not UTF-8"))?;
            g.names.push(name.to_string());
        }
        g.subject_fingers = r.u32_vec(subjects + 1, "subject finger offsets")?;
        check_offsets(&r, &g.subject_fingers, fingers, "subject finger offsets")?;
        let at = r.pos;
        g.finger_slot = r.take(fingers, "finger slots")?.to_vec();
        if g.finger_slot.iter().any(|&s| usize::from(s) >= SLOTS) {
            return Err(r.corrupt(at, "finger slot above 10"));
        }
        g.finger_minutiae = r.u32_vec(fingers + 1, "finger minutia offsets")?;
        check_offsets(&r, &g.finger_minutiae, minutiae, "finger minutia offsets")?;
        let raw = r.take(minutiae.saturating_mul(6), "minutiae")?;
        g.minutiae = raw
            .chunks_exact(6)
            .map(|c| Minutia {
                x: i16::from_le_bytes([c[0], c[1]]),
                y: i16::from_le_bytes([c[2], c[3]]),
                angle: c[4],
                kind: MinutiaType::from_code(c[5]),
            })
            .collect();
        let raw = r.take(subjects.saturating_mul(2 * SLOTS), "key counts")?;
        g.slot_keys = raw
            .chunks_exact(2 * SLOTS)
            .map(|c| {
                let mut counts = [0u16; SLOTS];
                for (i, v) in counts.iter_mut().enumerate() {
                    *v = u16::from_le_bytes([c[2 * i], c[2 * i + 1]]);
                }
                counts
            })
            .collect();
        for list in 0..SLOTS * KEYS {
            let len = r.u32("posting list length")? as usize;
            let last = r.u32("posting list end")?;
            let at = r.pos;
            let data = r.take(len, "posting list")?.to_vec();
            let mut ok = true;
            let mut max = 0u32;
            let mut count = 0usize;
            for_each_posting(&data, |id| {
                count += 1;
                max = max.max(id);
                ok &= (id as usize) < subjects;
            });
            if !ok || (len > 0 && (count == 0 || data.last().is_some_and(|b| b & 0x80 != 0))) {
                return Err(r.corrupt(at, &format!("posting list {list} is malformed")));
            }
            if last as usize > subjects {
                return Err(r.corrupt(at - 4, "posting list end beyond the subject count"));
            }
            g.postings[list] = data;
            g.last[list] = if count == 0 { 0 } else { last.max(max + 1) };
        }
        if r.pos != bytes.len() {
            return Err(r.corrupt(r.pos, "trailing bytes after the index"));
        }
        Ok(g)
    }
}

fn check_offsets(r: &Reader, offsets: &[u32], total: usize, what: &str) -> Result<(), IndexError> {
    let ok = offsets.first() == Some(&0)
        && offsets.last().is_some_and(|&l| l as usize == total)
        && offsets.windows(2).all(|w| w[0] <= w[1]);
    if ok {
        Ok(())
    } else {
        Err(r.corrupt(
            r.pos,
            &format!("{what} are not ascending from 0 to {total}"),
        ))
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn corrupt(&self, offset: usize, problem: &str) -> IndexError {
        IndexError::Corrupt {
            offset,
            problem: problem.to_string(),
        }
    }
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], IndexError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let out = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(out)
            }
            None => Err(self.corrupt(self.pos, &format!("file ends inside {what}"))),
        }
    }
    fn u32(&mut self, what: &str) -> Result<u32, IndexError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u32_vec(&mut self, n: usize, what: &str) -> Result<Vec<u32>, IndexError> {
        let raw = self.take(n.saturating_mul(4), what)?;
        Ok(raw
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{ten_print, ImpressionParams};

    fn gallery(n: usize) -> GalleryIndex {
        let mut g = GalleryIndex::new();
        for i in 0..n {
            let fin = format!("{:010}", 1000 + i);
            let prints = SubjectPrints {
                fingers: ten_print(11, &fin, 0, &ImpressionParams::rolled()),
            };
            g.insert(&fin, &prints).expect("small gallery");
        }
        g
    }

    #[test]
    fn varint_round_trip() {
        let mut buf = Vec::new();
        for v in [0u32, 1, 127, 128, 300, 1 << 20, u32::MAX / 2] {
            push_varint(&mut buf, v);
        }
        let mut got = Vec::new();
        let mut prev = 0u32;
        let mut first = true;
        for_each_posting(&buf, |id| {
            got.push(if first { id } else { id - prev });
            prev = id;
            first = false;
        });
        assert_eq!(got, vec![0, 1, 127, 128, 300, 1 << 20, u32::MAX / 2]);
    }

    #[test]
    fn mate_is_found_and_impostor_is_not() {
        let g = gallery(30);
        let cal = Calibration::builtin();
        let mut scratch = SearchScratch::default();
        let options = SearchOptions {
            shortlist: 5,
            top: 3,
        };
        for i in [0usize, 7, 29] {
            let fin = format!("{:010}", 1000 + i);
            let probe = SubjectPrints {
                fingers: ten_print(11, &fin, 1, &ImpressionParams::rolled()),
            };
            let found = g.search(&probe, &options, cal, &mut scratch);
            assert_eq!(found[0].subject, i as u32, "mate of {fin} not first");
            assert!(found[0].probability > 0.99, "{:?}", found[0]);
            assert!(found[1].probability < 0.01);
        }
        let stranger = SubjectPrints {
            fingers: ten_print(11, "9999999999", 1, &ImpressionParams::rolled()),
        };
        let found = g.search(&stranger, &options, cal, &mut scratch);
        assert!(found.iter().all(|c| c.probability < 0.01), "{found:?}");
    }

    #[test]
    fn write_read_round_trip_and_rejects_damage() {
        let g = gallery(4);
        let mut bytes = Vec::new();
        g.write(&mut bytes).expect("write to memory");
        let back = GalleryIndex::read(&bytes).expect("own output reads");
        assert_eq!(back, g);
        assert!(GalleryIndex::read(&bytes[..bytes.len() - 1]).is_err());
        assert!(GalleryIndex::read(b"nonsense").is_err());
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert!(GalleryIndex::read(&bad).is_err());
    }

    #[test]
    fn empty_gallery_and_empty_probe() {
        let g = GalleryIndex::default();
        let mut bytes = Vec::new();
        g.write(&mut bytes).expect("write to memory");
        assert_eq!(GalleryIndex::read(&bytes).expect("empty gallery reads"), g);
        let mut scratch = SearchScratch::default();
        let cal = Calibration::builtin();
        let probe = SubjectPrints::default();
        assert!(g
            .search(&probe, &SearchOptions::default(), cal, &mut scratch)
            .is_empty());
        let g = gallery(2);
        assert!(g
            .search(&probe, &SearchOptions::default(), cal, &mut scratch)
            .is_empty());
    }
}
