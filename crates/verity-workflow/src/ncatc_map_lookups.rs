//! The map groups of the identifiers of the records added since the person map, as an
//! incremental run looked them up: the next run takes them from here and looks up only the
//! records added since. Without it every incremental run looked up every record since the
//! last full run's map, so a run's work grew with each change until the next full run (at 10M
//! people, a map two changes of 1% behind took 5.2–7.2 s where one behind took 3.6–4.7 s).
//!
//! A look-up's answer depends on the map alone, so the file holds for as long as its map does:
//! it names the map by its head and the checksum stored at the map's end, and a full run that
//! writes a map removes it. A file that is damaged, of another format or of another map is not
//! used (the run looks everything up, as without it).

use super::{u32_at, u64_of, Checksum, MapError};
use std::path::Path;

/// The file's name in the map directory.
pub(crate) const LOOKUPS_FILE: &str = "map-lookups.bin";
const MAGIC: &[u8; 8] = b"VNCATCML";
/// Bumped whenever the layout changes.
const FORMAT: u32 = 1;
/// An identifier the map does not hold (no group has this number: groups are fewer than
/// slots, and slots are counted in 32 bits).
const NO_GROUP: u32 = u32::MAX;

/// Names a person map: its head and the checksum stored at its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MapStamp {
    pub head_rev: i64,
    pub checksum: u64,
}

/// The looked-up groups of records by rev, read back.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct MapLookups {
    /// Strictly increasing.
    revs: Vec<i64>,
    /// Where each rev's groups start in `groups`; one more entry than revs.
    starts: Vec<u32>,
    groups: Vec<u32>,
}

impl MapLookups {
    /// The map group of each identifier of the record at `rev` (`None`: not in the map), when
    /// the file holds that record with `identifiers` identifiers; `None` otherwise (look up).
    pub(crate) fn groups_of(&self, rev: i64, identifiers: usize) -> Option<Vec<Option<u32>>> {
        let i = self.revs.binary_search(&rev).ok()?;
        let start = *self.starts.get(i)? as usize;
        let end = *self.starts.get(i + 1)? as usize;
        let groups = self.groups.get(start..end)?;
        (groups.len() == identifiers).then(|| {
            groups
                .iter()
                .map(|&g| (g != NO_GROUP).then_some(g))
                .collect()
        })
    }

    /// How many records' look-ups the file holds.
    pub(crate) fn records(&self) -> usize {
        self.revs.len()
    }
}

/// Writes the look-ups of `records` ((rev, the groups of its identifiers) in strictly
/// increasing rev order; others are left out) made in the map `stamp` names, to a temporary
/// file renamed over the last; returns the bytes written.
pub(crate) fn write_lookups<'a>(
    dir: &Path,
    stamp: MapStamp,
    records: impl Iterator<Item = (i64, &'a [Option<u32>])>,
) -> Result<u64, MapError> {
    let path = dir.join(LOOKUPS_FILE);
    let io = |source| MapError::Io {
        path: path.clone(),
        source,
    };
    let mut body = Vec::with_capacity(1 << 20);
    body.extend_from_slice(MAGIC);
    body.extend_from_slice(&FORMAT.to_le_bytes());
    body.extend_from_slice(&stamp.head_rev.to_le_bytes());
    body.extend_from_slice(&stamp.checksum.to_le_bytes());
    let count_at = body.len();
    body.extend_from_slice(&0u64.to_le_bytes());
    let mut count = 0u64;
    let mut last = i64::MIN;
    for (rev, groups) in records {
        // A record has a handful of identifiers; one with more than a byte counts is left
        // to be looked up.
        let Ok(n) = u8::try_from(groups.len()) else {
            continue;
        };
        if rev <= last {
            continue;
        }
        last = rev;
        count += 1;
        body.extend_from_slice(&rev.to_le_bytes());
        body.push(n);
        for g in groups {
            body.extend_from_slice(&g.unwrap_or(NO_GROUP).to_le_bytes());
        }
    }
    body[count_at..count_at + 8].copy_from_slice(&count.to_le_bytes());
    let mut sum = Checksum::default();
    sum.add(&body);
    body.extend_from_slice(&sum.finish().to_le_bytes());
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = dir.join(format!("{LOOKUPS_FILE}.tmp"));
    std::fs::write(&tmp, &body).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(body.len() as u64)
}

/// The look-ups in `dir` made in the map `stamp` names: `Ok(None)` when there is no file or
/// it is of another map; an error when it is damaged or of another format.
pub(crate) fn read_lookups(dir: &Path, stamp: MapStamp) -> Result<Option<MapLookups>, MapError> {
    let path = dir.join(LOOKUPS_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(MapError::Io { path, source }),
    };
    let invalid = |problem: &str| MapError::Invalid {
        path: path.clone(),
        problem: problem.to_string(),
    };
    let head = MAGIC.len() + 4 + 8 + 8 + 8;
    if bytes.len() < head + 8 || &bytes[..MAGIC.len()] != MAGIC {
        return Err(invalid("not a map look-ups file"));
    }
    if u32_at(&bytes[MAGIC.len()..], 0) != FORMAT {
        return Err(invalid("of another format"));
    }
    let body_len = bytes.len() - 8;
    let mut sum = Checksum::default();
    sum.add(&bytes[..body_len]);
    if sum.finish() != u64_of(&bytes[body_len..]) {
        return Err(invalid("checksum mismatch (damaged or truncated)"));
    }
    let at = MAGIC.len() + 4;
    let found = MapStamp {
        head_rev: u64_of(&bytes[at..at + 8]) as i64,
        checksum: u64_of(&bytes[at + 8..at + 16]),
    };
    if found != stamp {
        return Ok(None);
    }
    let count = u64_of(&bytes[at + 16..at + 24]);
    let mut lookups = MapLookups {
        revs: Vec::with_capacity(usize::try_from(count).unwrap_or(0).min(1 << 24)),
        starts: vec![0],
        groups: Vec::new(),
    };
    let mut i = head;
    let truncated = || invalid("a record runs past the end");
    for _ in 0..count {
        let rev_bytes = bytes.get(i..i + 8).ok_or_else(truncated)?;
        let rev = u64_of(rev_bytes) as i64;
        let n = usize::from(*bytes.get(i + 8).ok_or_else(truncated)?);
        i += 9;
        let groups = bytes
            .get(i..i + 4 * n)
            .filter(|_| i + 4 * n <= body_len)
            .ok_or_else(truncated)?;
        if lookups.revs.last().is_some_and(|&last| rev <= last) {
            return Err(invalid("revs out of order"));
        }
        lookups.revs.push(rev);
        lookups
            .groups
            .extend(groups.chunks_exact(4).map(|g| u32_at(g, 0)));
        let end = u32::try_from(lookups.groups.len()).map_err(|_| invalid("too many groups"))?;
        lookups.starts.push(end);
        i += 4 * n;
    }
    if i != body_len {
        return Err(invalid("bytes after the last record"));
    }
    Ok(Some(lookups))
}

/// Removes the look-ups in `dir` (a new map makes them stale); none there is not an error.
pub(crate) fn remove_lookups(dir: &Path) -> Result<(), MapError> {
    let path = dir.join(LOOKUPS_FILE);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(MapError::Io { path, source: e }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "verity-lookups-{name}-{}-{}",
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

    fn sample() -> Vec<(i64, Vec<Option<u32>>)> {
        vec![
            (41, vec![Some(3), None]),
            (42, vec![]),
            (45, vec![None, Some(0), Some(7)]),
        ]
    }

    fn write(dir: &Path, records: &[(i64, Vec<Option<u32>>)]) {
        write_lookups(dir, STAMP, records.iter().map(|(r, g)| (*r, g.as_slice()))).unwrap();
    }

    #[test]
    fn look_ups_come_back_only_for_their_map_and_their_records_shape() {
        let dir = scratch("back");
        write(&dir, &sample());
        let read = read_lookups(&dir, STAMP).unwrap().unwrap();
        assert_eq!(read.records(), 3);
        assert_eq!(read.groups_of(41, 2), Some(vec![Some(3), None]));
        assert_eq!(read.groups_of(42, 0), Some(vec![]));
        assert_eq!(read.groups_of(45, 3), Some(vec![None, Some(0), Some(7)]));
        // Another rev, or the same rev with another count of identifiers: looked up.
        assert_eq!(read.groups_of(43, 0), None);
        assert_eq!(read.groups_of(41, 3), None);
        // Another map (a full run at the same head writes another checksum): not used.
        let other = MapStamp {
            checksum: 1,
            ..STAMP
        };
        assert_eq!(read_lookups(&dir, other).unwrap(), None);
        remove_lookups(&dir).unwrap();
        assert_eq!(read_lookups(&dir, STAMP).unwrap(), None);
        remove_lookups(&dir).unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_damaged_file_is_an_error_never_wrong_groups() {
        let dir = scratch("damaged");
        write(&dir, &sample());
        let path = dir.join(LOOKUPS_FILE);
        let good = std::fs::read(&path).unwrap();
        for at in 0..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0x10;
            std::fs::write(&path, &bad).unwrap();
            let read = read_lookups(&dir, STAMP);
            assert!(read.is_err(), "byte {at}: {read:?}");
        }
        std::fs::write(&path, &good[..good.len() - 3]).unwrap();
        assert!(read_lookups(&dir, STAMP).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    proptest! {
        #[test]
        fn written_look_ups_read_back(
            records in proptest::collection::btree_map(
                1i64..1_000_000,
                proptest::collection::vec(proptest::option::of(0u32..1000), 0..6),
                0..50,
            )
        ) {
            let dir = scratch("prop");
            let records: Vec<(i64, Vec<Option<u32>>)> = records.into_iter().collect();
            write(&dir, &records);
            let read = read_lookups(&dir, STAMP).unwrap().unwrap();
            prop_assert_eq!(read.records(), records.len());
            for (rev, groups) in &records {
                prop_assert_eq!(read.groups_of(*rev, groups.len()), Some(groups.clone()));
            }
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
