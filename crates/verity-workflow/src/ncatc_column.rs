//! Read-only arrays of fixed-width values for the person map: built in memory by a full run,
//! or read in place from the map file an incremental run maps into memory.
//!
//! Reading the map into vectors cost an incremental run more than anything else it did: at 1M
//! people 37% of its CPU time was the kernel zeroing fresh pages for the copies (perf:
//! `clear_page_erms`), and at 10M the map is 1.9 GB. Mapped, the file's pages come straight
//! from the page cache, and a run touches only the pages it looks in.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

/// A value a [`Column`] holds: `WIDTH` bytes, little-endian.
pub(crate) trait Fixed: Copy {
    const WIDTH: usize;
    /// From exactly `WIDTH` bytes.
    fn read(b: &[u8]) -> Self;
    fn write(&self, out: &mut Vec<u8>);
}

/// `Fixed` for little-endian integers.
macro_rules! fixed_int {
    ($($t:ty),*) => {$(
        impl Fixed for $t {
            const WIDTH: usize = std::mem::size_of::<$t>();
            fn read(b: &[u8]) -> $t {
                let mut w = [0u8; std::mem::size_of::<$t>()];
                w.copy_from_slice(&b[..Self::WIDTH]);
                <$t>::from_le_bytes(w)
            }
            fn write(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}

fixed_int!(u8, u32, u64, u128, i64);

/// A file mapped read-only into memory.
pub(crate) struct MappedFile(memmap2::Mmap);

impl MappedFile {
    /// Maps `path`; `Ok(None)` when there is no such file.
    pub(crate) fn open(path: &Path) -> std::io::Result<Option<MappedFile>> {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        map(&file).map(|m| Some(MappedFile(m)))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// Tells the kernel that `range` (page-aligned at its start) is read a few bytes at a
    /// time: a fault then reads its page, not the device's read-ahead around it (8 MB here).
    /// Only advice: a kernel that refuses it costs speed, never answers.
    pub(crate) fn advise_random(&self, range: Range<usize>) {
        let _ = self
            .0
            .advise_range(memmap2::Advice::Random, range.start, range.len());
    }
}

/// The one `unsafe` call of this crate, on the measured hot path described in the module
/// comment (reading the map into vectors was the largest cost of an incremental run).
#[allow(unsafe_code)]
fn map(file: &std::fs::File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: a mapping is undefined behaviour only if the file changes while mapped. Verity
    // never writes a map or candidates file in place: a full run writes a temporary file and
    // renames it over the old one, which leaves the mapped inode (the old file) unchanged
    // until the last mapping of it goes. Only an outside process writing into the file could
    // change it, as it could any file of the data directory; its checksum catches that: a
    // candidates file's before anything is read from it, a map's while a run uses it, before
    // the run saves anything (`MapJob`).
    unsafe { memmap2::Mmap::map(file) }
}

/// A read-only array of `T`.
pub(crate) enum Column<T> {
    Owned(Vec<T>),
    /// `len` values from byte `start` of a mapped file.
    Mapped {
        file: Arc<MappedFile>,
        start: usize,
        len: usize,
    },
}

impl<T> Default for Column<T> {
    fn default() -> Self {
        Column::Owned(Vec::new())
    }
}

impl<T: Fixed> Column<T> {
    /// `len` values at byte `start` of `file`, or `None` if they run past its end.
    pub(crate) fn mapped(file: &Arc<MappedFile>, start: usize, len: usize) -> Option<Column<T>> {
        let end = len.checked_mul(T::WIDTH)?.checked_add(start)?;
        (end <= file.bytes().len()).then(|| Column::Mapped {
            file: Arc::clone(file),
            start,
            len,
        })
    }

    /// The bytes of the mapped file that hold values `items` (`None` for an owned column).
    pub(crate) fn byte_range(&self, items: Range<usize>) -> Option<Range<usize>> {
        match self {
            Column::Owned(_) => None,
            Column::Mapped { start, len, .. } => {
                let (from, to) = (items.start.min(*len), items.end.min(*len));
                Some(start + from * T::WIDTH..start + to.max(from) * T::WIDTH)
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Column::Owned(v) => v.len(),
            Column::Mapped { len, .. } => *len,
        }
    }

    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<T> {
        match self {
            Column::Owned(v) => v.get(i).copied(),
            Column::Mapped { file, start, len } => {
                if i >= *len {
                    return None;
                }
                let at = start + i * T::WIDTH;
                file.bytes().get(at..at + T::WIDTH).map(T::read)
            }
        }
    }

    /// The values in `range` (those that exist).
    pub(crate) fn iter_range(&self, range: Range<usize>) -> impl Iterator<Item = T> + '_ {
        range.map_while(move |i| self.get(i))
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = T> + '_ {
        self.iter_range(0..self.len())
    }

    /// The first index whose value `pred` rejects, `pred` holding for a prefix (binary
    /// search, as `slice::partition_point`).
    pub(crate) fn partition_point(&self, pred: impl Fn(T) -> bool) -> usize {
        let (mut lo, mut hi) = (0usize, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get(mid) {
                Some(v) if pred(v) => lo = mid + 1,
                _ => hi = mid,
            }
        }
        lo
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_mapped_column_reads_what_was_written() {
        let path = std::env::temp_dir().join(format!("verity_column_{}", std::process::id()));
        let values: Vec<u64> = vec![3, 5, 8, 13, 21];
        let mut bytes = vec![0xAA; 3];
        for v in &values {
            v.write(&mut bytes);
        }
        std::fs::write(&path, &bytes).unwrap();
        let file = Arc::new(MappedFile::open(&path).unwrap().unwrap());
        let column: Column<u64> = Column::mapped(&file, 3, values.len()).unwrap();
        assert_eq!(column.iter().collect::<Vec<_>>(), values);
        assert_eq!(column.get(5), None);
        assert_eq!(column.partition_point(|v| v < 9), 3);
        assert_eq!(Column::Owned(values.clone()).partition_point(|v| v < 9), 3);
        assert!(
            Column::<u64>::mapped(&file, 4, values.len()).is_none(),
            "past the end"
        );
        assert!(MappedFile::open(&path.with_extension("none"))
            .unwrap()
            .is_none());
        let _ = std::fs::remove_file(path);
    }
}
