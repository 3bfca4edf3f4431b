//! The person map: what a full run knows about every person, kept on disk for the incremental
//! runs after it.
//!
//! Records are only ever added (a record id is stored once; a new version is a new record), so
//! the persons of a full run only grow: a new record joins the persons whose identifiers it
//! holds, and merges them when it holds several. An incremental run that has the map links the
//! new records to the full run's persons with look-ups in memory, instead of following
//! identifiers through the store's indexes hop by hop (random reads that took 59 s at 10M
//! people), and sweeps in memory as the full run does.
//!
//! The map holds, in the order an incremental run first needs them (the link, the screen,
//! reading persons, the sweep), so that reading the file from its start brings each part in
//! before it is used:
//! - every identifier hash with its group, sorted, once per hash: a [`KeyEntry`] of the hash's
//!   low 64 bits, found under a directory of its high bits;
//! - where each group's records (slots) start, in the full run's group order;
//! - per slot, what the lead screen keeps ([`RecordLead`]) and a 32-bit tag of the record id
//!   (to find open leads; a collision only makes a person evaluated that need not be: the
//!   run's exact screen follows on the records read whole);
//! - per slot, its rev (32 bits: a store past 4 billion revs gets no map);
//! - the sweep index ([`SweepIndex`], status keys held by group number). The entries of its
//!   status part (a third of the file) start on a page boundary and are left out of the file's
//!   checksum: only leads look in them, a few thousand look-ups, so each look-up checks the
//!   4 KB block it reads against the block's own checksum ([`BlockSums`]) and the run reads a
//!   few pages of them rather than all (format 5; format 4 left the directory out too, and a
//!   look-up read two pages from disk).
//!
//! Every byte counts: 1% of the records changing touches some 4% of the persons, spread over
//! the whole file, so the first run after a change reads all of it from disk but the status
//! entries (format 2 was 2.2 GB at 10M people; format 5 is 1.7 GB, of which it reads 1.1).
//!
//! It is an accelerator, never the truth: a run without a usable map (none, another format,
//! another lead policy, a head past the run's start, a damaged file) takes the store path,
//! and tests check that both paths give the same leads.

use super::column::{Column, Fixed, MappedFile};
use super::{HashDirectory, IdEntry, KeyEntry, RecordLead, SweepIndex};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use verity_model::SourceRecord;

#[path = "ncatc_map_overlay.rs"]
pub(crate) mod overlay;

/// The map's file name in the map directory.
pub(crate) const MAP_FILE: &str = "person-map.bin";
const MAGIC: &[u8; 8] = b"VNCATCPM";
/// Bumped whenever the layout or the meaning of a field changes: a map of another format is
/// not used (the next full run writes a new one).
const FORMAT: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub(crate) enum MapError {
    #[error("person map {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("person map {path}: {problem}")]
    Invalid { path: PathBuf, problem: String },
}

/// The groups of a full run and their identifiers (the map without its sweep index).
pub(crate) struct MapLinks {
    /// Where each group's slots start; one more entry than groups.
    group_starts: Column<u32>,
    /// Revs as 32 bits; `revs_fit` says whether every one did (a map is written only then).
    slot_rev: Column<u32>,
    revs_fit: bool,
    slot_lead: Column<RecordLead>,
    slot_id_tag: Column<u32>,
    /// (identifier hash's low 64 bits, group), sorted by the whole hash, one entry per hash;
    /// `id_dir` is over the high 64 bits.
    ids: Column<KeyEntry>,
    id_dir: HashDirectory,
}

/// A full run's person map, read back.
pub(crate) struct PersonMap {
    /// Records with a rev up to this are in the map.
    pub head_rev: i64,
    /// The lead policy version the screen's [`RecordLead`]s were computed under.
    pub policy_version: String,
    /// The checksum stored at the file's end: with the head, it names this map (an
    /// [`overlay`] holds for one map).
    pub checksum: u64,
    pub links: MapLinks,
    pub sweep: SweepIndex,
}

/// The record-id tag the map keeps per slot: FNV-1a (stable across builds), its 64 bits
/// folded to 32. Only a filter: a record whose tag matches an open lead's is checked exactly.
pub(crate) fn record_id_tag(id: &str) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // Truncating casts: the high word folded onto the low.
    (h >> 32) as u32 ^ h as u32
}

impl MapLinks {
    /// From the full scan's groups: `members` lists record indexes group after group,
    /// `starts` where each group begins; `ids` are (identifier hash, record index) sorted by
    /// hash, turned here into (hash, group), once per hash.
    pub(crate) fn new(
        starts: &[usize],
        members: &[u32],
        group_of: &[u32],
        mut ids: Vec<IdEntry>,
        rev_of: impl Fn(u32) -> i64 + Sync,
        lead_of: impl Fn(u32) -> RecordLead + Sync,
        id_of: impl Fn(u32) -> u32 + Sync,
    ) -> MapLinks {
        for e in &mut ids {
            let g = group_of.get(e.record() as usize).copied().unwrap_or(0);
            *e = IdEntry::new(e.hash(), g);
        }
        // Equal hashes are in one group (that is how groups are made): keep one.
        ids.dedup_by_key(|e| e.hash());
        let id_dir = HashDirectory::of(ids.len(), |i| (ids[i].hash() >> 64) as u64);
        // The directory places a hash by its high bits; the entry keeps the low 64. Two
        // identifiers are confused only if their hashes agree in those 64 bits and in the
        // directory's (25 more at 10M people).
        let ids: Vec<KeyEntry> = {
            let entries = ids
                .iter()
                .map(|e| KeyEntry::new(e.hash() as u64, e.record()))
                .collect();
            drop(ids);
            entries
        };
        let group_starts = starts
            .iter()
            .map(|&s| u32::try_from(s).unwrap_or(u32::MAX))
            .collect();
        let (slot_rev, (slot_lead, slot_id_tag)) = std::thread::scope(|s| {
            let tags = s.spawn(|| members.iter().map(|&m| id_of(m)).collect::<Vec<u32>>());
            let revs: Vec<Option<u32>> = members
                .iter()
                .map(|&m| u32::try_from(rev_of(m)).ok())
                .collect();
            let leads: Vec<RecordLead> = members.iter().map(|&m| lead_of(m)).collect();
            match tags.join() {
                Ok(t) => (revs, (leads, t)),
                Err(p) => std::panic::resume_unwind(p),
            }
        });
        let revs_fit = slot_rev.iter().all(Option::is_some);
        MapLinks {
            group_starts: Column::Owned(group_starts),
            slot_rev: Column::Owned(slot_rev.into_iter().map(|r| r.unwrap_or(0)).collect()),
            revs_fit,
            slot_lead: Column::Owned(slot_lead),
            slot_id_tag: Column::Owned(slot_id_tag),
            ids: Column::Owned(ids),
            id_dir,
        }
    }

    /// Groups in the map.
    pub fn groups(&self) -> usize {
        self.group_starts.len().saturating_sub(1)
    }

    /// Records (slots) in the map.
    pub fn slots(&self) -> usize {
        self.slot_rev.len()
    }

    /// The group holding this identifier hash.
    pub fn group_of_identifier(&self, hash: u128) -> Option<u32> {
        // Truncating casts: the high and the low 64 bits.
        let (high, low) = ((hash >> 64) as u64, hash as u64);
        self.ids
            .iter_range(self.id_dir.range(high))
            .find(|e| e.hash() == low)
            .map(|e| e.value())
    }

    /// The slot range of group `g` (empty for a group not in the map).
    pub fn slots_of(&self, g: u32) -> std::ops::Range<usize> {
        let at = |i: usize| self.group_starts.get(i).map_or(0, |v| v as usize);
        let g = g as usize;
        if g + 1 >= self.group_starts.len() {
            return 0..0;
        }
        at(g)..at(g + 1).max(at(g))
    }

    /// The group of a slot.
    pub fn group_of_slot(&self, slot: usize) -> Option<u32> {
        let slot = u32::try_from(slot).ok()?;
        let after = self.group_starts.partition_point(|s| s <= slot);
        let g = after.checked_sub(1)?;
        (g < self.groups()).then_some(g as u32)
    }

    pub fn rev(&self, slot: usize) -> i64 {
        self.slot_rev.get(slot).map_or(0, i64::from)
    }

    pub fn lead(&self, slot: usize) -> Option<RecordLead> {
        self.slot_lead.get(slot)
    }

    /// The slot's record-id tag ([`record_id_tag`]).
    pub fn id_tag(&self, slot: usize) -> u32 {
        self.slot_id_tag.get(slot).unwrap_or(0)
    }

    /// Slots whose record-id tag is one of `tags`: one pass over the map, for the few records
    /// whose group cannot be found by an identifier (they hold none). A tag may match another
    /// record's too: the caller takes that slot's group as well, which only costs an
    /// evaluation.
    pub fn slots_with_id_tags(&self, tags: &std::collections::HashSet<u32>) -> Vec<usize> {
        if tags.is_empty() {
            return Vec::new();
        }
        self.slot_id_tag
            .iter()
            .enumerate()
            .filter(|(_, t)| tags.contains(t))
            .map(|(i, _)| i)
            .collect()
    }
}

/// A running checksum of the file's bytes (four independent xor-rotate-multiply lanes over
/// 8-byte words, so the CPU runs them side by side): catches a truncated or damaged map, which
/// would otherwise link the wrong persons. The same however the bytes are split into calls.
#[derive(Default)]
struct Checksum {
    lanes: [u64; 4],
    pending: Vec<u8>,
}

/// Bytes the four lanes take per step.
const CHECKSUM_BLOCK: usize = 32;

impl Checksum {
    fn add(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        if !self.pending.is_empty() {
            let take = (CHECKSUM_BLOCK - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == CHECKSUM_BLOCK {
                let block = std::mem::take(&mut self.pending);
                self.block(&block);
            }
        }
        let mut blocks = rest.chunks_exact(CHECKSUM_BLOCK);
        for b in &mut blocks {
            self.block(b);
        }
        self.pending.extend_from_slice(blocks.remainder());
    }

    fn block(&mut self, b: &[u8]) {
        for (lane, word) in self.lanes.iter_mut().zip(b.chunks_exact(8)) {
            *lane = (lane.rotate_left(5) ^ u64_of(word)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn finish(mut self) -> u64 {
        let tail = std::mem::take(&mut self.pending);
        let mut last = [0u8; CHECKSUM_BLOCK];
        last[..tail.len()].copy_from_slice(&tail);
        self.block(&last);
        self.lanes.iter().fold(tail.len() as u64, |acc, &l| {
            (acc.rotate_left(17) ^ l).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
        })
    }
}

/// The size of a block of the map's checked-on-read region ([`BlockSums`]): a page.
pub(crate) const SUMMED_BLOCK: usize = 4096;

/// The checksum of one block of the checked-on-read region.
fn block_sum(block: &[u8]) -> u64 {
    let mut sum = Checksum::default();
    sum.add(block);
    sum.finish()
}

/// A region of a mapped map checked a block at a time, as it is read, instead of by the
/// file's checksum: the status sweep index's entries, a third of the map at 10M people, of
/// which a run reads only the few pages its leads' look-ups land on (checking them whole read
/// 0.56 GB more from disk in the first run after a change).
pub(crate) struct BlockSums {
    file: Arc<MappedFile>,
    /// The region's bytes in the file (its start a multiple of [`SUMMED_BLOCK`]).
    region: std::ops::Range<usize>,
    /// One checksum per block of the region, the last block possibly short.
    sums: Column<u64>,
}

/// A block of the checked-on-read region whose checksum does not hold.
#[derive(Debug, thiserror::Error)]
#[error(
    "person map: block {block} of the status index's entries is damaged (its checksum does not hold)"
)]
pub(crate) struct DamagedBlock {
    pub block: usize,
}

impl BlockSums {
    /// The region's bytes in the file.
    #[cfg(test)]
    pub(crate) fn region(&self) -> std::ops::Range<usize> {
        self.region.clone()
    }

    /// Checks every block that `bytes` (a range of the file, within the region) touches.
    pub(crate) fn check(&self, bytes: std::ops::Range<usize>) -> Result<(), DamagedBlock> {
        if bytes.is_empty() {
            return Ok(());
        }
        let data = self.file.bytes();
        let first = bytes.start.saturating_sub(self.region.start) / SUMMED_BLOCK;
        let last = (bytes.end - 1).saturating_sub(self.region.start) / SUMMED_BLOCK;
        for block in first..=last {
            let from = self.region.start + block * SUMMED_BLOCK;
            let to = (from + SUMMED_BLOCK).min(self.region.end);
            let held = data
                .get(from..to)
                .zip(self.sums.get(block))
                .is_some_and(|(b, want)| block_sum(b) == want);
            if !held {
                return Err(DamagedBlock { block });
            }
        }
        Ok(())
    }
}

/// The per-block checksums of the region being written ([`Out::begin_region`]).
#[derive(Default)]
struct RegionSums {
    block: Checksum,
    in_block: usize,
    sums: Vec<u64>,
}

/// Writes little-endian sections, counting and checksumming what it writes: into the file's
/// checksum, or, between [`Out::begin_region`] and [`Out::end_region`], into per-block ones.
struct Out<W: Write> {
    inner: W,
    sum: Checksum,
    buf: Vec<u8>,
    written: usize,
    region: Option<RegionSums>,
}

impl Out<std::io::BufWriter<std::fs::File>> {
    /// Writes to a new file at `tmp` (renamed into place by [`Out::finish_into`]).
    fn create(tmp: &Path) -> std::io::Result<Self> {
        Ok(Out::to_file(std::fs::File::create(tmp)?))
    }

    fn to_file(file: std::fs::File) -> Self {
        Out {
            inner: std::io::BufWriter::with_capacity(1 << 20, file),
            sum: Checksum::default(),
            buf: Vec::new(),
            written: 0,
            region: None,
        }
    }

    /// Appends the checksum, closes the temporary file `tmp` and renames it to `path`: its
    /// size. Not synced: the file is a cache, and a write the machine loses is caught by the
    /// checksum (the run then takes the store path); syncing 2.5 GB at 10M people held the
    /// full run up.
    fn finish_into(mut self, tmp: &Path, path: &Path) -> std::io::Result<u64> {
        let sum = std::mem::take(&mut self.sum).finish();
        self.inner.write_all(&sum.to_le_bytes())?;
        let file = self.inner.into_inner().map_err(|e| e.into_error())?;
        let size = file.metadata()?.len();
        drop(file);
        std::fs::rename(tmp, path)?;
        Ok(size)
    }
}

impl<W: Write> Out<W> {
    fn bytes(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self.region.as_mut() {
            None => self.sum.add(b),
            Some(region) => {
                let mut rest = b;
                while !rest.is_empty() {
                    let take = (SUMMED_BLOCK - region.in_block).min(rest.len());
                    region.block.add(&rest[..take]);
                    region.in_block += take;
                    rest = &rest[take..];
                    if region.in_block == SUMMED_BLOCK {
                        let full = std::mem::take(&mut region.block);
                        region.sums.push(full.finish());
                        region.in_block = 0;
                    }
                }
            }
        }
        self.written += b.len();
        self.inner.write_all(b)
    }

    /// Zero bytes up to the next multiple of [`SUMMED_BLOCK`] (their count first), then the
    /// start of a region checked by blocks.
    fn begin_region(&mut self) -> std::io::Result<()> {
        let pad = (SUMMED_BLOCK - (self.written + 8) % SUMMED_BLOCK) % SUMMED_BLOCK;
        self.u64(pad as u64)?;
        self.bytes(&vec![0u8; pad])?;
        self.region = Some(RegionSums::default());
        Ok(())
    }

    /// The end of the region: its blocks' checksums.
    fn end_region(&mut self) -> Vec<u64> {
        let Some(mut region) = self.region.take() else {
            return Vec::new();
        };
        if region.in_block > 0 {
            region.sums.push(region.block.finish());
        }
        region.sums
    }

    fn u64(&mut self, v: u64) -> std::io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }

    /// A column: its element count, then each element's bytes.
    fn column<T: Fixed>(&mut self, column: &Column<T>) -> std::io::Result<()> {
        self.u64(column.len() as u64)?;
        self.raw_column(column)
    }

    /// A column's elements' bytes, without their count.
    fn raw_column<T: Fixed>(&mut self, column: &Column<T>) -> std::io::Result<()> {
        let mut i = 0usize;
        while i < column.len() {
            let end = (i + 64 * 1024).min(column.len());
            self.buf.clear();
            for v in column.iter_range(i..end) {
                v.write(&mut self.buf);
            }
            let buf = std::mem::take(&mut self.buf);
            self.bytes(&buf)?;
            self.buf = buf;
            i = end;
        }
        Ok(())
    }

    /// A hash directory: its bits, then its starts as a column.
    fn directory(&mut self, dir: &HashDirectory) -> std::io::Result<()> {
        self.u64(u64::from(dir.bits))?;
        self.column(&dir.starts)
    }

    /// A section: its element count, then each element's bytes.
    fn section<T>(
        &mut self,
        items: &[T],
        width: usize,
        put: impl Fn(&T, &mut Vec<u8>),
    ) -> std::io::Result<()> {
        self.u64(items.len() as u64)?;
        for part in items.chunks(64 * 1024) {
            self.buf.clear();
            self.buf.reserve(part.len() * width);
            for item in part {
                put(item, &mut self.buf);
            }
            let buf = std::mem::take(&mut self.buf);
            self.bytes(&buf)?;
            self.buf = buf;
        }
        Ok(())
    }
}

/// Writes the map of a full run to `dir` (created if missing): to a temporary file first,
/// renamed over the old map once complete, so a reader never sees half a map.
pub(crate) fn write_map(
    dir: &Path,
    head_rev: i64,
    policy_version: &str,
    links: &MapLinks,
    sweep: &SweepIndex,
) -> Result<u64, MapError> {
    let path = dir.join(MAP_FILE);
    if !links.revs_fit {
        return Err(MapError::Invalid {
            path,
            problem: "not written: a rev past 32 bits (the map keeps 32-bit revs)".into(),
        });
    }
    let io = |source| MapError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = dir.join(format!("{MAP_FILE}.tmp"));
    let mut out = Out::create(&tmp).map_err(io)?;
    let write = |out: &mut Out<_>| -> std::io::Result<()> {
        out.bytes(MAGIC)?;
        out.bytes(&FORMAT.to_le_bytes())?;
        out.u64(head_rev as u64)?;
        out.section(policy_version.as_bytes(), 1, |b, buf| buf.push(*b))?;
        // In the order an incremental run uses them (see the module comment).
        out.column(&links.ids)?;
        out.directory(&links.id_dir)?;
        out.column(&links.group_starts)?;
        out.column(&links.slot_lead)?;
        out.column(&links.slot_id_tag)?;
        out.column(&links.slot_rev)?;
        out.column(&sweep.citizen)?;
        out.directory(&sweep.citizen_dir)?;
        // The status index: its directory (a fifth of it) under the file's checksum, so a
        // look-up reads one page it must check; then its entries' count, the entries from a
        // page boundary, checked by blocks as read (`BlockSums`), and their checksums.
        out.directory(&sweep.status_dir)?;
        out.u64(sweep.status.len() as u64)?;
        out.begin_region()?;
        out.raw_column(&sweep.status)?;
        let sums = out.end_region();
        out.column(&Column::Owned(sums))?;
        Ok(())
    };
    write(&mut out).map_err(io)?;
    let size = out.finish_into(&tmp, &path).map_err(io)?;
    // The overlays of the old map are stale (their stamp would not match either).
    overlay::remove_overlays(dir, &[])?;
    Ok(size)
}

/// Reads sections back from the file's bytes.
struct In<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> In<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| format!("ends early at byte {} (wanted {n} more)", self.at))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u64(&mut self) -> Result<u64, String> {
        let mut w = [0u8; 8];
        w.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(w))
    }

    fn section<T>(&mut self, width: usize, get: impl Fn(&[u8]) -> T) -> Result<Vec<T>, String> {
        let n = usize::try_from(self.u64()?).map_err(|_| "section too long".to_string())?;
        let len = n
            .checked_mul(width)
            .ok_or_else(|| "section too long".to_string())?;
        Ok(self.take(len)?.chunks_exact(width).map(get).collect())
    }
}

impl In<'_> {
    /// A column read in place from `file` (whose bytes these are).
    fn column<T: Fixed>(&mut self, file: &Arc<MappedFile>) -> Result<Column<T>, String> {
        let n = self.count()?;
        self.raw_column(file, n)
    }

    /// An element count.
    fn count(&mut self) -> Result<usize, String> {
        usize::try_from(self.u64()?).map_err(|_| "section too long".to_string())
    }

    /// `n` elements' bytes read in place, their count given.
    fn raw_column<T: Fixed>(
        &mut self,
        file: &Arc<MappedFile>,
        n: usize,
    ) -> Result<Column<T>, String> {
        let start = self.at;
        let len = n
            .checked_mul(T::WIDTH)
            .ok_or_else(|| "section too long".to_string())?;
        self.take(len)?;
        Column::mapped(file, start, n).ok_or_else(|| "section past the end".to_string())
    }

    /// A hash directory over `n` keys, read in place.
    fn directory(&mut self, file: &Arc<MappedFile>, n: usize) -> Result<HashDirectory, String> {
        let bits = u32::try_from(self.u64()?).map_err(|_| "directory too large".to_string())?;
        let starts = self.column::<u32>(file)?;
        HashDirectory::from_column(bits, starts, n)
    }
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[i * 4..i * 4 + 4]);
    u32::from_le_bytes(w)
}

fn u64_of(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(b);
    u64::from_le_bytes(w)
}

/// A mapped map or candidates file whose magic and format were checked, and whose checksum is
/// checked by [`Unverified::verify`]: reading all of a 2.2 GB map (at 10M people) takes an
/// incremental run's other thread the first second or more when the file is not in the page
/// cache, so the run uses the map while it is checked and saves nothing before it holds.
#[derive(Clone)]
pub(crate) struct Unverified {
    path: PathBuf,
    file: Arc<MappedFile>,
    /// The length of the bytes before the checksum.
    body_len: usize,
    /// The bytes checked by blocks as they are read ([`BlockSums`]), not by the checksum.
    by_blocks: std::ops::Range<usize>,
}

impl Unverified {
    /// Checks the file's checksum (every byte of it is read, but those checked by blocks).
    pub(crate) fn verify(&self) -> Result<(), MapError> {
        let bytes = self.file.bytes();
        let mut sum = Checksum::default();
        let skip = self.by_blocks.start.min(self.body_len)..self.by_blocks.end.min(self.body_len);
        sum.add(&bytes[..skip.start]);
        sum.add(&bytes[skip.end.max(skip.start)..self.body_len]);
        if sum.finish() != u64_of(&bytes[self.body_len..]) {
            return Err(MapError::Invalid {
                path: self.path.clone(),
                problem: "checksum mismatch (damaged or truncated)".into(),
            });
        }
        Ok(())
    }
}

/// A map or candidates file, mapped, its magic and format checked, not yet its checksum
/// (`Ok(None)` when there is no file).
fn open_unverified(
    path: &Path,
    magic: &[u8; 8],
    format: u32,
    what: &str,
) -> Result<Option<Unverified>, MapError> {
    let file = match MappedFile::open(path) {
        Ok(Some(f)) => Arc::new(f),
        Ok(None) => return Ok(None),
        Err(source) => {
            return Err(MapError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let bytes = file.bytes();
    let invalid = |problem: String| MapError::Invalid {
        path: path.to_path_buf(),
        problem,
    };
    if bytes.len() < magic.len() + 4 + 8 || &bytes[..magic.len()] != magic {
        return Err(invalid(format!("not {what}")));
    }
    let found = u32_at(&bytes[magic.len()..], 0);
    if found != format {
        return Err(invalid(format!(
            "format {found}, this build reads {format}"
        )));
    }
    let body_len = bytes.len() - 8;
    Ok(Some(Unverified {
        path: path.to_path_buf(),
        file,
        body_len,
        by_blocks: 0..0,
    }))
}

/// A map or candidates file, mapped, its magic, format and checksum checked: the file and the
/// length of its bytes before the checksum (`Ok(None)` when there is no file).
fn open_checked(
    path: &Path,
    magic: &[u8; 8],
    format: u32,
    what: &str,
) -> Result<Option<(Arc<MappedFile>, usize)>, MapError> {
    let Some(file) = open_unverified(path, magic, format, what)? else {
        return Ok(None);
    };
    file.verify()?;
    Ok(Some((file.file, file.body_len)))
}

/// Reads the map in `dir` in place (mapped), its checksum checked: `Ok(None)` when there is
/// none, an error when it is damaged or of another format (the caller then runs without it).
#[cfg(test)]
pub(crate) fn read_map(dir: &Path) -> Result<Option<PersonMap>, MapError> {
    let Some((map, file)) = read_map_unverified(dir)? else {
        return Ok(None);
    };
    file.verify()?;
    Ok(Some(map))
}

/// Reads the map in `dir` in place (mapped), its structure checked but not its checksum,
/// which the caller checks ([`Unverified::verify`]) before it acts on what it read: `Ok(None)`
/// when there is none, an error when it is of another format or its sections do not fit (the
/// caller then runs without it). The sections' lengths and the group starts (an ordered cover
/// of the slots) are checked here, so a damaged map read before its checksum fails gives
/// wrong answers the caller discards, never out-of-range work.
pub(crate) fn read_map_unverified(dir: &Path) -> Result<Option<(PersonMap, Unverified)>, MapError> {
    let path = dir.join(MAP_FILE);
    let Some(mut unverified) = open_unverified(&path, MAGIC, FORMAT, "a person map")? else {
        return Ok(None);
    };
    let (file, body_len) = (&unverified.file, unverified.body_len);
    let invalid = |problem: String| MapError::Invalid {
        path: path.clone(),
        problem,
    };
    let mut r = In {
        bytes: &file.bytes()[..body_len],
        at: MAGIC.len() + 4,
    };
    let parse = |r: &mut In<'_>| -> Result<PersonMap, String> {
        let head_rev = r.u64()? as i64;
        let policy = r.section(1, |b| b[0])?;
        let policy_version =
            String::from_utf8(policy).map_err(|_| "policy version is not UTF-8".to_string())?;
        let ids = r.column::<KeyEntry>(file)?;
        let id_dir = r.directory(file, ids.len())?;
        let group_starts = r.column::<u32>(file)?;
        let slot_lead = r.column::<RecordLead>(file)?;
        let slot_id_tag = r.column::<u32>(file)?;
        let slot_rev = r.column::<u32>(file)?;
        let citizen = r.column::<u64>(file)?;
        let citizen_dir = r.directory(file, citizen.len())?;
        let status_bits = u32::try_from(r.u64()?).map_err(|_| "directory too large".to_string())?;
        let starts = r.column::<u32>(file)?;
        let status_len = r.count()?;
        let pad = r.count()?;
        r.take(pad)?;
        let region_start = r.at;
        let status = r.raw_column::<KeyEntry>(file, status_len)?;
        let region = region_start..r.at;
        let sums = r.column::<u64>(file)?;
        if !region_start.is_multiple_of(SUMMED_BLOCK)
            || sums.len() != region.len().div_ceil(SUMMED_BLOCK)
        {
            return Err("the status index's block checksums do not cover it".into());
        }
        let status_dir = HashDirectory::from_column(status_bits, starts, status.len())?;
        file.advise_random(region.clone());
        let status_sums = BlockSums {
            file: Arc::clone(file),
            region,
            sums,
        };
        if r.at != r.bytes.len() {
            return Err(format!(
                "{} bytes after the last section",
                r.bytes.len() - r.at
            ));
        }
        let slots = slot_rev.len();
        if slot_lead.len() != slots || slot_id_tag.len() != slots {
            return Err("slot sections differ in length".into());
        }
        // Before the checksum is known, and against a writer's bug: the cheap checks (the
        // sorted arrays are not walked, which would read every page of the file), enough that
        // every group's slots lie within the slots.
        let mut last = 0u32;
        let ordered = group_starts.iter().all(|s| {
            let ok = s >= last;
            last = s;
            ok
        });
        if group_starts.get(0) != Some(0)
            || group_starts
                .get(group_starts.len().saturating_sub(1))
                .map(|s| s as usize)
                != Some(slots)
            || !ordered
        {
            return Err("group starts are not an ordered cover of the slots".into());
        }
        Ok(PersonMap {
            head_rev,
            policy_version,
            checksum: u64_of(&file.bytes()[body_len..]),
            links: MapLinks {
                group_starts,
                slot_rev,
                revs_fit: true,
                slot_lead,
                slot_id_tag,
                ids,
                id_dir,
            },
            sweep: SweepIndex {
                citizen,
                citizen_dir,
                status,
                status_dir,
                status_sums: Some(status_sums),
            },
        })
    };
    let map = parse(&mut r).map_err(invalid)?;
    unverified.by_blocks = map
        .sweep
        .status_sums
        .as_ref()
        .map_or(0..0, |s| s.region.clone());
    Ok(Some((map, unverified)))
}

/// The head rev and validity key of the map in `dir`, from its first bytes only (the whole
/// file is checked when read): `Ok(None)` when there is none.
pub(crate) fn read_map_head(dir: &Path) -> Result<Option<(i64, String)>, MapError> {
    read_file_head(dir.join(MAP_FILE), MAGIC, FORMAT, "a person map")
}

/// The head rev and validity key of the candidates file in `dir`, as [`read_map_head`].
pub(crate) fn read_candidates_head(dir: &Path) -> Result<Option<(i64, String)>, MapError> {
    read_file_head(
        dir.join(CANDIDATES_FILE),
        CANDIDATES_MAGIC,
        CANDIDATES_FORMAT,
        "a candidates file",
    )
}

/// The head rev and key that open a map or candidates file (`what` names the kind).
fn read_file_head(
    path: PathBuf,
    magic: &[u8],
    format_wanted: u32,
    what: &str,
) -> Result<Option<(i64, String)>, MapError> {
    let mut file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(MapError::Io { path, source }),
    };
    let mut head = vec![0u8; 4096];
    let mut got = 0usize;
    loop {
        match file.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => {
                got += n;
                if got == head.len() {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => return Err(MapError::Io { path, source }),
        }
    }
    head.truncate(got);
    let invalid = |problem: String| MapError::Invalid {
        path: path.clone(),
        problem,
    };
    if head.len() < magic.len() + 4 || &head[..magic.len()] != magic {
        return Err(invalid(format!("not {what}")));
    }
    let format = u32_at(&head[magic.len()..], 0);
    if format != format_wanted {
        return Err(invalid(format!(
            "format {format}, this build reads {format_wanted}"
        )));
    }
    let mut r = In {
        bytes: &head,
        at: magic.len() + 4,
    };
    let head_rev = r.u64().map_err(invalid)? as i64;
    let key = r.section(1, |b| b[0]).map_err(invalid)?;
    let key = String::from_utf8(key).map_err(|_| invalid("key is not UTF-8".into()))?;
    Ok(Some((head_rev, key)))
}

/// The candidates file's name: the records of the persons the full run evaluated (the persons
/// an incremental run mostly re-evaluates), compressed in small blocks, so that an incremental
/// run reads them in one sequential read instead of by rev from the records table (random reads:
/// 5–19 s for 64,000 records at 1M people).
pub(crate) const CANDIDATES_FILE: &str = "candidates.bin";
const CANDIDATES_MAGIC: &[u8; 8] = b"VNCATCCR";
/// Raw bytes of records per block: a person or two, so that a run unpacks little besides the
/// persons it needs. Blocks this small compress well only with a shared dictionary
/// ([`CANDIDATE_DICTIONARY_BYTES`]); measured on a 10M-person run's file, 2 KB blocks with a
/// 16 KB dictionary packed 2.77× and unpacked in 5.2 µs, against 2.45× and 12.9 µs for 8 KB
/// blocks without one.
const CANDIDATE_BLOCK_BYTES: usize = 2 * 1024;

/// The size of the zstd dictionary trained on the file's first blocks and kept in its header.
const CANDIDATE_DICTIONARY_BYTES: usize = 16 * 1024;

/// Blocks the dictionary is trained on (the first ones written: held back until then).
const CANDIDATE_DICTIONARY_SAMPLES: usize = 2_000;

/// The largest raw block a reader accepts (a damaged length must not allocate gigabytes).
const CANDIDATE_BLOCK_MAX: usize = 64 << 20;

/// zstd level of the candidates' blocks (the fastest: the file is written during a full run).
const CANDIDATE_LEVEL: i32 = 1;

/// The candidates file's layout version (its own: it changes apart from the map's). Format 3
/// keeps records in their compact binary form (`SourceRecord::write_compact`), not as JSON:
/// decoding JSON was most of an incremental run's reading. Format 4: dates in that form are
/// one integer each, not text. Format 5: 2 KB blocks packed with a dictionary kept after the key.
const CANDIDATES_FORMAT: u32 = 5;

/// One person for the candidates file: its map group and its records, each as its rev (i64
/// LE), its compact form's length (u32 LE) and the compact form ([`push_candidate_record`]).
pub(crate) struct CandidatePerson {
    pub group: u32,
    pub entries: Vec<u8>,
}

/// Appends one record to a [`CandidatePerson`]'s entries.
pub(crate) fn push_candidate_record(
    entries: &mut Vec<u8>,
    rev: i64,
    record: &SourceRecord,
) -> Result<(), MapError> {
    let start = entries.len();
    entries.extend_from_slice(&rev.to_le_bytes());
    entries.extend_from_slice(&[0; 4]);
    record
        .write_compact(entries)
        .map_err(|e| MapError::Invalid {
            path: PathBuf::from(CANDIDATES_FILE),
            problem: format!("record {}: {e}", record.record_id),
        })?;
    let len = u32::try_from(entries.len() - start - 12).unwrap_or(u32::MAX);
    entries[start + 8..start + 12].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

/// Appends one entry whose compact form is already made (a record taken from an earlier
/// candidates file): its rev, length and bytes, as [`push_candidate_record`] lays them out.
pub(crate) fn push_candidate_entry(entries: &mut Vec<u8>, rev: i64, compact: &[u8]) {
    entries.extend_from_slice(&rev.to_le_bytes());
    entries.extend_from_slice(
        &u32::try_from(compact.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    entries.extend_from_slice(compact);
}

/// Writes the candidates file while a full run evaluates: each batch's persons are sent, as
/// their records are read for evaluation, to a thread that packs them into blocks (one zstd
/// context) and appends them to a temporary file. [`CandidateWriter::finish`] appends the
/// blocks' offsets and (group, block) sorted by group, then a checksum, and renames the file
/// into place; dropped unfinished (a stopped run), it leaves no file behind.
///
/// Layout: magic, format, head rev, key, the blocks' zstd dictionary (empty: none); the blocks;
/// block offsets; the index; the offsets' position (u64); the checksum of everything before it.
pub(crate) struct CandidateWriter {
    sender: Option<std::sync::mpsc::SyncSender<Vec<CandidatePerson>>>,
    thread: Option<std::thread::JoinHandle<Result<u64, MapError>>>,
    /// Set by `finish` before it closes the channel: the thread puts the file in place only
    /// then (closed without it, the run stopped, and the temporary file is removed).
    complete: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl CandidateWriter {
    pub(crate) fn start(dir: &Path, head_rev: i64, key: &str) -> Result<CandidateWriter, MapError> {
        let path = dir.join(CANDIDATES_FILE);
        let tmp = dir.join(format!("{CANDIDATES_FILE}.tmp"));
        let io = |source| MapError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let file = std::fs::File::create(&tmp).map_err(io)?;
        // A few batches in flight at most: the run's memory stays bounded if packing is slow.
        let (sender, batches) = std::sync::mpsc::sync_channel::<Vec<CandidatePerson>>(2);
        let key = key.to_string();
        let tmp_path = tmp.clone();
        let complete = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let done = std::sync::Arc::clone(&complete);
        let thread = std::thread::spawn(move || {
            let io = |source| MapError::Io {
                path: path.clone(),
                source,
            };
            let mut out = Out::to_file(file);
            out.bytes(CANDIDATES_MAGIC).map_err(io)?;
            out.bytes(&CANDIDATES_FORMAT.to_le_bytes()).map_err(io)?;
            out.u64(head_rev as u64).map_err(io)?;
            out.section(key.as_bytes(), 1, |b, buf| buf.push(*b))
                .map_err(io)?;
            let mut offsets: Vec<u64> = vec![0];
            let mut index: Vec<(u32, u32)> = Vec::new();
            let mut raw: Vec<u8> = Vec::new();
            let mut groups: Vec<u32> = Vec::new();
            // The first blocks are held back to train the dictionary on, then packed with it.
            let mut held: Vec<(Vec<u8>, Vec<u32>)> = Vec::new();
            let mut packer: Option<BlockPacker> = None;
            for batch in batches {
                for person in batch {
                    raw.extend_from_slice(&person.entries);
                    groups.push(person.group);
                    if raw.len() < CANDIDATE_BLOCK_BYTES {
                        continue;
                    }
                    let block = (std::mem::take(&mut raw), std::mem::take(&mut groups));
                    if let Some(p) = packer.as_mut() {
                        p.add(&block.0, &block.1, &mut out, &mut offsets, &mut index)
                            .map_err(io)?;
                        continue;
                    }
                    held.push(block);
                    if held.len() >= CANDIDATE_DICTIONARY_SAMPLES {
                        let mut p = BlockPacker::trained_on(&held, &mut out).map_err(io)?;
                        for (raw, groups) in held.drain(..) {
                            p.add(&raw, &groups, &mut out, &mut offsets, &mut index)
                                .map_err(io)?;
                        }
                        packer = Some(p);
                    }
                }
            }
            if !done.load(std::sync::atomic::Ordering::SeqCst) {
                drop(out);
                let _ = std::fs::remove_file(&tmp_path);
                return Err(MapError::Invalid {
                    path: tmp_path.clone(),
                    problem: "the run stopped before every batch was written".into(),
                });
            }
            if !groups.is_empty() {
                held.push((raw, groups));
            }
            let mut packer = match packer {
                Some(p) => p,
                None => BlockPacker::trained_on(&held, &mut out).map_err(io)?,
            };
            for (raw, groups) in held.drain(..) {
                packer
                    .add(&raw, &groups, &mut out, &mut offsets, &mut index)
                    .map_err(io)?;
            }
            index.sort_unstable();
            let at = offsets.last().copied().unwrap_or(0);
            out.section(&offsets, 8, |v, buf| {
                buf.extend_from_slice(&v.to_le_bytes())
            })
            .map_err(io)?;
            out.section(&index, 8, |(g, b), buf| {
                buf.extend_from_slice(&g.to_le_bytes());
                buf.extend_from_slice(&b.to_le_bytes());
            })
            .map_err(io)?;
            out.u64(at).map_err(io)?;
            out.finish_into(&tmp_path, &path).map_err(io)
        });
        Ok(CandidateWriter {
            sender: Some(sender),
            thread: Some(thread),
            complete,
        })
    }

    /// Sends a batch's persons to the writer (false if it has stopped, with an error that
    /// `finish` reports).
    pub(crate) fn send(&self, persons: Vec<CandidatePerson>) -> bool {
        self.sender
            .as_ref()
            .is_some_and(|s| s.send(persons).is_ok())
    }

    /// Writes the index and puts the file in place: its size in bytes.
    pub(crate) fn finish(mut self) -> Result<u64, MapError> {
        self.complete
            .store(true, std::sync::atomic::Ordering::SeqCst);
        drop(self.sender.take());
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(p)) => std::panic::resume_unwind(p),
            // `finish` takes the writer: the thread is always there.
            None => Ok(0),
        }
    }
}

impl Drop for CandidateWriter {
    fn drop(&mut self) {
        // Unfinished (a stopped run): the thread removes its temporary file.
        drop(self.sender.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Packs candidate blocks with the file's dictionary and appends them to the file.
struct BlockPacker {
    compressor: zstd::bulk::Compressor<'static>,
}

/// Fewer first blocks than this train no dictionary (a small store's file is small anyway).
const CANDIDATE_DICTIONARY_MIN_SAMPLES: usize = 64;

impl BlockPacker {
    /// Trains the dictionary on the first blocks, `samples`, and writes it to the header (an
    /// empty one when they are too few, or zstd cannot train on them: blocks are then packed
    /// without one, only less tightly).
    fn trained_on<W: Write>(
        samples: &[(Vec<u8>, Vec<u32>)],
        out: &mut Out<W>,
    ) -> std::io::Result<BlockPacker> {
        let raws: Vec<&[u8]> = samples.iter().map(|(raw, _)| raw.as_slice()).collect();
        let dictionary = if raws.len() < CANDIDATE_DICTIONARY_MIN_SAMPLES {
            Vec::new()
        } else {
            zstd::dict::from_samples(&raws, CANDIDATE_DICTIONARY_BYTES).unwrap_or_default()
        };
        out.section(&dictionary, 1, |b, buf| buf.push(*b))?;
        let compressor = if dictionary.is_empty() {
            zstd::bulk::Compressor::new(CANDIDATE_LEVEL)?
        } else {
            zstd::bulk::Compressor::with_dictionary(CANDIDATE_LEVEL, &dictionary)?
        };
        Ok(BlockPacker { compressor })
    }

    /// Packs the block of `groups`' records `raw` and appends it, with its offset and index.
    fn add<W: Write>(
        &mut self,
        raw: &[u8],
        groups: &[u32],
        out: &mut Out<W>,
        offsets: &mut Vec<u64>,
        index: &mut Vec<(u32, u32)>,
    ) -> std::io::Result<()> {
        if groups.is_empty() {
            return Ok(());
        }
        let number = u32::try_from(offsets.len() - 1).unwrap_or(u32::MAX);
        let packed = self.compressor.compress(raw)?;
        let raw_len = u32::try_from(raw.len()).unwrap_or(u32::MAX);
        out.bytes(&raw_len.to_le_bytes())?;
        out.bytes(&packed)?;
        let last = offsets.last().copied().unwrap_or(0);
        offsets.push(last + 4 + packed.len() as u64);
        index.extend(groups.iter().map(|&g| (g, number)));
        Ok(())
    }
}

/// Writes a candidates file in one go (tests; a run streams it with [`CandidateWriter`]).
#[cfg(test)]
pub(crate) fn write_candidates(
    dir: &Path,
    head_rev: i64,
    key: &str,
    persons: Vec<CandidatePerson>,
) -> Result<u64, MapError> {
    let writer = CandidateWriter::start(dir, head_rev, key)?;
    // In batches of three persons, as a run sends them.
    let mut persons = persons;
    while !persons.is_empty() {
        let rest = persons.split_off(persons.len().min(3));
        writer.send(persons);
        persons = rest;
    }
    writer.finish()
}

/// The candidates file, read back.
pub(crate) struct Candidates {
    pub head_rev: i64,
    pub key: String,
    /// The blocks' zstd dictionary (empty: packed without one).
    dictionary: Vec<u8>,
    offsets: Vec<u64>,
    /// (group, block), sorted.
    index: Column<(u32, u32)>,
    /// The mapped file and where its blocks are in it.
    file: Arc<MappedFile>,
    blocks: std::ops::Range<usize>,
}

impl Fixed for (u32, u32) {
    const WIDTH: usize = 8;
    fn read(b: &[u8]) -> (u32, u32) {
        (u32::read(b), u32::read(&b[4..]))
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.0.write(out);
        self.1.write(out);
    }
}

/// A candidates block that cannot be read.
pub(crate) fn damaged_block(b: u32, problem: String) -> MapError {
    MapError::Invalid {
        path: PathBuf::from(CANDIDATES_FILE),
        problem: format!("block {b}: {problem}"),
    }
}

impl Candidates {
    /// A zstd context to unpack this file's blocks (with its dictionary); failing to make one
    /// concerns no block.
    pub(crate) fn decompressor(&self) -> Result<zstd::bulk::Decompressor<'static>, MapError> {
        let made = if self.dictionary.is_empty() {
            zstd::bulk::Decompressor::new()
        } else {
            zstd::bulk::Decompressor::with_dictionary(&self.dictionary)
        };
        made.map_err(|e| MapError::Invalid {
            path: PathBuf::from(CANDIDATES_FILE),
            problem: format!("no zstd decompressor: {e}"),
        })
    }

    /// The block holding group `g`'s records, if the full run evaluated it.
    pub fn block_of(&self, g: u32) -> Option<u32> {
        let i = self.index.partition_point(|(group, _)| group < g);
        self.index
            .get(i)
            .filter(|&(group, _)| group == g)
            .map(|(_, b)| b)
    }

    /// Calls `each` with the rev and compact form of every record of block `b` (read it with
    /// `SourceRecord::read_compact`).
    #[cfg(test)]
    pub fn for_each_record(
        &self,
        decompressor: &mut zstd::bulk::Decompressor<'_>,
        b: u32,
        each: impl FnMut(i64, &[u8]) -> Result<(), MapError>,
    ) -> Result<(), MapError> {
        let raw = self.unpack(decompressor, b)?;
        Candidates::each_entry(b, &raw, each)
    }

    /// Block `b` unpacked (its entries are read with [`Candidates::each_entry`]).
    pub fn unpack(
        &self,
        decompressor: &mut zstd::bulk::Decompressor<'_>,
        b: u32,
    ) -> Result<Vec<u8>, MapError> {
        let i = b as usize;
        let blocks = &self.file.bytes()[self.blocks.clone()];
        let block = match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(&f), Some(&t)) if f + 4 <= t && (t as usize) <= blocks.len() => {
                &blocks[f as usize..t as usize]
            }
            _ => return Err(damaged_block(b, "no such block".into())),
        };
        let raw_len = u32_at(block, 0) as usize;
        if raw_len > CANDIDATE_BLOCK_MAX {
            return Err(damaged_block(
                b,
                format!("{raw_len} bytes unpacked is too large"),
            ));
        }
        let raw = decompressor
            .decompress(&block[4..], raw_len)
            .map_err(|e| damaged_block(b, format!("zstd: {e}")))?;
        if raw.len() != raw_len {
            return Err(damaged_block(
                b,
                format!("{} bytes unpacked, the block says {raw_len}", raw.len()),
            ));
        }
        Ok(raw)
    }

    /// Calls `each` with the rev and compact form of every entry of block `b`, unpacked as
    /// `raw`.
    pub fn each_entry(
        b: u32,
        raw: &[u8],
        mut each: impl FnMut(i64, &[u8]) -> Result<(), MapError>,
    ) -> Result<(), MapError> {
        let mut at = 0usize;
        while at < raw.len() {
            let head = raw
                .get(at..at + 12)
                .ok_or_else(|| damaged_block(b, format!("byte {at}: truncated entry")))?;
            let rev = u64_of(&head[..8]) as i64;
            let len = u32_at(&head[8..], 0) as usize;
            let body = raw
                .get(at + 12..at + 12 + len)
                .ok_or_else(|| damaged_block(b, format!("byte {at}: truncated record")))?;
            each(rev, body)?;
            at += 12 + len;
        }
        Ok(())
    }

    /// The records of block `b` whose revs `want` accepts, read from their compact form.
    #[cfg(test)]
    pub fn records_in(
        &self,
        decompressor: &mut zstd::bulk::Decompressor<'_>,
        b: u32,
        want: impl Fn(i64) -> bool,
        out: &mut Vec<(i64, SourceRecord)>,
    ) -> Result<(), MapError> {
        self.for_each_record(decompressor, b, |rev, bytes| {
            if want(rev) {
                let (record, _) =
                    SourceRecord::read_compact(bytes).map_err(|e| MapError::Invalid {
                        path: PathBuf::from(CANDIDATES_FILE),
                        problem: format!("block {b}, rev {rev}: {e}"),
                    })?;
                out.push((rev, record));
            }
            Ok(())
        })
    }
}

/// Rewrites the candidates file in `dir` with the same head, key and records, except that the
/// first record's compact form is garbage: a file whose checksum holds but one of whose blocks
/// cannot be read (tests of what a run does then).
#[cfg(test)]
pub(crate) fn rewrite_candidates_with_a_bad_record(dir: &Path) -> Result<(), MapError> {
    let c = read_candidates(dir)?.ok_or_else(|| damaged_block(0, "no file".into()))?;
    let mut decompressor = c.decompressor()?;
    let mut persons = Vec::new();
    for b in 0..u32::try_from(c.offsets.len() - 1).unwrap_or(0) {
        let raw = c.unpack(&mut decompressor, b)?;
        let mut entries = Vec::new();
        Candidates::each_entry(b, &raw, |rev, bytes| {
            if b == 0 && entries.is_empty() {
                push_candidate_entry(&mut entries, rev, &vec![0xFF; bytes.len()]);
            } else {
                push_candidate_entry(&mut entries, rev, bytes);
            }
            Ok(())
        })?;
        persons.push(CandidatePerson { group: b, entries });
    }
    write_candidates(dir, c.head_rev, &c.key.clone(), persons).map(|_| ())
}

/// Reads the candidates file in `dir`: `Ok(None)` when there is none.
pub(crate) fn read_candidates(dir: &Path) -> Result<Option<Candidates>, MapError> {
    let path = dir.join(CANDIDATES_FILE);
    let Some((file, body_len)) = open_checked(
        &path,
        CANDIDATES_MAGIC,
        CANDIDATES_FORMAT,
        "a candidates file",
    )?
    else {
        return Ok(None);
    };
    let body = &file.bytes()[..body_len];
    let invalid = |problem: String| MapError::Invalid {
        path: path.clone(),
        problem,
    };
    let parse = || -> Result<Candidates, String> {
        let mut head = In {
            bytes: body,
            at: CANDIDATES_MAGIC.len() + 4,
        };
        let head_rev = head.u64()? as i64;
        let key = String::from_utf8(head.section(1, |b| b[0])?)
            .map_err(|_| "key is not UTF-8".to_string())?;
        let dictionary = head.section(1, |b| b[0])?;
        let blocks_start = head.at;
        let (rest, index_at) = body.split_at(body.len() - 8);
        let blocks_len =
            usize::try_from(u64_of(index_at)).map_err(|_| "blocks too long".to_string())?;
        let index_start = blocks_start
            .checked_add(blocks_len)
            .filter(|&e| e <= rest.len())
            .ok_or_else(|| "the blocks run past the index".to_string())?;
        let mut tail = In {
            bytes: rest,
            at: index_start,
        };
        let offsets = tail.section(8, u64_of)?;
        let index = tail.column::<(u32, u32)>(&file)?;
        if tail.at != rest.len() {
            return Err(format!("{} bytes after the index", rest.len() - tail.at));
        }
        if offsets.first() != Some(&0)
            || offsets.windows(2).any(|w| w[0] > w[1])
            || offsets.last().copied() != Some(blocks_len as u64)
        {
            return Err("block offsets are not an ordered cover of the blocks".into());
        }
        Ok(Candidates {
            head_rev,
            key,
            dictionary,
            offsets,
            index,
            file: Arc::clone(&file),
            blocks: blocks_start..index_start,
        })
    };
    parse().map(Some).map_err(invalid)
}

/// The last full run's candidates file as the next full run reads it: by rev. A stored
/// record never changes, so a record that run evaluated is read from here in its compact form
/// (a seventh of its JSON pack's bytes, and decoded at a fraction of the cost) instead of
/// from its digest chunk's pack, which the run then need not read at all.
pub(crate) struct CandidatesByRev {
    candidates: Candidates,
    /// (rev, block) of every record in the file, sorted by rev.
    at: Vec<(i64, u32)>,
}

/// One record read from the candidates by rev: the record and its candidates entry (rev,
/// length and compact form, as [`push_candidate_record`] writes it), which the run's own
/// candidates file takes as it is.
pub(crate) struct CandidateRecord {
    pub rev: i64,
    pub record: SourceRecord,
    pub entry: Vec<u8>,
}

impl CandidatesByRev {
    /// Indexes every block's records by rev (each block unpacked once, on this thread).
    pub fn index(candidates: Candidates) -> Result<CandidatesByRev, MapError> {
        let mut decompressor = candidates.decompressor()?;
        let blocks = u32::try_from(candidates.offsets.len().saturating_sub(1))
            .map_err(|_| damaged_block(u32::MAX, "too many blocks".into()))?;
        let mut at = Vec::new();
        for b in 0..blocks {
            let raw = candidates.unpack(&mut decompressor, b)?;
            Candidates::each_entry(b, &raw, |rev, _| {
                at.push((rev, b));
                Ok(())
            })?;
        }
        at.sort_unstable();
        if let Some(w) = at.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(damaged_block(w[1].1, format!("rev {} twice", w[1].0)));
        }
        Ok(CandidatesByRev { candidates, at })
    }

    /// The store's last rev when the file was written.
    pub fn head_rev(&self) -> i64 {
        self.candidates.head_rev
    }

    /// Records in the file.
    pub fn len(&self) -> usize {
        self.at.len()
    }

    /// The block holding the record at `rev`, if the file has it.
    pub fn block_of(&self, rev: i64) -> Option<u32> {
        self.at
            .binary_search_by_key(&rev, |&(r, _)| r)
            .ok()
            .and_then(|i| self.at.get(i))
            .map(|&(_, b)| b)
    }

    /// The records at `wanted`: (block, rev) pairs sorted by block, each block unpacked once,
    /// on the calling thread. Every pair must name a block the record is in
    /// ([`CandidatesByRev::block_of`]); one that does not is damage, reported.
    pub fn read(&self, wanted: &[(u32, i64)]) -> Result<Vec<CandidateRecord>, MapError> {
        let mut decompressor = self.candidates.decompressor()?;
        let mut out = Vec::with_capacity(wanted.len());
        for group in wanted.chunk_by(|a, b| a.0 == b.0) {
            let b = group[0].0;
            let raw = self.candidates.unpack(&mut decompressor, b)?;
            let before = out.len();
            Candidates::each_entry(b, &raw, |rev, bytes| {
                if group.iter().any(|&(_, r)| r == rev) {
                    let (record, _) = SourceRecord::read_compact(bytes)
                        .map_err(|e| damaged_block(b, format!("rev {rev}: {e}")))?;
                    let mut entry = Vec::with_capacity(12 + bytes.len());
                    push_candidate_entry(&mut entry, rev, bytes);
                    out.push(CandidateRecord { rev, record, entry });
                }
                Ok(())
            })?;
            if out.len() - before != group.len() {
                return Err(damaged_block(
                    b,
                    format!(
                        "{} of {} records wanted here found",
                        out.len() - before,
                        group.len()
                    ),
                ));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn scratch(name: &str) -> PathBuf {
        let p =
            std::env::temp_dir().join(format!("verity_person_map_{name}_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        p
    }

    /// Three groups: records 0 and 2 share identifier 10; record 1 holds 20; record 3 none.
    fn links() -> MapLinks {
        let group_of = [0u32, 1, 0, 2];
        let starts = [0usize, 2, 3, 4];
        let members = [0u32, 2, 1, 3];
        let mut ids = vec![
            IdEntry::new(10, 0),
            IdEntry::new(10, 2),
            IdEntry::new(20 << 64, 1),
        ];
        ids.sort_unstable_by_key(IdEntry::hash);
        MapLinks::new(
            &starts,
            &members,
            &group_of,
            ids,
            |i| i64::from(i) + 100,
            |i| RecordLead::from_bytes([i as u8, 7]),
            |i| record_id_tag(&format!("R-{i}")),
        )
    }

    fn sweep() -> SweepIndex {
        SweepIndex::for_tests(vec![1, 5, 9], vec![(4, 2), (8, 0)])
    }

    #[test]
    fn a_written_map_reads_back_the_same() {
        let dir = scratch("round_trip");
        write_map(&dir, 1234, "store|lead-1|prio-1|policy", &links(), &sweep()).unwrap();
        assert_eq!(
            read_map_head(&dir).unwrap(),
            Some((1234, "store|lead-1|prio-1|policy".to_string()))
        );
        let map = read_map(&dir).unwrap().unwrap();
        assert_eq!(map.head_rev, 1234);
        let l = &map.links;
        assert_eq!((l.groups(), l.slots()), (3, 4));
        assert_eq!(l.group_of_identifier(10), Some(0));
        assert_eq!(l.group_of_identifier(20 << 64), Some(1));
        assert_eq!(l.group_of_identifier(30), None);
        assert_eq!(l.slots_of(0), 0..2);
        assert_eq!(l.slots_of(2), 3..4);
        assert_eq!(l.slots_of(3), 0..0);
        assert_eq!(
            (l.rev(0), l.rev(1), l.rev(2), l.rev(3)),
            (100, 102, 101, 103)
        );
        assert_eq!(l.lead(1), Some(RecordLead::from_bytes([2, 7])));
        assert_eq!(l.group_of_slot(2), Some(1));
        assert_eq!(l.group_of_slot(3), Some(2));
        let want: std::collections::HashSet<u32> = [record_id_tag("R-3")].into();
        assert_eq!(l.slots_with_id_tags(&want), vec![3]);
        assert!(map.sweep.is_citizen_key(5) && !map.sweep.is_citizen_key(4));
        assert_eq!(map.sweep.holder(4).unwrap(), Some(2));
        let _ = std::fs::remove_dir_all(dir);
    }

    /// The status index's entries are left out of the file's checksum and checked by the
    /// blocks each look-up reads: a damaged block fails the look-ups reading it, and only those.
    #[test]
    fn a_damaged_block_of_the_status_index_fails_only_the_lookups_reading_it() {
        let dir = scratch("status_blocks");
        let step = u64::MAX / 2000;
        let status: Vec<(u64, u32)> = (0..2000u32).map(|i| (u64::from(i) * step + 1, i)).collect();
        let sweep = SweepIndex::for_tests(vec![1], status.clone());
        write_map(&dir, 7, "k", &links(), &sweep).unwrap();
        let map = read_map(&dir).unwrap().unwrap();
        for &(h, g) in &status {
            assert_eq!(map.sweep.holder(h).unwrap(), Some(g));
        }
        assert_eq!(map.sweep.holder(5).unwrap(), None);
        let region = map.sweep.status_region().unwrap();
        assert!(region.start.is_multiple_of(SUMMED_BLOCK));
        assert!(region.len() > 5 * SUMMED_BLOCK, "{region:?}");
        drop(map);
        let path = dir.join(MAP_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        // The first entry's hash: in the region's first block.
        bytes[region.start] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        // The file's checksum does not cover the region.
        let map = read_map(&dir).unwrap().unwrap();
        let (first, last) = (status[0], status[1999]);
        let err = map.sweep.holder(first.0).unwrap_err();
        assert_eq!(err.block, 0);
        assert!(err.to_string().contains("damaged"), "{err}");
        assert_eq!(map.sweep.holder(last.0).unwrap(), Some(last.1));
        // The full run's question counts a damaged block as a holder outside.
        assert!(map.sweep.status_outside(&[first.0], first.1));
        assert!(!map.sweep.status_outside(&[last.0], last.1));
        let _ = std::fs::remove_dir_all(dir);
    }

    /// The map keeps revs in 32 bits: a store past that gets no map (runs then take the
    /// store path) rather than one with wrong revs.
    #[test]
    fn a_rev_past_32_bits_writes_no_map() {
        let dir = scratch("wide_rev");
        let links = MapLinks::new(
            &[0, 1],
            &[0],
            &[0],
            vec![IdEntry::new(10, 0)],
            |_| i64::from(u32::MAX) + 1,
            |_| RecordLead::from_bytes([0, 0]),
            |_| 0,
        );
        let err = write_map(&dir, 1, "k", &links, &sweep()).unwrap_err();
        assert!(err.to_string().contains("32 bits"), "{err}");
        assert!(read_map(&dir).unwrap().is_none());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn no_map_is_none_and_a_damaged_one_is_an_error_naming_the_file() {
        let dir = scratch("damaged");
        assert!(read_map(&dir).unwrap().is_none());
        assert!(read_map_head(&dir).unwrap().is_none());
        write_map(&dir, 7, "k", &links(), &sweep()).unwrap();
        let path = dir.join(MAP_FILE);
        let good = std::fs::read(&path).unwrap();
        for (what, bytes) in [
            ("truncated", good[..good.len() - 9].to_vec()),
            ("flipped", {
                let mut b = good.clone();
                let at = b.len() / 2;
                b[at] ^= 1;
                b
            }),
            ("not a map", b"something else entirely".to_vec()),
        ] {
            std::fs::write(&path, &bytes).unwrap();
            let err = match read_map(&dir) {
                Err(e) => e.to_string(),
                Ok(_) => panic!("{what}: read"),
            };
            assert!(err.contains(MAP_FILE), "{what}: {err}");
        }
        let mut other = good.clone();
        other[MAGIC.len()] = 99;
        std::fs::write(&path, &other).unwrap();
        let err = read_map_head(&dir).err().unwrap().to_string();
        assert!(err.contains("format 99"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Writes `persons` persons of two records each to a candidates file in `dir`, reads
    /// it back, and checks every person's records are found in its group's block.
    fn candidates_read_back(dir: &Path, persons: usize) -> Candidates {
        let record = |i: usize| SourceRecord {
            record_id: format!("R-{i}"),
            identity: verity_model::Identity {
                name: verity_model::PersonName::new(
                    &format!("{}{}", "X".repeat(300 + i % 50), i * 7919 % 1000),
                    "",
                    ["DOE", "ROE", "SMITH", "GARCIA"][i % 4],
                ),
                ..Default::default()
            },
            body: verity_model::RecordBody::Citizenship(verity_model::record::CitizenshipRecord {
                evidence: verity_model::record::CitizenshipEvidence::UsPassport,
                document_number: format!("P{i}"),
                issued: None,
            }),
        };
        // Groups 3, 10, 17, ... (not in order) with two records each; a block holds a few.
        let expected: Vec<(u32, Vec<(i64, SourceRecord)>)> = (0..persons)
            .map(|p: usize| {
                let group = ((p * 7 + 3) % 100_003) as u32;
                let records = (0..2)
                    .map(|k| ((p * 2 + k) as i64 + 1, record(p * 2 + k)))
                    .collect();
                (group, records)
            })
            .collect();
        let written: Vec<CandidatePerson> = expected
            .iter()
            .map(|(group, records)| {
                let mut entries = Vec::new();
                for (rev, r) in records {
                    push_candidate_record(&mut entries, *rev, r).unwrap();
                }
                CandidatePerson {
                    group: *group,
                    entries,
                }
            })
            .collect();
        write_candidates(dir, 40, "key", written).unwrap();
        let c = read_candidates(dir).unwrap().unwrap();
        assert_eq!((c.head_rev, c.key.as_str()), (40, "key"));
        assert!(c.offsets.len() > 2, "several blocks");
        let mut decompressor = c.decompressor().unwrap();
        for (group, records) in &expected {
            let b = c.block_of(*group).unwrap();
            let mut found = Vec::new();
            c.records_in(&mut decompressor, b, |_| true, &mut found)
                .unwrap();
            for r in records {
                assert!(found.contains(r));
            }
            // Only the revs asked for are read.
            let first = records[0].0;
            let mut one = Vec::new();
            c.records_in(&mut decompressor, b, |rev| rev == first, &mut one)
                .unwrap();
            assert_eq!(one, vec![records[0].clone()]);
        }
        c
    }

    #[test]
    fn candidates_of_many_blocks_are_packed_with_a_dictionary_and_read_back() {
        let dir = scratch("candidates_dictionary");
        // Past the blocks held back to train on, so that later blocks are packed as written.
        let c = candidates_read_back(&dir, 8_000);
        assert!(c.offsets.len() > CANDIDATE_DICTIONARY_SAMPLES + 100);
        assert!(!c.dictionary.is_empty(), "a dictionary was trained");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn candidates_read_back_by_group_and_a_damaged_file_is_refused() {
        let dir = scratch("candidates");
        let c = candidates_read_back(&dir, 60);
        // Too few blocks to train a dictionary on: packed without one.
        assert!(c.dictionary.is_empty());
        assert_eq!(c.block_of(1000), None);
        let path = dir.join(CANDIDATES_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.len() - 20;
        bytes[at] ^= 4;
        std::fs::write(&path, bytes).unwrap();
        let err = read_candidates(&dir).err().unwrap().to_string();
        assert!(
            err.contains("checksum") && err.contains(CANDIDATES_FILE),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn an_entry_pushed_from_its_compact_form_is_the_one_pushed_from_its_record() {
        for i in 0..5usize {
            let r = SourceRecord {
                record_id: format!("R-{i}"),
                identity: Default::default(),
                body: verity_model::RecordBody::Citizenship(
                    verity_model::record::CitizenshipRecord {
                        evidence: verity_model::record::CitizenshipEvidence::UsPassport,
                        document_number: format!("P{i}"),
                        issued: None,
                    },
                ),
            };
            let mut from_record = Vec::new();
            push_candidate_record(&mut from_record, i as i64 + 9, &r).unwrap();
            let mut compact = Vec::new();
            r.write_compact(&mut compact).unwrap();
            let mut from_compact = Vec::new();
            push_candidate_entry(&mut from_compact, i as i64 + 9, &compact);
            assert_eq!(from_record, from_compact);
        }
    }

    #[test]
    fn a_candidates_writer_dropped_unfinished_leaves_no_file() {
        let dir = scratch("candidates_stopped");
        let writer = CandidateWriter::start(&dir, 1, "key").unwrap();
        let mut entries = Vec::new();
        push_candidate_record(
            &mut entries,
            1,
            &SourceRecord {
                record_id: "R-1".into(),
                identity: Default::default(),
                body: verity_model::RecordBody::Citizenship(
                    verity_model::record::CitizenshipRecord {
                        evidence: verity_model::record::CitizenshipEvidence::UsPassport,
                        document_number: "P1".into(),
                        issued: None,
                    },
                ),
            },
        )
        .unwrap();
        assert!(writer.send(vec![CandidatePerson { group: 0, entries }]));
        drop(writer);
        assert!(!dir.join(CANDIDATES_FILE).exists());
        assert!(!dir.join(format!("{CANDIDATES_FILE}.tmp")).exists());
        assert!(read_candidates(&dir).unwrap().is_none());
        let _ = std::fs::remove_dir_all(dir);
    }

    proptest! {
        /// The checksum does not depend on how the bytes were split into writes.
        #[test]
        fn the_checksum_is_the_same_however_the_bytes_are_split(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            cuts in proptest::collection::vec(0usize..200, 0..6),
        ) {
            let mut whole = Checksum::default();
            whole.add(&bytes);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let mut parts = Checksum::default();
            let mut from = 0;
            for c in cuts {
                parts.add(&bytes[from..c]);
                from = c;
            }
            parts.add(&bytes[from..]);
            prop_assert_eq!(whole.finish(), parts.finish());
        }
    }
}
