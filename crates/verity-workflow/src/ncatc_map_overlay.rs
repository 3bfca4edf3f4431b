//! The records added since the person map, as the last incremental run left them: what the next
//! run needs of each (its map groups, the identifiers the map lacks, its screen value, its id
//! and its sweep keys), in flat columns read in one go. With it a run reads from the store only
//! the records since the last run; without it, every record since the last full run's map, so
//! a run's work grew with each change until the next full run (at 10M people, one 1% change
//! behind the map took 3.6–4.7 s, two 4.5–7.1 s).
//!
//! Everything here follows from the records and the map alone (records are only added), so
//! the file holds for as long as its map does: it names the map by its head and the checksum
//! stored at the map's end, and its own head (the rev up to which it holds the records) is in
//! its name, `map-overlay-<head>.bin`. A run uses the one whose head is where it starts. A file
//! that is damaged, of another format or of another map is not used (the run reads the records
//! since the map, as without it); a full run that writes a map removes them all.

use super::{open_checked, Fixed, In, MapError, Out, RecordLead};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"VNCATCOV";
/// Bumped whenever the layout or the meaning of a field changes.
const FORMAT: u32 = 1;
const PREFIX: &str = "map-overlay-";
const SUFFIX: &str = ".bin";

/// Names a person map: its head and the checksum stored at its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MapStamp {
    pub head_rev: i64,
    pub checksum: u64,
}

/// The stamp of the map file at `path` (its last 8 bytes are its checksum); `Ok(None)` when
/// there is none.
pub(crate) fn map_stamp(path: &Path, head_rev: i64) -> Result<Option<MapStamp>, MapError> {
    use std::io::{Read, Seek, SeekFrom};
    let io = |source| MapError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    file.seek(SeekFrom::End(-8)).map_err(io)?;
    let mut sum = [0u8; 8];
    file.read_exact(&mut sum).map_err(io)?;
    Ok(Some(MapStamp {
        head_rev,
        checksum: u64::from_le_bytes(sum),
    }))
}

/// The records paired with `key` in `pairs` (sorted by key).
fn records_under<K: Ord + Copy>(pairs: &[(K, u32)], key: K) -> impl Iterator<Item = usize> + '_ {
    let from = pairs.partition_point(|&(k, _)| k < key);
    pairs[from..]
        .iter()
        .take_while(move |&&(k, _)| k == key)
        .map(|&(_, i)| i as usize)
}

/// Variable-length lists of fixed-width values, flat: one allocation for all of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Ragged<T> {
    /// Where each list starts in `items`; one more entry than lists.
    starts: Vec<usize>,
    items: Vec<T>,
}

impl<T: Copy> Default for Ragged<T> {
    fn default() -> Self {
        Ragged {
            starts: vec![0],
            items: Vec::new(),
        }
    }
}

impl<T: Copy> Ragged<T> {
    pub(crate) fn push(&mut self, list: &[T]) {
        self.items.extend_from_slice(list);
        self.starts.push(self.items.len());
    }

    /// The `i`th list (empty past the end).
    pub(crate) fn get(&self, i: usize) -> &[T] {
        match (self.starts.get(i), self.starts.get(i + 1)) {
            (Some(&s), Some(&e)) => self.items.get(s..e).unwrap_or_default(),
            _ => &[],
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.starts.len() - 1
    }

    /// Keeps the first `lists` lists.
    pub(crate) fn truncate(&mut self, lists: usize) {
        self.starts.truncate(lists + 1);
        let end = self.starts.last().copied().unwrap_or(0);
        self.items.truncate(end);
    }

    /// Every value of every list, in order.
    pub(crate) fn items(&self) -> &[T] {
        &self.items
    }
}

/// What the link and the screen need of the records since the map, in rev order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct OverlayLinks {
    /// Strictly increasing.
    pub revs: Vec<i64>,
    pub leads: Vec<RecordLead>,
    /// The map groups its identifiers are in (each once).
    pub groups: Ragged<u32>,
    /// Its identifier hashes the map does not hold.
    pub new_identifiers: Ragged<u128>,
}

/// What the sweep and the open leads need of the same records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct OverlayKeys {
    /// Record ids, as UTF-8 (checked when read).
    pub ids: Ragged<u8>,
    pub citizen: Ragged<u64>,
    pub status: Ragged<u64>,
}

impl OverlayKeys {
    /// Keeps the first `records` records.
    pub(crate) fn truncate(&mut self, records: usize) {
        self.ids.truncate(records);
        self.citizen.truncate(records);
        self.status.truncate(records);
    }

    /// The id of the `i`th record.
    pub(crate) fn id(&self, i: usize) -> &str {
        // Checked when built or read: an id is always UTF-8.
        std::str::from_utf8(self.ids.get(i)).unwrap_or_default()
    }
}

/// The records added after the map up to `head_rev`, in two parts a run uses on different
/// threads, and (when read) where to find them by group and identifier.
#[derive(Clone, Debug, Default)]
pub(crate) struct MapOverlay {
    pub head_rev: i64,
    pub links: OverlayLinks,
    pub keys: OverlayKeys,
    /// Made when read, not written.
    pub index: KeptIndex,
}

/// The records of an overlay by the map groups and the new identifiers they hold: a run
/// links only the kept records its changes reach.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct KeptIndex {
    /// (group, record), sorted.
    by_group: Vec<(u32, u32)>,
    /// (identifier hash, record), sorted.
    by_identifier: Vec<(u128, u32)>,
}

impl KeptIndex {
    pub(crate) fn of(links: &OverlayLinks) -> KeptIndex {
        let record = |i: usize| u32::try_from(i).unwrap_or(u32::MAX);
        let mut by_group: Vec<(u32, u32)> = (0..links.groups.len())
            .flat_map(|i| links.groups.get(i).iter().map(move |&g| (g, record(i))))
            .collect();
        by_group.sort_unstable();
        let mut by_identifier: Vec<(u128, u32)> = (0..links.new_identifiers.len())
            .flat_map(|i| {
                links
                    .new_identifiers
                    .get(i)
                    .iter()
                    .map(move |&h| (h, record(i)))
            })
            .collect();
        by_identifier.sort_unstable();
        KeptIndex {
            by_group,
            by_identifier,
        }
    }

    /// The records in map group `g`.
    pub(crate) fn with_group(&self, g: u32) -> impl Iterator<Item = usize> + '_ {
        records_under(&self.by_group, g)
    }

    /// The records holding new identifier `h`.
    pub(crate) fn with_identifier(&self, h: u128) -> impl Iterator<Item = usize> + '_ {
        records_under(&self.by_identifier, h)
    }
}

impl MapOverlay {
    pub(crate) fn len(&self) -> usize {
        self.links.revs.len()
    }
}

/// The overlay file in `dir` holding the records up to `head_rev`.
pub(crate) fn overlay_path(dir: &Path, head_rev: i64) -> PathBuf {
    dir.join(format!("{PREFIX}{head_rev}{SUFFIX}"))
}

/// A column: its count, then its values (the map's sections).
fn put<T: Fixed, W: std::io::Write>(out: &mut Out<W>, values: &[T]) -> std::io::Result<()> {
    out.section(values, T::WIDTH, |v, buf| v.write(buf))
}

/// Lists as their lengths, then their values.
fn put_ragged<T: Fixed, W: std::io::Write>(
    out: &mut Out<W>,
    lists: &Ragged<T>,
) -> std::io::Result<()> {
    let lengths: Vec<u32> = lists
        .starts
        .windows(2)
        .map(|w| u32::try_from(w[1] - w[0]).unwrap_or(u32::MAX))
        .collect();
    put(out, &lengths)?;
    put(out, &lists.items)
}

/// Writes `overlay` for the map `stamp` names, to a temporary file renamed into place, and
/// removes the other overlays in `dir` but `keep` (the one the run started from: a run
/// started again from there uses it); returns the bytes written. The records must be in
/// strictly increasing rev order and every column as long as `revs`.
pub(crate) fn write_overlay(
    dir: &Path,
    stamp: MapStamp,
    overlay: &MapOverlay,
    keep: Option<i64>,
) -> Result<u64, MapError> {
    let path = overlay_path(dir, overlay.head_rev);
    let invalid = |problem: &str| MapError::Invalid {
        path: path.clone(),
        problem: problem.to_string(),
    };
    let (l, k) = (&overlay.links, &overlay.keys);
    let n = l.revs.len();
    if [l.leads.len(), l.groups.len(), l.new_identifiers.len()]
        .into_iter()
        .chain([k.ids.len(), k.citizen.len(), k.status.len()])
        .any(|len| len != n)
    {
        return Err(invalid("columns differ in length"));
    }
    if l.revs.windows(2).any(|w| w[0] >= w[1]) {
        return Err(invalid("revs out of order"));
    }
    let io = |source| MapError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = dir.join(format!("{PREFIX}{}.tmp", overlay.head_rev));
    let mut out = Out::create(&tmp).map_err(io)?;
    let write = |out: &mut Out<_>| -> std::io::Result<()> {
        out.bytes(MAGIC)?;
        out.bytes(&FORMAT.to_le_bytes())?;
        out.u64(stamp.head_rev as u64)?;
        out.u64(stamp.checksum)?;
        out.u64(overlay.head_rev as u64)?;
        put(out, &l.revs)?;
        put(out, &l.leads)?;
        put_ragged(out, &l.groups)?;
        put_ragged(out, &l.new_identifiers)?;
        put_ragged(out, &k.ids)?;
        put_ragged(out, &k.citizen)?;
        put_ragged(out, &k.status)
    };
    write(&mut out).map_err(io)?;
    let size = out.finish_into(&tmp, &path).map_err(io)?;
    remove_overlays(dir, &[Some(overlay.head_rev), keep])?;
    Ok(size)
}

/// Removes the overlays in `dir` but those with a head in `keep` (a map written makes them all
/// stale); none there is not an error.
pub(crate) fn remove_overlays(dir: &Path, keep: &[Option<i64>]) -> Result<(), MapError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(MapError::Io {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(head) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|n| n.strip_suffix(SUFFIX).or_else(|| n.strip_suffix(".tmp")))
        else {
            continue;
        };
        if head.parse::<i64>().is_ok_and(|h| keep.contains(&Some(h))) && !name_is_tmp(&name) {
            continue;
        }
        let path = entry.path();
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(MapError::Io { path, source: e })
            }
            _ => {}
        }
    }
    Ok(())
}

fn name_is_tmp(name: &std::ffi::OsStr) -> bool {
    name.to_str().is_some_and(|n| n.ends_with(".tmp"))
}

/// A column written by [`put`].
fn column<T: Fixed>(r: &mut In<'_>) -> Result<Vec<T>, String> {
    r.section(T::WIDTH, T::read)
}

/// `lists` lists written by [`put_ragged`].
fn ragged<T: Fixed>(r: &mut In<'_>, lists: usize) -> Result<Ragged<T>, String> {
    let lengths: Vec<u32> = column(r)?;
    if lengths.len() != lists {
        return Err("a column differs in length from the revs".into());
    }
    let items: Vec<T> = column(r)?;
    let mut starts = Vec::with_capacity(lists + 1);
    starts.push(0usize);
    let mut end = 0usize;
    for len in lengths {
        end += len as usize;
        starts.push(end);
    }
    if end != items.len() {
        return Err("list lengths do not add up to the values".into());
    }
    Ok(Ragged { starts, items })
}

/// The overlay in `dir` holding the records after the map `stamp` names up to `head_rev`:
/// `Ok(None)` when there is none or it is of another map; an error when it is damaged or of
/// another format.
pub(crate) fn read_overlay(
    dir: &Path,
    stamp: MapStamp,
    head_rev: i64,
) -> Result<Option<MapOverlay>, MapError> {
    let path = overlay_path(dir, head_rev);
    // Magic, format and checksum as the map's own files are checked.
    let Some((file, body_len)) = open_checked(&path, MAGIC, FORMAT, "a map overlay")? else {
        return Ok(None);
    };
    let invalid = |problem: String| MapError::Invalid {
        path: path.clone(),
        problem,
    };
    let mut r = In {
        bytes: &file.bytes()[..body_len],
        at: MAGIC.len() + 4,
    };
    let parse = |r: &mut In<'_>| -> Result<Option<MapOverlay>, String> {
        let found = MapStamp {
            head_rev: r.u64()? as i64,
            checksum: r.u64()?,
        };
        let head = r.u64()? as i64;
        if found != stamp {
            return Ok(None);
        }
        if head != head_rev {
            return Err(format!("holds records up to rev {head}, not {head_rev}"));
        }
        let revs: Vec<i64> = column(r)?;
        let n = revs.len();
        if revs.windows(2).any(|w| w[0] >= w[1])
            || revs
                .first()
                .is_some_and(|&f| f <= stamp.head_rev || revs.last().is_some_and(|&l| l > head))
        {
            return Err("revs out of order or outside the overlay".into());
        }
        let leads: Vec<RecordLead> = column(r)?;
        if leads.len() != n {
            return Err("a column differs in length from the revs".into());
        }
        let links = OverlayLinks {
            revs,
            leads,
            groups: ragged(r, n)?,
            new_identifiers: ragged(r, n)?,
        };
        let keys = OverlayKeys {
            ids: ragged(r, n)?,
            citizen: ragged(r, n)?,
            status: ragged(r, n)?,
        };
        if (0..n).any(|i| std::str::from_utf8(keys.ids.get(i)).is_err()) {
            return Err("a record id is not UTF-8".into());
        }
        if r.at != r.bytes.len() {
            return Err(format!(
                "{} bytes after the last section",
                r.bytes.len() - r.at
            ));
        }
        let index = KeptIndex::of(&links);
        Ok(Some(MapOverlay {
            head_rev: head,
            links,
            keys,
            index,
        }))
    };
    parse(&mut r).map_err(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "verity-overlay-{name}-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    const STAMP: MapStamp = MapStamp {
        head_rev: 40,
        checksum: 0xfeed,
    };

    /// (rev, lead, groups, new identifiers, id, citizen keys, status keys)
    type Row = (
        i64,
        [u8; 2],
        Vec<u32>,
        Vec<u128>,
        String,
        Vec<u64>,
        Vec<u64>,
    );
    /// A [`Row`] but its rev.
    type RowParts = ([u8; 2], Vec<u32>, Vec<u128>, String, Vec<u64>, Vec<u64>);

    fn overlay(head_rev: i64, rows: &[Row]) -> MapOverlay {
        let mut o = MapOverlay {
            head_rev,
            ..Default::default()
        };
        for (rev, lead, groups, new_ids, id, citizen, status) in rows {
            o.links.revs.push(*rev);
            o.links.leads.push(RecordLead::from_bytes(*lead));
            o.links.groups.push(groups);
            o.links.new_identifiers.push(new_ids);
            o.keys.ids.push(id.as_bytes());
            o.keys.citizen.push(citizen);
            o.keys.status.push(status);
        }
        o
    }

    /// What the file holds (the index is made when read).
    fn parts(o: &MapOverlay) -> (i64, &OverlayLinks, &OverlayKeys) {
        (o.head_rev, &o.links, &o.keys)
    }

    fn sample() -> MapOverlay {
        overlay(
            50,
            &[
                (41, [1, 2], vec![3], vec![], "R-41".into(), vec![7], vec![]),
                (
                    42,
                    [0, 255],
                    vec![],
                    vec![9 << 70],
                    "R-42".into(),
                    vec![],
                    vec![1, 2],
                ),
                (
                    45,
                    [4, 0],
                    vec![0, 8],
                    vec![5],
                    "Ré-45".into(),
                    vec![],
                    vec![3],
                ),
            ],
        )
    }

    #[test]
    fn an_overlay_comes_back_only_for_its_map_and_head() {
        let dir = scratch("back");
        let o = sample();
        write_overlay(&dir, STAMP, &o, None).unwrap();
        let read = read_overlay(&dir, STAMP, 50).unwrap().unwrap();
        assert_eq!(parts(&read), parts(&o));
        assert_eq!(o.keys.id(2), "Ré-45");
        assert_eq!(o.links.groups.get(1), &[] as &[u32]);
        // Found by group and by new identifier.
        let by = |it: &mut dyn Iterator<Item = usize>| it.collect::<Vec<_>>();
        assert_eq!(by(&mut read.index.with_group(0)), vec![2]);
        assert_eq!(by(&mut read.index.with_group(3)), vec![0]);
        assert_eq!(by(&mut read.index.with_group(8)), vec![2]);
        assert_eq!(by(&mut read.index.with_group(4)), Vec::<usize>::new());
        assert_eq!(by(&mut read.index.with_identifier(9 << 70)), vec![1]);
        assert_eq!(by(&mut read.index.with_identifier(5)), vec![2]);
        assert_eq!(by(&mut read.index.with_identifier(6)), Vec::<usize>::new());
        // Another map (a full run at the same head writes another checksum): not used.
        let other = MapStamp {
            checksum: 1,
            ..STAMP
        };
        assert!(read_overlay(&dir, other, 50).unwrap().is_none());
        // Another head: another file, none here.
        assert!(read_overlay(&dir, STAMP, 49).unwrap().is_none());
        // A later run keeps the one it started from and its own, and no other.
        let mut next = o.clone();
        next.head_rev = 60;
        write_overlay(&dir, STAMP, &next, Some(50)).unwrap();
        let mut last = o.clone();
        last.head_rev = 70;
        write_overlay(&dir, STAMP, &last, Some(60)).unwrap();
        assert!(read_overlay(&dir, STAMP, 50).unwrap().is_none());
        assert!(read_overlay(&dir, STAMP, 60).unwrap().is_some());
        assert!(read_overlay(&dir, STAMP, 70).unwrap().is_some());
        remove_overlays(&dir, &[]).unwrap();
        assert!(read_overlay(&dir, STAMP, 70).unwrap().is_none());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_damaged_overlay_is_an_error_never_wrong_records() {
        let dir = scratch("damaged");
        write_overlay(&dir, STAMP, &sample(), None).unwrap();
        let path = overlay_path(&dir, 50);
        let good = std::fs::read(&path).unwrap();
        for at in 0..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0x10;
            std::fs::write(&path, &bad).unwrap();
            let read = read_overlay(&dir, STAMP, 50);
            assert!(read.is_err(), "byte {at}: {read:?}");
        }
        std::fs::write(&path, &good[..good.len() - 3]).unwrap();
        assert!(read_overlay(&dir, STAMP, 50).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn an_overlay_out_of_order_or_uneven_is_not_written() {
        let dir = scratch("refused");
        let mut o = sample();
        o.links.revs.swap(0, 1);
        assert!(write_overlay(&dir, STAMP, &o, None).is_err());
        let mut o = sample();
        o.keys.citizen.push(&[1]);
        assert!(write_overlay(&dir, STAMP, &o, None).is_err());
        assert!(read_overlay(&dir, STAMP, 50).unwrap().is_none());
        let _ = std::fs::remove_dir_all(dir);
    }

    fn row() -> impl Strategy<Value = RowParts> {
        (
            any::<[u8; 2]>(),
            proptest::collection::vec(any::<u32>(), 0..4),
            proptest::collection::vec(any::<u128>(), 0..3),
            "\\PC{0,12}",
            proptest::collection::vec(any::<u64>(), 0..4),
            proptest::collection::vec(any::<u64>(), 0..4),
        )
    }

    proptest! {
        #[test]
        fn a_written_overlay_reads_back(
            rows in proptest::collection::btree_map(41i64..1_000, row(), 0..40)
        ) {
            let dir = scratch("prop");
            let rows: Vec<Row> = rows
                .into_iter()
                .map(|(rev, (lead, g, n, id, c, s))| (rev, lead, g, n, id, c, s))
                .collect();
            let o = overlay(1_000, &rows);
            write_overlay(&dir, STAMP, &o, None).unwrap();
            let read = read_overlay(&dir, STAMP, 1_000).unwrap();
            prop_assert_eq!(read.as_ref().map(parts), Some(parts(&o)));
            // Every record is found under each of its groups and new identifiers.
            if let Some(read) = &read {
                for i in 0..o.len() {
                    for &g in o.links.groups.get(i) {
                        prop_assert!(read.index.with_group(g).any(|j| j == i));
                    }
                    for &h in o.links.new_identifiers.get(i) {
                        prop_assert!(read.index.with_identifier(h).any(|j| j == i));
                    }
                }
            }
            for (i, row) in rows.iter().enumerate() {
                prop_assert_eq!(o.keys.id(i), row.4.as_str());
            }
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
