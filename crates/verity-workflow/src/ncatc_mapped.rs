//! An incremental run with the last full run's person map (`ncatc_map.rs`): the records added
//! since the map are linked to the map's groups in memory, the persons are screened from the
//! map's per-record screen values, and the sweep looks in the map's index. Only the records of
//! the persons worth evaluating are read from the store, by rev.
//!
//! It reaches the same persons as following identifiers through the store (the other path,
//! `follow_identifiers`): the map's groups are closed under shared identifiers and records are
//! only added, so a person after the change is the union of the map's groups its new records
//! hold identifiers of, with those new records.

use super::person::{find, union};
use super::scan::map::overlay::{write_overlay, MapOverlay, MapStamp, OverlayLinks, Ragged};
use super::scan::map::{record_id_tag, Candidates, PersonMap};
use super::scan::{LeadProfile, SweepIndex, HELD_BY_MANY};
use super::*;
use rustc_hash::{FxHashMap, FxHashSet};
use verity_store::scan::{LeadFacets, RawRecord, RecordDigest};

/// The sweep of an incremental run with a map: the map's index (records up to its head) and
/// the keys of the records added since.
pub(super) struct MapSweep {
    index: SweepIndex,
    new_citizen: FxHashSet<u64>,
    /// Status key hash → the last of its holders in `new_status_chain`: the records added
    /// since the map that hold it, as a chain (one allocation for all, not a list per key).
    new_status: FxHashMap<u64, u32>,
    /// (index in `new_ids`, the key's previous holder or [`NO_HOLDER`]).
    new_status_chain: Vec<(u32, u32)>,
    /// Ids of the records added since the map, flat.
    new_ids: Ragged<u8>,
}

/// The end of a chain of holders in [`MapSweep`].
const NO_HOLDER: u32 = u32::MAX;

impl MapSweep {
    /// The map's index, and the added records' citizenship keys, ids and status keys (a list
    /// per record, in the order of `ids`).
    pub(super) fn new(
        index: SweepIndex,
        new_citizen: FxHashSet<u64>,
        new_ids: Ragged<u8>,
        status: &Ragged<u64>,
    ) -> MapSweep {
        let mut new_status: FxHashMap<u64, u32> = FxHashMap::default();
        let mut new_status_chain = Vec::with_capacity(status.items().len());
        for record in 0..status.len() {
            let at = u32::try_from(record).unwrap_or(NO_HOLDER);
            for &h in status.get(record) {
                let link = u32::try_from(new_status_chain.len()).unwrap_or(NO_HOLDER);
                let previous = new_status.insert(h, link).unwrap_or(NO_HOLDER);
                new_status_chain.push((at, previous));
            }
        }
        MapSweep {
            index,
            new_citizen,
            new_status,
            new_status_chain,
            new_ids,
        }
    }

    /// Ids of the added records holding status key `h`.
    fn new_status_holders(&self, h: u64) -> impl Iterator<Item = &str> {
        let mut link = self.new_status.get(&h).copied().unwrap_or(NO_HOLDER);
        std::iter::from_fn(move || {
            let &(record, previous) = self.new_status_chain.get(link as usize)?;
            link = previous;
            // Ids are UTF-8 (the overlay checks them when read; the others are strings).
            std::str::from_utf8(self.new_ids.get(record as usize)).ok()
        })
    }

    /// Whether a citizenship key of the person made of `records` is held by a record with
    /// citizenship evidence.
    pub(super) fn citizen_match(&self, records: &[SourceRecord]) -> bool {
        person::person_citizen_key_hashes(records)
            .iter()
            .any(|&h| self.new_citizen.contains(&h) || self.index.is_citizen_key(h))
    }

    /// Whether a record outside the person made of map groups `groups` and `records` holds
    /// one of its status keys; `None` when the map cannot tell: a key held in several groups,
    /// and the person spans several (the caller asks the store, exactly).
    pub(super) fn status_outside(&self, records: &[SourceRecord], groups: &[u32]) -> Option<bool> {
        // A person's records are few: a linear search beats hashing their ids.
        let own = |id: &str| records.iter().any(|r| r.record_id == id);
        let mut unsure = false;
        for h in person::person_status_key_hashes(records) {
            if self.new_status_holders(h).any(|id| !own(id)) {
                return Some(true);
            }
            match self.index.holder(h) {
                // A damaged block of the map: the store answers instead.
                Err(e) => {
                    tracing::warn!("{e}; the store is asked instead");
                    unsure = true;
                }
                Ok(None) => {}
                // Held in two groups or more: one is outside unless the person holds several.
                Ok(Some(HELD_BY_MANY)) if groups.len() <= 1 => return Some(true),
                Ok(Some(HELD_BY_MANY)) => unsure = true,
                Ok(Some(g)) if !groups.contains(&g) => return Some(true),
                Ok(Some(_)) => {}
            }
        }
        if unsure {
            None
        } else {
            Some(false)
        }
    }
}

/// A record added since the map, as an incremental run with the map reads it: its digest,
/// from its insert's digest chunk (or made here from its JSON when it has none), and the
/// record itself once decoded. Most are never decoded: linking and the screen need only the
/// digest, and only the persons worth evaluating are read whole.
pub(super) struct NewRecord {
    pub rev: i64,
    pub digest: RecordDigest,
    /// Boxed: a record is some 700 bytes inline, and a run holds hundreds of thousands of
    /// these, most without one.
    pub record: Option<Box<SourceRecord>>,
    /// Its insert stored its digest chunk, and with it its sweep keys.
    pub keyed: bool,
}

/// The record packs of the digest chunks an incremental run read: where the records it did not
/// decode up front are read from when a person holding them is evaluated.
#[derive(Default)]
pub(super) struct NewPacks {
    chunks: Vec<PackChunk>,
}

/// One digest chunk's revs and record pack (none in chunks stored before packs were).
struct PackChunk {
    first: i64,
    last: i64,
    pack: Option<Vec<u8>>,
}

impl NewPacks {
    /// Adds the chunks of `other`.
    pub(super) fn append(&mut self, mut other: NewPacks) {
        self.chunks.append(&mut other.chunks);
    }

    /// The records with these revs, from the packs on the machine's cores (the store for
    /// any a pack lacks), and how many were read from the store.
    pub(super) async fn decode(
        &self,
        store: &Store,
        revs: &HashSet<i64>,
    ) -> Result<(HashMap<i64, SourceRecord>, u64), RunError> {
        let mut by_rev = self.unpack(revs)?;
        let from_store = read_missing(store, revs, &mut by_rev).await?;
        Ok((by_rev, from_store))
    }

    /// The records with these revs that the packs hold, decoded on the machine's cores. A
    /// rev no pack holds is left out (`read_missing` reads it). Synchronous, so that a run
    /// can unpack on a thread of its own beside other reads.
    pub(super) fn unpack(
        &self,
        revs: &HashSet<i64>,
    ) -> Result<HashMap<i64, SourceRecord>, StoreError> {
        if revs.is_empty() {
            return Ok(HashMap::new());
        }
        // The chunks holding one of the revs, found by binary search (a chunk a rev).
        let mut sorted: Vec<i64> = revs.iter().copied().collect();
        sorted.sort_unstable();
        let chunks: Vec<&PackChunk> = self
            .chunks
            .iter()
            .filter(|c| {
                let i = sorted.partition_point(|&r| r < c.first);
                c.pack.is_some() && sorted.get(i).is_some_and(|&r| r <= c.last)
            })
            .collect();
        let parts: Vec<&[&PackChunk]> = chunks
            .chunks(chunks.len().div_ceil(worker_threads()).max(1))
            .collect();
        let unpacked = par_map(&parts, |_, part| {
            let mut unpacker = verity_store::scan::RecordUnpacker::new();
            let mut out = Vec::new();
            for chunk in part.iter() {
                let Some(pack) = &chunk.pack else { continue };
                let mut raw = Vec::new();
                unpacker.for_each(chunk.first, pack, |rev, id, json| {
                    if revs.contains(&rev) {
                        raw.push(RawRecord {
                            rev,
                            record_id: id.to_string(),
                            json: json.to_string(),
                        });
                    }
                })?;
                for r in raw {
                    out.push((r.rev, r.decode()?));
                }
            }
            Ok::<_, StoreError>(out)
        });
        let mut by_rev: HashMap<i64, SourceRecord> = HashMap::with_capacity(revs.len());
        for part in unpacked {
            by_rev.extend(part?);
        }
        Ok(by_rev)
    }
}

/// Reads from the store the records of `revs` that `by_rev` lacks (their chunks stored no
/// pack) into it; returns how many.
pub(super) async fn read_missing(
    store: &Store,
    revs: &HashSet<i64>,
    by_rev: &mut HashMap<i64, SourceRecord>,
) -> Result<u64, RunError> {
    let missing: Vec<i64> = revs
        .iter()
        .copied()
        .filter(|r| !by_rev.contains_key(r))
        .collect();
    let mut from_store = 0u64;
    for part in missing.chunks(WHOLE_READ_PART) {
        let raw = store.records_by_revs(part).await?;
        from_store += raw.len() as u64;
        by_rev.extend(raw.iter().map(|r| r.rev).zip(decode_parallel(&raw)?));
    }
    Ok(from_store)
}

/// Digest chunks an incremental run reads at a time.
const CHUNKS_PER_READ: u32 = 16;

/// The records with `after < rev <= to_rev` as digests: from the digest chunks their inserts
/// stored (one sequential read of a few bytes a record, where their JSON is ten times that
/// and decoding it was most of an incremental run), and from their JSON for any record
/// without one. None is decoded here (the open leads a change bears on are found from its
/// digest's key hashes); also returns the packs, where the records of the persons evaluated
/// are decoded from.
pub(super) async fn read_new_records(
    store: &Store,
    after: i64,
    to_rev: i64,
    page_size: u32,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<(Vec<NewRecord>, NewPacks), RunError> {
    let mut new: Vec<NewRecord> =
        Vec::with_capacity(usize::try_from(to_rev - after).unwrap_or(0).min(1 << 24));
    let mut packs = NewPacks::default();
    // Chunks do not straddle a run's head, but should one hold `after + 1`, start at it.
    let mut first_after = match store.digest_spans(after, after + 1).await?.first() {
        Some(&(first, _)) if first <= after => first - 1,
        _ => after,
    };
    // The next chunks are read (on the database's thread) while the last are taken apart
    // here, so the two overlap whether the reads come from disk or the page cache.
    let mut chunks = store
        .record_digest_chunks(first_after, to_rev, CHUNKS_PER_READ)
        .await?;
    while let Some(last) = chunks.last() {
        first_after = last.first_rev;
        let read_next = store.record_digest_chunks(first_after, to_rev, CHUNKS_PER_READ);
        let take_apart = async {
            for chunk in std::mem::take(&mut chunks) {
                chunk.for_each(|d| {
                    if d.rev > after && d.rev <= to_rev {
                        new.push(NewRecord {
                            rev: d.rev,
                            digest: d.to_owned_digest(),
                            record: None,
                            keyed: true,
                        });
                    }
                })?;
                packs.chunks.push(PackChunk {
                    first: chunk.first_rev,
                    last: chunk.last_rev,
                    pack: chunk.pack,
                });
            }
            progress(Progress::Scanning {
                done: new.len() as u64,
                total: u64::try_from(to_rev - after).unwrap_or(0),
            });
            Ok::<(), StoreError>(())
        };
        let (next, taken) = tokio::join!(read_next, take_apart);
        taken?;
        chunks = next?;
    }
    new.sort_by_key(|n| n.rev);
    new.dedup_by_key(|n| n.rev);
    // Revs no chunk holds (an insert that stopped before its chunk): read as JSON.
    let mut gaps: Vec<(i64, i64)> = Vec::new();
    let mut next = after + 1;
    for n in &new {
        if n.rev > next {
            gaps.push((next - 1, n.rev - 1));
        }
        next = n.rev + 1;
    }
    if next <= to_rev {
        gaps.push((next - 1, to_rev));
    }
    for (mut from, upto) in gaps {
        loop {
            let page = store.scan_record_json(from, upto, page_size.max(1)).await?;
            let Some(last) = page.last() else { break };
            from = last.rev;
            let decoded = decode_parallel(&page)?;
            new.extend(page.iter().zip(decoded).map(|(raw, record)| NewRecord {
                rev: raw.rev,
                digest: RecordDigest::of(raw.rev, &record),
                record: Some(Box::new(record)),
                keyed: false,
            }));
        }
    }
    new.sort_by_key(|n| n.rev);
    Ok((new, packs))
}

/// A record an incremental run with a map links: added since the map, or an open lead's
/// subject the changes bear on that the map does not place.
struct Added {
    digest: RecordDigest,
    /// `None` until read: only the records of the persons worth evaluating are.
    record: Option<Box<SourceRecord>>,
    /// Changed since the last run, or a subject the changes bear on: its person is evaluated.
    wanted: bool,
    /// Its person key has an open lead: its person is evaluated whatever the screen says.
    /// (Found before the sweep takes the digest's id, so the screen needs no id.)
    open: bool,
}

/// What an incremental run has read before it finds the persons with the map.
pub(super) struct Changes {
    /// Records added after the map (or after `kept`, when there is one), in rev order: those
    /// up to `changed_from` (the last run's head) are not in the map but have not changed
    /// since the last run; the rest have.
    pub new: Vec<NewRecord>,
    /// The records after the map up to `changed_from`, as the last run kept them; empty when
    /// it kept none (then `new` holds them).
    pub kept: MapOverlay,
    /// The last run's head: records of `new` past it changed since that run.
    pub changed_from: i64,
    /// Where the records of `new` not yet decoded are read from.
    pub packs: NewPacks,
    /// Open leads' subjects the changes bear on (read by id).
    pub bearing: Vec<SourceRecord>,
    pub records_scanned: u64,
    pub records_read: u64,
    /// Where this run keeps the records since the map for the next run, if anywhere.
    pub keep: Option<KeepFor>,
}

/// Where and for which map an incremental run keeps its records since the map ([`overlay`]).
pub(super) struct KeepFor {
    pub dir: std::path::PathBuf,
    pub stamp: MapStamp,
    /// The run's head: the overlay holds the records up to it.
    pub head_rev: i64,
}

/// The map groups of `unplaced`, records that hold no identifier (each is a group of its
/// own), found by record-id tag and confirmed by reading the tagged slots' records: a tag is
/// 32 bits, so another record may share it. The records placed are taken out of `unplaced`;
/// those the map does not hold stay.
pub(super) async fn place_by_record_id(
    store: &Store,
    links: &super::scan::map::MapLinks,
    unplaced: &mut HashMap<String, SourceRecord>,
) -> Result<Vec<u32>, StoreError> {
    if unplaced.is_empty() {
        return Ok(Vec::new());
    }
    let tags: HashSet<u32> = unplaced.keys().map(|id| record_id_tag(id)).collect();
    let group_of_rev: HashMap<i64, u32> = links
        .slots_with_id_tags(&tags)
        .into_iter()
        .filter_map(|slot| Some((links.rev(slot), links.group_of_slot(slot)?)))
        .collect();
    let revs: Vec<i64> = group_of_rev.keys().copied().collect();
    let mut groups = Vec::new();
    for raw in store.records_by_revs(&revs).await? {
        if let (Some(_), Some(&g)) = (unplaced.remove(&raw.record_id), group_of_rev.get(&raw.rev)) {
            groups.push(g);
        }
    }
    Ok(groups)
}

/// The candidates file as the map's thread opens it, checked.
pub(super) type CandidatesOpened = Result<Option<Candidates>, super::scan::map::MapError>;

/// The candidates of the map a run uses, being checked on the map's thread.
pub(super) struct PendingCandidates {
    pub opened: std::sync::mpsc::Receiver<CandidatesOpened>,
    /// The map's head and key: candidates are used only with the map they were written with.
    pub head_rev: i64,
    pub key: String,
}

impl PendingCandidates {
    /// The candidates once checked, when they are the map's, and what became of them.
    fn wait(self) -> (Option<Candidates>, String) {
        let opened = self.opened.recv().unwrap_or_else(|_| {
            Err(super::scan::map::MapError::Invalid {
                path: super::scan::map::CANDIDATES_FILE.into(),
                problem: "the thread opening it stopped".into(),
            })
        });
        match opened {
            Ok(Some(c)) if c.head_rev == self.head_rev && c.key == self.key => {
                (Some(c), "with its candidates".to_string())
            }
            Ok(Some(_)) => (None, "candidates of another map not used".to_string()),
            Ok(None) => (None, "no candidates".to_string()),
            Err(e) => (None, format!("candidates not used: {e}")),
        }
    }
}

/// The persons of an incremental run, found with the map, and what became of the map's
/// candidates.
pub(super) async fn population(
    store: &Store,
    map: PersonMap,
    candidates: PendingCandidates,
    screen: &LeadScreen,
    open: &HashMap<String, String>,
    changes: Changes,
    clock: &mut PhaseClock,
) -> Result<(Population, String), RunError> {
    let links = &map.links;
    let changed_from = changes.changed_from;
    let changed_records = changes.new.iter().filter(|n| n.rev > changed_from).count();
    // The records the last run kept are nodes 0..kept_count, the added ones follow. The kept
    // records' links grow into this run's own: the added records since the map are appended.
    let MapOverlay {
        links: mut overlay_links,
        keys: kept_keys,
        index: kept_index,
        ..
    } = changes.kept;
    let kept_count = overlay_links.revs.len();
    // Moved, not partitioned: at 1% of 10M people these are 400,000 digests.
    let mut added: Vec<Added> = changes
        .new
        .into_iter()
        .map(|n| Added {
            wanted: n.rev > changed_from,
            digest: n.digest,
            record: n.record,
            open: false,
        })
        .collect();
    // The added records read from the store (the subjects placed below are not added since
    // the map): these and the kept ones are what this run keeps for the next.
    let added_since = added.len();
    // The subjects the changes bear on: placed in the map by identifier, else (a record
    // without one is a group of its own) by record-id tag, confirmed by reading the slot's
    // record (a tag is 32 bits); one the map does not place is taken as added.
    // The subjects are few and the added records many: one pass over the added records with
    // a set of the subjects' ids, not an index of every added record's id. (A record id added
    // at two revs marks both, as the store path does.)
    // The record ids whose person key has an open lead (a person key is `NP-` and a record id).
    let open_ids: FxHashSet<&str> = open.keys().filter_map(|k| k.strip_prefix("NP-")).collect();
    let open_tags: FxHashSet<u32> = open_ids.iter().map(|id| record_id_tag(id)).collect();
    // The kept records that are subjects, and those whose person key has an open lead: one
    // pass over their ids.
    let mut kept_wanted = vec![false; kept_count];
    let mut kept_open = vec![false; kept_count];
    let already: Vec<bool> = {
        let subjects: FxHashSet<&str> = changes
            .bearing
            .iter()
            .map(|r| r.record_id.as_str())
            .collect();
        let mut found: FxHashSet<&str> = FxHashSet::default();
        if !subjects.is_empty() {
            for a in added.iter_mut() {
                if let Some(&id) = subjects.get(a.digest.record_id.as_str()) {
                    a.wanted = true;
                    found.insert(id);
                }
            }
        }
        if !subjects.is_empty() || !open_ids.is_empty() {
            for j in 0..kept_count {
                let id = kept_keys.id(j);
                if let Some(&subject) = subjects.get(id) {
                    kept_wanted[j] = true;
                    found.insert(subject);
                }
                kept_open[j] = open_ids.contains(id);
            }
        }
        changes
            .bearing
            .iter()
            .map(|r| found.contains(r.record_id.as_str()))
            .collect()
    };
    let mut bearing_groups: Vec<u32> = Vec::new();
    let mut unplaced: HashMap<String, SourceRecord> = HashMap::new();
    for (r, already) in changes.bearing.into_iter().zip(already) {
        if already {
            continue;
        }
        let groups: Vec<u32> = person::strong_keys(&r)
            .iter()
            .filter_map(|(tag, v)| {
                links.group_of_identifier(verity_store::scan::identifier_hash(*tag, v))
            })
            .collect();
        if groups.is_empty() {
            unplaced.insert(r.record_id.clone(), r);
        } else {
            bearing_groups.extend(groups);
        }
    }
    bearing_groups.extend(place_by_record_id(store, links, &mut unplaced).await?);
    added.extend(unplaced.into_values().map(|record| Added {
        digest: RecordDigest::of(0, &record),
        record: Some(Box::new(record)),
        wanted: true,
        open: false,
    }));
    // Their keys, for the sweep (the map's index stops at its head), keyed on a thread of its
    // own: with 800,000 records since the map that is a third of a second of hashing on the
    // run's path, while the look-ups and candidate reads below run on more threads than cores
    // (which wait on the map's pages when a change evicted them). The sweep is first asked
    // after the persons are read.
    // The keys and ids are moved out of the digests: nothing after this reads them (the
    // screen has the open-lead mark instead of the id).
    let mut added_keys: Vec<(Vec<u64>, Vec<u64>, String)> = Vec::with_capacity(added.len());
    for a in added.iter_mut() {
        a.open = open_ids.contains(a.digest.record_id.as_str());
        let d = &mut a.digest;
        added_keys.push((
            std::mem::take(&mut d.citizen_keys),
            std::mem::take(&mut d.status_keys),
            std::mem::take(&mut d.record_id),
        ));
    }
    let index = map.sweep;
    // The overlay's links part is sent once the persons are read; its keys part is made on
    // the keying thread, which also writes the file (beside the evaluation).
    let (send_links, links_for_file) = std::sync::mpsc::sync_channel::<OverlayLinks>(1);
    let keep = changes.keep;
    let overlay_count = kept_count + added_since;
    let keying = std::thread::spawn(move || {
        let mut keys = kept_keys;
        for (citizen, status, id) in &added_keys {
            keys.citizen.push(citizen);
            keys.status.push(status);
            keys.ids.push(id.as_bytes());
        }
        // Freed here too, not on the run's path.
        drop(added_keys);
        let mut new_citizen: FxHashSet<u64> =
            FxHashSet::with_capacity_and_hasher(keys.citizen.items().len(), Default::default());
        new_citizen.extend(keys.citizen.items().iter().copied());
        let sweep = MapSweep::new(index, new_citizen, keys.ids.clone(), &keys.status);
        let writer = keep.map(|keep| {
            std::thread::spawn(move || {
                let Ok(links) = links_for_file.recv() else {
                    return "records since the map not kept: the run did not use the map"
                        .to_string();
                };
                keys.truncate(overlay_count);
                let overlay = MapOverlay {
                    head_rev: keep.head_rev,
                    links,
                    keys,
                    index: Default::default(),
                };
                match write_overlay(&keep.dir, keep.stamp, &overlay, Some(changed_from)) {
                    Ok(bytes) => format!(
                        "kept {} records since the map for the next run ({bytes} bytes)",
                        overlay.len()
                    ),
                    Err(e) => format!("records since the map not kept: {e}"),
                }
            })
        });
        (sweep, writer)
    });
    clock.lap("place bearing subjects and key the added records", || {
        format!(
            "{} records added, {kept_count} kept by the last run",
            added.len()
        )
    });
    // Nodes: the kept records (0..kept_count), the added ones, then each map group reached.
    let records_nodes = kept_count + added.len();
    let mut parent: Vec<usize> = (0..records_nodes).collect();
    let mut node_of_group: FxHashMap<u32, usize> = FxHashMap::default();
    let mut group_of_node: Vec<u32> = Vec::new();
    // A group's node, and whether it is new (its kept records are then to be found).
    let mut node = |g: u32, parent: &mut Vec<usize>| -> (usize, bool) {
        match node_of_group.entry(g) {
            std::collections::hash_map::Entry::Occupied(o) => (*o.get(), false),
            std::collections::hash_map::Entry::Vacant(v) => {
                parent.push(parent.len());
                group_of_node.push(g);
                (*v.insert(parent.len() - 1), true)
            }
        }
    };
    // The map groups of the added records' identifiers, looked up on more threads than cores
    // (a look-up is a few random reads in the mapped file, from disk after a change); then
    // joined in order on one.
    let map_groups: Vec<Vec<Option<u32>>> = par_map_on(MAPPED_LOOKUP_THREADS, &added, |_, a| {
        a.digest
            .identifiers
            .iter()
            .map(|&h| links.group_of_identifier(h))
            .collect()
    });
    clock.lap("look up the added records' identifiers in the map", || {
        format!(
            "{} identifiers",
            map_groups.iter().map(Vec::len).sum::<usize>()
        )
    });
    // Records sharing an identifier the map holds meet at its group's node; only the
    // identifiers new since the map need an owner of their own.
    let mut key_owner: FxHashMap<u128, usize> = FxHashMap::default();
    let mut own = |h: u128, n: usize, parent: &mut Vec<usize>| match key_owner.entry(h) {
        std::collections::hash_map::Entry::Occupied(o) => union(parent, n, *o.get()),
        std::collections::hash_map::Entry::Vacant(v) => {
            v.insert(n);
        }
    };
    // Where the kept records are to be looked for: the groups first reached and the new
    // identifiers met.
    let mut reached_groups: Vec<u32> = Vec::new();
    let mut met_identifiers: Vec<u128> = Vec::new();
    let (mut record_groups, mut record_new) = (Vec::new(), Vec::new());
    for (i, (a, groups)) in added.iter().zip(&map_groups).enumerate() {
        let at = kept_count + i;
        record_groups.clear();
        record_new.clear();
        for (&h, group) in a.digest.identifiers.iter().zip(groups) {
            if let Some(g) = *group {
                let (n, new) = node(g, &mut parent);
                union(&mut parent, at, n);
                if new {
                    reached_groups.push(g);
                }
                if !record_groups.contains(&g) {
                    record_groups.push(g);
                }
                continue;
            }
            record_new.push(h);
            met_identifiers.push(h);
            own(h, at, &mut parent);
        }
        if i < added_since {
            overlay_links.revs.push(a.digest.rev);
            // The digest's facets are the record's (`LeadFacets::of`, when it was stored):
            // the same screen as `LeadScreen::decoded` of the record.
            let d = &a.digest;
            overlay_links
                .leads
                .push(screen.record(d.system, d.facets.as_ref().map(LeadFacets::as_facets_ref)));
            overlay_links.groups.push(&record_groups);
            overlay_links.new_identifiers.push(&record_new);
        }
    }
    drop(map_groups);
    let wanted_nodes: Vec<usize> = bearing_groups
        .into_iter()
        .map(|g| {
            let (n, new) = node(g, &mut parent);
            if new {
                reached_groups.push(g);
            }
            n
        })
        .collect();
    // The kept records join as the last run found them, but only those a change reaches: a
    // kept record is in a person touched only through a group or a new identifier it shares
    // with an added record, a subject, or a kept record reached. Followed from those, so the
    // link's work grows with the persons touched, not with every record since the map (which
    // cost the link and the screen 0.6 s at 1.25M records, three changes of 1% behind).
    let mut seen = vec![false; kept_count];
    let mut reached: Vec<usize> = Vec::new();
    let mut reach = |j: usize, reached: &mut Vec<usize>| {
        if let Some(s) = seen.get_mut(j).filter(|s| !**s) {
            *s = true;
            reached.push(j);
        }
    };
    for &g in &reached_groups {
        kept_index
            .with_group(g)
            .for_each(|j| reach(j, &mut reached));
    }
    for &h in &met_identifiers {
        kept_index
            .with_identifier(h)
            .for_each(|j| reach(j, &mut reached));
    }
    for (j, _) in kept_wanted.iter().enumerate().filter(|(_, &w)| w) {
        reach(j, &mut reached);
    }
    let mut kept_reached = 0usize;
    while let Some(j) = reached.pop() {
        kept_reached += 1;
        for &g in overlay_links.groups.get(j) {
            let (n, new) = node(g, &mut parent);
            union(&mut parent, j, n);
            if new {
                kept_index
                    .with_group(g)
                    .for_each(|k| reach(k, &mut reached));
            }
        }
        for &h in overlay_links.new_identifiers.get(j) {
            own(h, j, &mut parent);
            kept_index
                .with_identifier(h)
                .for_each(|k| reach(k, &mut reached));
        }
    }
    drop(key_owner);
    let groups_reached = group_of_node.len();
    clock.lap("link to the map", || {
        format!(
            "{} records added since the map ({changed_records} changed since the last run, \
             {kept_reached} of {kept_count} kept reached), {groups_reached} map groups reached",
            kept_count + added.len()
        )
    });

    // Components holding a wanted node are the persons touched: (map groups, record nodes)
    // each, found through its root (a node number, so vectors serve where maps would).
    let mut wanted_root = vec![false; parent.len()];
    let wanted_kept = kept_wanted.iter().enumerate().filter(|(_, &w)| w);
    let wanted_added = added.iter().enumerate().filter(|(_, a)| a.wanted);
    for n in wanted_kept
        .map(|(j, _)| j)
        .chain(wanted_added.map(|(i, _)| kept_count + i))
        .chain(wanted_nodes)
    {
        let root = find(&mut parent, n);
        wanted_root[root] = true;
    }
    let mut component_of_root: Vec<Option<usize>> = vec![None; parent.len()];
    let mut components: Vec<(Vec<u32>, Vec<usize>)> = Vec::new();
    for n in 0..parent.len() {
        let root = find(&mut parent, n);
        if !wanted_root[root] {
            continue;
        }
        let c = *component_of_root[root].get_or_insert_with(|| {
            components.push(Default::default());
            components.len() - 1
        });
        let entry = &mut components[c];
        match n.checked_sub(records_nodes) {
            None => entry.1.push(n),
            Some(k) => entry.0.extend(group_of_node.get(k).copied()),
        }
    }
    drop(component_of_root);
    let persons_total = components.len() as u64;
    // The screen, on more threads than cores (it reads the map's slots).
    let keep = par_map_on(MAPPED_LOOKUP_THREADS, &components, |_, (groups, nodes)| {
        let mut profile = LeadProfile::default();
        let mut has_open = false;
        for &g in groups {
            for slot in links.slots_of(g) {
                if let Some(lead) = links.lead(slot) {
                    profile.add(lead);
                }
                // A tag shared by chance only makes the person evaluated.
                has_open |= open_tags.contains(&links.id_tag(slot));
            }
        }
        for &n in nodes {
            if let Some(&lead) = overlay_links.leads.get(n) {
                profile.add(lead);
            } else if let Some(a) = n.checked_sub(kept_count).and_then(|i| added.get(i)) {
                // A subject placed above: screened from its digest, as the others were.
                let d = &a.digest;
                profile
                    .add(screen.record(d.system, d.facets.as_ref().map(LeadFacets::as_facets_ref)));
            }
            has_open |= match n.checked_sub(kept_count) {
                None => kept_open.get(n).copied().unwrap_or(false),
                Some(i) => added.get(i).is_some_and(|a| a.open),
            };
        }
        has_open || screen.could_lead(&profile)
    });
    let mut worth: Vec<(Vec<u32>, Vec<usize>)> = components
        .into_iter()
        .zip(keep)
        .filter_map(|(c, k)| k.then_some(c))
        .collect();
    for (groups, _) in &mut worth {
        groups.sort_unstable();
    }
    clock.lap("screen by the map", || {
        format!("{persons_total} persons touched, {} pass", worth.len())
    });

    // Only the persons worth evaluating are read whole: from the candidates file when the
    // full run evaluated them, else by rev from the store, a part at a time. Each thread (more
    // than cores: the blocks are on disk after a change) takes a share of the persons and
    // decodes their records from the candidate blocks straight into the person's own buffer,
    // sized once: at 10M people some 800,000 records of several hundred bytes, where every
    // extra copy lands in freshly zeroed pages (a quarter of a run's CPU time went to the
    // kernel zeroing pages). Persons are ordered by their first block, so a thread's
    // consecutive persons share blocks and each is unpacked about once.
    let (candidates, candidates_note) = candidates.wait();
    let block_of = |g: u32| candidates.as_ref().and_then(|c| c.block_of(g));
    worth.sort_by_cached_key(|(groups, _)| groups.iter().filter_map(|&g| block_of(g)).min());
    let persons_count = worth.len();
    let mut person_records: Vec<Vec<SourceRecord>> = worth
        .iter()
        .map(|(groups, nodes)| {
            Vec::with_capacity(
                nodes.len()
                    + groups
                        .iter()
                        .map(|&g| links.slots_of(g).len())
                        .sum::<usize>(),
            )
        })
        .collect();
    let mut records_read = changes.records_read;
    // (rev, person) of the records not found in a block, read from the store below.
    let mut to_read: Vec<(i64, u32)> = Vec::new();
    let mut unreadable: Vec<String> = Vec::new();
    // The records since the map of these persons: the added ones from their chunks' packs,
    // unpacked on a thread of their own beside the candidate reads (which mostly wait on the
    // disk); the kept ones (their chunks were not read) by rev from the store, on several of
    // its connections at once and beside those reads too: one at a time, the first run after
    // a change waited on the disk for each (at 10M people, 14,000 records took a second).
    let mut need: HashSet<i64> = HashSet::new();
    let mut kept_need: Vec<i64> = Vec::new();
    for &n in worth.iter().flat_map(|(_, nodes)| nodes) {
        match n.checked_sub(kept_count) {
            None => kept_need.extend(overlay_links.revs.get(n)),
            Some(i) => need.extend(
                added
                    .get(i)
                    .filter(|a| a.record.is_none())
                    .map(|a| a.digest.rev),
            ),
        }
    }
    let since_decoded = need.len() + kept_need.len();
    let kept_reads = start_reading_by_rev(store, kept_need);
    let per = persons_count.div_ceil(MAPPED_LOOKUP_THREADS).max(1);
    let (parts, unpacked): (Vec<CandidateReads>, _) = std::thread::scope(|scope| {
        let packs = &changes.packs;
        let need = &need;
        let unpacking = scope.spawn(move || packs.unpack(need));
        let handles: Vec<_> = person_records
            .chunks_mut(per)
            .zip(worth.chunks(per))
            .enumerate()
            .map(|(part, (records, persons))| {
                let candidates = candidates.as_ref();
                scope.spawn(move || {
                    read_candidate_records(links, candidates, part * per, persons, records)
                })
            })
            .collect();
        let parts = join_all(handles);
        let unpacked = unpacking
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (parts, unpacked)
    });
    for (missing, problems) in parts {
        to_read.extend(missing);
        unreadable.extend(problems);
    }
    let from_candidates: usize = person_records.iter().map(Vec::len).sum();
    let read_owner: HashMap<i64, u32> = to_read.iter().copied().collect();
    let read_revs: Vec<i64> = to_read.iter().map(|&(rev, _)| rev).collect();
    for part in read_revs.chunks(WHOLE_READ_PART) {
        let raw = store.records_by_revs(part).await?;
        records_read += raw.len() as u64;
        let decoded = decode_parallel(&raw)?;
        for (rev, r) in raw.iter().map(|r| r.rev).zip(decoded) {
            if let Some(rs) = read_owner
                .get(&rev)
                .and_then(|&p| person_records.get_mut(p as usize))
            {
                rs.push(r);
            }
        }
    }
    let mut decoded = unpacked?;
    records_read += read_missing(store, &need, &mut decoded).await?;
    for (revs, reading) in kept_reads {
        let raw = match reading.await {
            Ok(read) => read?,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Cancelled (the runtime is stopping): read here instead.
            Err(_) => store.records_by_revs(&revs).await?,
        };
        records_read += raw.len() as u64;
        decoded.extend(raw.iter().map(|r| r.rev).zip(decode_parallel(&raw)?));
    }
    // Each person's records from the map, then its records since the map; then, on the
    // machine's cores, sorted by record id and keyed. (A record id is stored once, at one
    // rev, so the order before the sort decides nothing.)
    let mut assembled: Vec<(Vec<u32>, Vec<SourceRecord>)> = Vec::with_capacity(persons_count);
    for ((groups, nodes), mut records) in worth.into_iter().zip(person_records) {
        for &n in &nodes {
            let record = match n.checked_sub(kept_count) {
                Some(i) => match added.get_mut(i) {
                    Some(a) => a
                        .record
                        .take()
                        .map(|b| *b)
                        .or_else(|| decoded.remove(&a.digest.rev))
                        .ok_or(a.digest.rev),
                    None => continue,
                },
                None => match overlay_links.revs.get(n) {
                    Some(rev) => decoded.remove(rev).ok_or(*rev),
                    None => continue,
                },
            };
            match record {
                Ok(r) => records.push(r),
                Err(rev) => {
                    return Err(StoreError::Corrupt {
                        table: "records",
                        key: format!("rev {rev}"),
                        problem: "in a digest chunk but not stored".into(),
                    }
                    .into())
                }
            }
        }
        assembled.push((groups, records));
    }
    drop(decoded);
    let mut persons: Vec<(String, Members)> = par_map_owned(assembled, |(groups, mut records)| {
        records.sort_by(|a, b| a.record_id.cmp(&b.record_id));
        records.dedup_by(|a, b| a.record_id == b.record_id);
        (
            person::person_key(&records),
            Members::Loaded { records, groups },
        )
    });
    let to_read_count = to_read.len();
    persons.sort_by(|a, b| a.0.cmp(&b.0));
    clock.lap("read persons", || {
        format!(
            "{} persons worth evaluating, {from_candidates} records from the candidates, \
             {to_read_count} read by rev, {since_decoded} records since the map decoded",
            persons.len()
        ) + &unreadable
            .first()
            .map(|p| format!("; {} blocks unreadable, e.g. {p}", unreadable.len()))
            .unwrap_or_default()
    });
    let (sweep, writer) = keying
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    // The records since the map up to this run's head, for the next run: written beside the
    // evaluation once the map's checksum holds ([`KeptWriter::start`]).
    let overlay = writer.map(|thread| KeptWriter {
        links: Some((send_links, overlay_links)),
        thread,
    });
    let population = Population {
        persons_total,
        persons,
        records_scanned: changes.records_scanned,
        records_read,
        sweep: SweepSource::Map(Box::new(sweep)),
        unpacked: HashMap::new(),
        previous: None,
        person_map: None,
        candidates: None,
        overlay,
    };
    Ok((population, candidates_note))
}

/// Connections a run reads records by rev on at once (the SQLite pool has 4).
const READS_BY_REV_AT_ONCE: usize = 4;

/// A part of [`start_reading_by_rev`]: its revs and their read.
type ReadByRev = (
    Vec<i64>,
    tokio::task::JoinHandle<Result<Vec<RawRecord>, StoreError>>,
);

/// Starts reading the records with `revs` from the store, in as many parts as
/// [`READS_BY_REV_AT_ONCE`] (each a run of neighbouring revs), each on a task of its own:
/// the parts and their reads, to be awaited.
fn start_reading_by_rev(store: &Store, mut revs: Vec<i64>) -> Vec<ReadByRev> {
    if revs.is_empty() {
        return Vec::new();
    }
    revs.sort_unstable();
    revs.dedup();
    let per = revs.len().div_ceil(READS_BY_REV_AT_ONCE).max(1);
    revs.chunks(per)
        .map(|part| {
            let (store, part) = (store.clone(), part.to_vec());
            let revs = part.clone();
            (
                revs,
                tokio::spawn(async move { store.records_by_revs(&part).await }),
            )
        })
        .collect()
}

/// Writes an incremental run's records since the map for the next run, on a thread of its
/// own, once started.
pub(super) struct KeptWriter {
    /// What the keying thread's part lacks, until sent.
    links: Option<(std::sync::mpsc::SyncSender<OverlayLinks>, OverlayLinks)>,
    thread: std::thread::JoinHandle<String>,
}

impl KeptWriter {
    /// Starts writing: the map they were linked with held its checksum.
    pub(super) fn start(&mut self) {
        if let Some((send, links)) = self.links.take() {
            // Gone only if the thread stopped; `finish` says so.
            let _ = send.send(links);
        }
    }

    /// What became of them (nothing is written unless started).
    pub(super) fn finish(mut self) -> String {
        self.links = None;
        self.thread.join().unwrap_or_else(|_| {
            "records since the map not kept: the thread writing them stopped".into()
        })
    }
}

/// What a core's share of the candidate reads left: (rev, person index) of the records to read
/// from the store, and the problems met.
type CandidateReads = (Vec<(i64, u32)>, Vec<String>);

/// Decodes the records of `persons` (their map groups; `first` is the first one's index) from
/// the candidate blocks into `records` (one buffer per person, in the same order), on the
/// calling thread. Returns (rev, person index) of each record the blocks lacked or could not
/// give (a group the full run did not evaluate, or a block that cannot be read: the checksum
/// held, so a bug rather than damage, and it costs only speed), and the problems met.
fn read_candidate_records(
    links: &super::scan::map::MapLinks,
    candidates: Option<&Candidates>,
    first: usize,
    persons: &[(Vec<u32>, Vec<usize>)],
    records: &mut [Vec<SourceRecord>],
) -> CandidateReads {
    let mut missing: Vec<(i64, u32)> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    let mut decompressor = match candidates.map(Candidates::decompressor) {
        Some(Ok(d)) => Some(d),
        Some(Err(e)) => {
            problems.push(e.to_string());
            None
        }
        None => None,
    };
    // The last block unpacked: consecutive persons mostly share it.
    let mut unpacked: Option<(u32, Vec<u8>)> = None;
    let mut revs: Vec<(i64, bool)> = Vec::new();
    for (i, ((groups, _), out)) in persons.iter().zip(records.iter_mut()).enumerate() {
        let person = u32::try_from(first + i).unwrap_or(u32::MAX);
        for &g in groups {
            revs.clear();
            revs.extend(links.slots_of(g).map(|slot| (links.rev(slot), false)));
            let block = candidates.and_then(|c| c.block_of(g));
            if let (Some(c), Some(b), Some(d)) = (candidates, block, decompressor.as_mut()) {
                if unpacked.as_ref().map(|(at, _)| *at) != Some(b) {
                    unpacked = match c.unpack(d, b) {
                        Ok(raw) => Some((b, raw)),
                        Err(e) => {
                            problems.push(e.to_string());
                            None
                        }
                    };
                }
                if let Some((_, raw)) = unpacked.as_ref().filter(|(at, _)| *at == b) {
                    let read = Candidates::each_entry(b, raw, |rev, bytes| {
                        if let Some(wanted) = revs.iter_mut().find(|(r, seen)| *r == rev && !*seen)
                        {
                            let (record, _) = SourceRecord::read_compact(bytes).map_err(|e| {
                                super::scan::map::damaged_block(b, format!("rev {rev}: {e}"))
                            })?;
                            out.push(record);
                            wanted.1 = true;
                        }
                        Ok(())
                    });
                    if let Err(e) = read {
                        problems.push(e.to_string());
                    }
                }
            }
            missing.extend(
                revs.iter()
                    .filter(|(_, seen)| !seen)
                    .map(|&(rev, _)| (rev, person)),
            );
        }
    }
    (missing, problems)
}
