//! Compact minutiae templates and their precomputed local "edge" tables.
//!
//! A template keeps its minutiae as 6-byte records (pixels at 197 px/cm = 500 ppi, angle in
//! 256ths of a turn) plus, for every minutia, the edges to its nearest neighbours described by
//! quantities that do not change under rotation or translation: the edge length and the angle of
//! the edge relative to each end's own direction. The shortest edges are also copied into a
//! small table by coarse relative angles, so the matcher finds compatible edges (root
//! pairs) by reading one short run instead of scanning them all.

/// Resolution of template coordinates: 197 pixels per centimetre (500 pixels per inch).
pub const PIXELS_PER_CM: u16 = 197;
/// Templates keep at most this many minutiae (indices fit in a byte; 0xFF means "none").
pub const MAX_MINUTIAE: usize = 254;
/// Neighbours per minutia in the edge table.
pub const NEIGHBOURS: usize = 9;
/// The nearest few neighbours' edges are the ones used to look for root pairs: they survive
/// missing and spurious minutiae best, and fewer of them keep the search cheap.
pub const ROOT_NEIGHBOURS: usize = 2;
pub const PROBE_ROOT_NEIGHBOURS: usize = 2;
/// Edges longer than this (pixels) are not kept: distortion makes them unreliable.
pub const MAX_EDGE_LENGTH: i32 = 220;

/// Root-table cells: the edge's angle relative to its origin minutia by its angle relative to
/// its target minutia, each in 32 cells of 8/256 of a turn. Angles separate unrelated edges far
/// better than lengths, whose tolerance spans much of the short-edge range. Each row repeats its
/// first [`ROOT_TO_PAD`] target cells at its end, so that every lookup, even one whose tolerance
/// wraps past a full turn, reads one contiguous run. 1,120 cells: the offsets take 2.2 KB.
pub(crate) const ROOT_FROM_SHIFT: u32 = 3;
pub(crate) const ROOT_FROM_CELLS: usize = 256 >> ROOT_FROM_SHIFT;
pub(crate) const ROOT_TO_SHIFT: u32 = 3;
pub(crate) const ROOT_TO_CELLS: usize = 256 >> ROOT_TO_SHIFT;
/// `angle ± ANGLE_TOLERANCE` (25 values) touches at most this many target cells past its first.
pub(crate) const ROOT_TO_PAD: usize = (2 * ANGLE_TOLERANCE as usize).div_ceil(1 << ROOT_TO_SHIFT);
pub(crate) const ROOT_ROW: usize = ROOT_TO_CELLS + ROOT_TO_PAD;
pub(crate) const ROOT_CELLS: usize = ROOT_FROM_CELLS * ROOT_ROW;

/// Kind of a minutia. The matcher ignores it on purpose: extractors confuse the two often.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MinutiaType {
    Other,
    RidgeEnding,
    Bifurcation,
}

impl MinutiaType {
    pub fn code(self) -> u8 {
        match self {
            MinutiaType::Other => 0,
            MinutiaType::RidgeEnding => 1,
            MinutiaType::Bifurcation => 2,
        }
    }
    pub fn from_code(code: u8) -> Self {
        match code {
            1 => MinutiaType::RidgeEnding,
            2 => MinutiaType::Bifurcation,
            _ => MinutiaType::Other,
        }
    }
}

/// One minutia: position in pixels at 500 ppi (y grows downwards, as in images) and direction
/// in 256ths of a turn, counter-clockwise from the positive x axis (as ISO/IEC 19794-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Minutia {
    pub x: i16,
    pub y: i16,
    pub angle: u8,
    pub kind: MinutiaType,
}

impl Minutia {
    /// From degrees (counter-clockwise) and a position at `pixels_per_cm`; rescaled to 500 ppi.
    pub fn from_degrees(
        x: f32,
        y: f32,
        degrees: f32,
        kind: MinutiaType,
        pixels_per_cm: u16,
    ) -> Self {
        let scale = if pixels_per_cm == 0 {
            1.0
        } else {
            f32::from(PIXELS_PER_CM) / f32::from(pixels_per_cm)
        };
        Minutia {
            x: clamp_i16(x * scale),
            y: clamp_i16(y * scale),
            angle: degrees_to_angle(degrees),
            kind,
        }
    }

    pub fn degrees(&self) -> f32 {
        f32::from(self.angle) * 360.0 / 256.0
    }
}

fn clamp_i16(v: f32) -> i16 {
    // `as` saturates for floats; NaN becomes 0, which is harmless for a coordinate.
    v.round().clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16
}

/// Degrees (any value) to 256ths of a turn.
pub fn degrees_to_angle(degrees: f32) -> u8 {
    if !degrees.is_finite() {
        return 0;
    }
    let turns = (degrees / 360.0).rem_euclid(1.0);
    ((turns * 256.0).round() as u32 % 256) as u8
}

/// Direction of the vector (dx, dy) in image coordinates (y down), counter-clockwise, in 256ths.
///
/// A polynomial arctangent (error under 0.2 of a 256th) instead of libm's `atan2`: template
/// building computes one per edge and is on the search path.
pub(crate) fn direction(dx: i32, dy: i32) -> u8 {
    let x = dx as f32;
    let y = -(dy as f32);
    let ax = x.abs();
    let ay = y.abs();
    if ax == 0.0 && ay == 0.0 {
        return 0;
    }
    // atan(z) for z in [0, 1], in turns: z/8 + 0.273 z (1 - z) / (2 pi).
    let (z, swapped) = if ay <= ax {
        (ay / ax, false)
    } else {
        (ax / ay, true)
    };
    let mut turns = z * 0.125 + 0.043_449 * z * (1.0 - z);
    if swapped {
        turns = 0.25 - turns;
    }
    if x < 0.0 {
        turns = 0.5 - turns;
    }
    if y < 0.0 {
        turns = 1.0 - turns;
    }
    ((turns * 256.0).round() as u32 % 256) as u8
}

/// Absolute difference of two angles in 256ths, in 0..=128.
#[inline]
pub(crate) fn angle_distance(a: u8, b: u8) -> u8 {
    let d = a.wrapping_sub(b);
    d.min(d.wrapping_neg())
}

/// One directed edge from a minutia to one of its neighbours (8 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    pub length: u16,
    /// Edge direction minus the origin minutia's direction.
    pub from_angle: u8,
    /// Edge direction minus the target minutia's direction.
    pub to_angle: u8,
    pub from: u8,
    pub to: u8,
    /// Absolute edge direction (256ths): the rotation between two matching edges is the
    /// difference of their directions, with no lookup of the minutiae.
    pub direction: u8,
    /// [`length_tolerance`] of `length`, precomputed: it is monotone, so the tolerance of the
    /// longer of two edges is the larger of their tolerances.
    pub tolerance: u8,
}

impl Edge {
    /// Absolute direction of the target minutia.
    #[inline]
    pub(crate) fn target_angle(&self) -> u8 {
        self.direction.wrapping_sub(self.to_angle)
    }

    /// Shortest length an edge compatible with this one may have.
    #[inline]
    pub(crate) fn min_compatible_length(&self) -> u16 {
        self.length.saturating_sub(u16::from(self.tolerance))
    }

    /// Longest length an edge compatible with this one may have (c - l <= 5 + c / 12).
    #[inline]
    pub(crate) fn max_compatible_length(&self) -> u16 {
        MAX_COMPATIBLE_LENGTH
            .get(usize::from(self.length))
            .copied()
            .unwrap_or(u16::MAX)
    }
}

/// For each edge length l, the longest c with c - l <= [`length_tolerance`]`(c)`: compatible
/// lengths form the interval `[l - tolerance(l), MAX_COMPATIBLE_LENGTH[l]]` because the
/// tolerance of two edges is that of the longer.
const MAX_COMPATIBLE_LENGTH: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut l = 0;
    while l < 256 {
        let mut c = l as u16;
        while c < l as u16 + 5 + (c + 1) / 12 {
            c += 1;
        }
        table[l] = c;
        l += 1;
    }
    table
};

/// Whether two angles (256ths) differ by at most `tolerance` (< 128), with one wrapping add.
#[inline(always)]
pub(crate) fn angles_within(a: u8, b: u8, tolerance: u8) -> bool {
    a.wrapping_sub(b).wrapping_add(tolerance) <= 2 * tolerance
}

/// A root edge in the root table, packed in one u64 so that the compatibility test and the
/// root it yields are a few whole-word operations (SIMD within a register).
///
/// Little-endian bytes: 0 length (saturated at 255; edges are at most [`MAX_EDGE_LENGTH`]),
/// 1 origin minutia, 2 origin angle, 3 target minutia, 4 target angle, 5 and 6 zero,
/// 7 absolute direction. Read as four 16-bit lanes, the low byte of lanes 0..=2 holds the
/// checked quantity (length, origin angle, target angle) and the high bytes carry payload that
/// the test masks away; see [`RootQuery::accepts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct RootEdge(pub u64);

/// Lane guards and masks of the four 16-bit lanes of a [`RootEdge`].
const LANE_GUARD: u64 = 0x0100_0100_0100_0100;
const LANE_LOW: u64 = 0x00FF_00FF_00FF_00FF;
const LANE_TOP: u64 = 0x8000_8000_8000_8000;

/// One of a template's root edges with its lookup in another template's root table worked out
/// in advance: which cells to read and the interval of compatible lengths and angles. The
/// matcher then reads runs and does a few word operations per table edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct RootQuery {
    /// Root-table cells `first..=last` to read.
    pub first_cell: u16,
    pub last_cell: u16,
    /// Per 16-bit lane (length, origin angle, target angle, unused): the lowest compatible
    /// value, and 0x7FFF minus the width of the compatible interval (0 for the unused lane).
    pub base: u64,
    pub slack: u64,
    /// Added to a compatible table edge, gives the root word: byte 1 candidate origin, 3
    /// candidate target, 5 probe origin, 6 probe target, 7 rotation (candidate direction minus
    /// probe direction, wrapping out of the word). See [`RootWord`].
    pub root_add: u64,
}

impl RootQuery {
    fn new(e: &Edge) -> Self {
        let row = root_cell(usize::from(e.from_angle >> ROOT_FROM_SHIFT), 0);
        let (first, last) = covered_angle_cells(e.to_angle, ROOT_TO_SHIFT);
        // Past the row's end the padding repeats its first cells.
        let last = first + (last + ROOT_TO_CELLS - first) % ROOT_TO_CELLS;
        let shortest = e.min_compatible_length().min(u16::from(u8::MAX));
        let longest = e.max_compatible_length().min(u16::from(u8::MAX));
        let length_span = longest.saturating_sub(shortest);
        let lanes = |a: u16, b: u16, c: u16, d: u16| {
            u64::from(a) | u64::from(b) << 16 | u64::from(c) << 32 | u64::from(d) << 48
        };
        let angle_width = 2 * u16::from(ANGLE_TOLERANCE);
        RootQuery {
            first_cell: (row + first) as u16,
            last_cell: (row + last) as u16,
            base: lanes(
                shortest,
                u16::from(e.from_angle.wrapping_sub(ANGLE_TOLERANCE)),
                u16::from(e.to_angle.wrapping_sub(ANGLE_TOLERANCE)),
                0,
            ),
            slack: lanes(
                0x7FFF - length_span,
                0x7FFF - angle_width,
                0x7FFF - angle_width,
                0,
            ),
            root_add: u64::from(e.from) << 40
                | u64::from(e.to) << 48
                | u64::from(e.direction.wrapping_neg()) << 56,
        }
    }

    /// Whether a root-table edge is compatible: its length and both relative angles within
    /// tolerance. Four 16-bit lanes at once: setting bit 8 of each lane keeps the lane-wise
    /// subtraction from borrowing across lanes; masking to the low byte gives each checked
    /// quantity's wrapping distance `d` above the interval's start (and clears the payload);
    /// adding `0x7FFF - width` sets the lane's top bit exactly when `d > width`.
    #[inline(always)]
    pub(crate) fn accepts(&self, candidate: RootEdge) -> bool {
        let distance = ((candidate.0 | LANE_GUARD).wrapping_sub(self.base)) & LANE_LOW;
        (distance + self.slack) & LANE_TOP == 0
    }
}

/// A root pair (two minutia correspondences and the implied rotation) as the matcher stores it:
/// [`RootEdge`] plus [`RootQuery::root_add`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct RootWord(pub u64);

impl RootWord {
    #[inline(always)]
    fn byte(self, i: u32) -> u8 {
        (self.0 >> (8 * i)) as u8
    }
    #[inline(always)]
    pub(crate) fn cand_from(self) -> u8 {
        self.byte(1)
    }
    #[inline(always)]
    pub(crate) fn cand_to(self) -> u8 {
        self.byte(3)
    }
    #[inline(always)]
    pub(crate) fn probe_from(self) -> u8 {
        self.byte(5)
    }
    #[inline(always)]
    pub(crate) fn probe_to(self) -> u8 {
        self.byte(6)
    }
    #[inline(always)]
    pub(crate) fn rotation(self) -> u8 {
        self.byte(7)
    }
}

impl RootEdge {
    pub(crate) fn new(
        length: u8,
        from_angle: u8,
        to_angle: u8,
        direction: u8,
        from: u8,
        to: u8,
    ) -> Self {
        RootEdge(u64::from_le_bytes([
            length, from, from_angle, to, to_angle, 0, 0, direction,
        ]))
    }

    /// The root this edge forms with the probe edge of `query` (meaningful when accepted).
    #[inline(always)]
    pub(crate) fn root_with(self, query: &RootQuery) -> RootWord {
        // Bytes 5..=6 of the edge are zero and bytes 0..=4 of `root_add` are: no carries
        // between fields, and the rotation byte wraps out of the word.
        RootWord(self.0.wrapping_add(query.root_add))
    }
}

impl From<&Edge> for RootEdge {
    fn from(e: &Edge) -> Self {
        RootEdge::new(
            e.length.min(u16::from(u8::MAX)) as u8,
            e.from_angle,
            e.to_angle,
            e.direction,
            e.from,
            e.to,
        )
    }
}

/// Edge-length tolerance in pixels: a fixed part for position noise plus ~8% for distortion.
#[inline]
pub(crate) fn length_tolerance(length: u16) -> u16 {
    5 + length / 12
}

/// Largest relative-angle disagreement (256ths of a turn, about 17 degrees) for two edges to
/// be compatible.
pub const ANGLE_TOLERANCE: u8 = 12;

/// Calls `f` for each root-table angle cell that `angle ± ANGLE_TOLERANCE` touches.
#[inline]
fn for_each_covered_from_cell(angle: u8, mut f: impl FnMut(usize)) {
    let (lo, hi) = covered_angle_cells(angle, ROOT_FROM_SHIFT);
    let span = hi.wrapping_sub(lo) % ROOT_FROM_CELLS + 1;
    for i in 0..span {
        f((lo + i) % ROOT_FROM_CELLS);
    }
}

/// First and last angle cell (wrapping: `last` may be below `first`) that `angle ±
/// ANGLE_TOLERANCE` touches.
#[inline]
pub(crate) fn covered_angle_cells(angle: u8, shift: u32) -> (usize, usize) {
    (
        usize::from(angle.wrapping_sub(ANGLE_TOLERANCE) >> shift),
        usize::from(angle.wrapping_add(ANGLE_TOLERANCE) >> shift),
    )
}

/// Root-table cell of an origin-angle cell and a target angle.
/// Calls `f` with the target-angle columns of a root edge: its cell, and the padding copy.
#[inline]
fn for_each_to_column(to_angle: u8, mut f: impl FnMut(usize)) {
    let cell = usize::from(to_angle >> ROOT_TO_SHIFT);
    f(cell);
    if cell < ROOT_TO_PAD {
        f(cell + ROOT_TO_CELLS);
    }
}

#[inline]
pub(crate) fn root_cell(from_cell: usize, to_cell: usize) -> usize {
    from_cell * ROOT_ROW + to_cell
}

/// Fills `edges` with each minutia's edges to its `k` nearest neighbours (within
/// [`MAX_EDGE_LENGTH`]), nearest first, grouped by origin; `offsets` gets each group's start
/// plus a final end. `minutiae` must hold at most [`MAX_MINUTIAE`] entries.
pub fn nearest_edges(
    minutiae: &[Minutia],
    k: usize,
    scratch: &mut Vec<(i32, u8)>,
    offsets: &mut Vec<u16>,
    edges: &mut Vec<Edge>,
) {
    offsets.clear();
    edges.clear();
    let minutiae = &minutiae[..minutiae.len().min(MAX_MINUTIAE)];
    for (i, a) in minutiae.iter().enumerate() {
        offsets.push(edges.len() as u16);
        scratch.clear();
        for (j, b) in minutiae.iter().enumerate() {
            if i == j {
                continue;
            }
            let dx = i32::from(b.x) - i32::from(a.x);
            let dy = i32::from(b.y) - i32::from(a.y);
            // The bound check first also keeps the squares below i32 overflow.
            if dx.abs() > MAX_EDGE_LENGTH || dy.abs() > MAX_EDGE_LENGTH {
                continue;
            }
            let d2 = dx * dx + dy * dy;
            if d2 <= MAX_EDGE_LENGTH * MAX_EDGE_LENGTH {
                scratch.push((d2, j as u8));
            }
        }
        let keep = k.min(scratch.len());
        if keep < scratch.len() {
            scratch.select_nth_unstable(keep);
        }
        scratch.truncate(keep);
        scratch.sort_unstable();
        for &(d2, j) in scratch.iter() {
            let b = minutiae[usize::from(j)];
            let dx = i32::from(b.x) - i32::from(a.x);
            let dy = i32::from(b.y) - i32::from(a.y);
            let dir = direction(dx, dy);
            let length = (d2 as f32).sqrt().round() as u16;
            edges.push(Edge {
                length,
                from_angle: dir.wrapping_sub(a.angle),
                to_angle: dir.wrapping_sub(b.angle),
                from: i as u8,
                to: j,
                direction: dir,
                tolerance: length_tolerance(length).min(u16::from(u8::MAX)) as u8,
            });
        }
    }
    offsets.push(edges.len() as u16);
}

/// A finger's minutiae with their edge table, ready for comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    minutiae: Vec<Minutia>,
    /// Edges of minutia i are `edges[offsets[i]..offsets[i + 1]]`.
    offsets: Vec<u16>,
    edges: Vec<Edge>,
    /// Root edges (each minutia's first [`ROOT_NEIGHBOURS`]) sorted by root cell, each copied
    /// into every origin-angle cell its tolerance touches (the prober then looks in its own
    /// origin-angle cell and the contiguous target-angle cells its tolerance touches): cell c holds
    /// `root_edges[root_start[c]..root_start[c + 1]]`. Copies, not indices, so that a lookup
    /// reads one contiguous run.
    root_start: Vec<u16>,
    root_edges: Vec<RootEdge>,
    /// This template's root edges prepared for lookups in another template's root table.
    root_queries: Vec<RootQuery>,
}

impl Template {
    /// Builds the edge tables. Keeps at most [`MAX_MINUTIAE`] minutiae (the first ones) and drops
    /// exact duplicates of position, which some extractors emit.
    pub fn new(minutiae: &[Minutia]) -> Self {
        let mut t = Template {
            minutiae: Vec::new(),
            offsets: Vec::new(),
            edges: Vec::new(),
            root_start: Vec::new(),
            root_edges: Vec::new(),
            root_queries: Vec::new(),
        };
        let mut scratch = Vec::new();
        t.rebuild(minutiae, &mut scratch);
        t
    }

    /// Rebuilds this template for other minutiae, reusing its buffers (and `scratch`), so that
    /// templates made on the fly during a search do not allocate once warmed up.
    pub fn rebuild(&mut self, minutiae: &[Minutia], scratch: &mut Vec<(i32, u8)>) {
        self.rebuild_edges_only(minutiae, scratch);
        self.build_cells();
    }

    /// Like [`Template::rebuild`] but without the cell index: cheaper, and enough for the side
    /// passed as `probe` to [`crate::Matcher::compare`] (the matcher swaps the two templates when
    /// only the probe has cells).
    pub fn rebuild_edges_only(&mut self, minutiae: &[Minutia], scratch: &mut Vec<(i32, u8)>) {
        self.root_start.clear();
        self.root_edges.clear();
        let kept = &mut self.minutiae;
        kept.clear();
        for m in minutiae {
            if kept.len() == MAX_MINUTIAE {
                break;
            }
            if !kept.iter().any(|k| k.x == m.x && k.y == m.y) {
                kept.push(*m);
            }
        }
        let offsets = &mut self.offsets;
        let edges = &mut self.edges;
        nearest_edges(kept, NEIGHBOURS, scratch, offsets, edges);
        self.root_queries.clear();
        for group in self.offsets.windows(2) {
            let (a, b) = (usize::from(group[0]), usize::from(group[1]));
            let own = &self.edges[a..b];
            for e in &own[..own.len().min(PROBE_ROOT_NEIGHBOURS)] {
                // A mutual pair of near neighbours gives two root edges, i->j and j->i; both
                // find the same correspondences in the other template's table (which keeps
                // both directions), so the one from the higher index is not asked again.
                if e.to < e.from {
                    let back = self.edges_of(e.to);
                    if back[..back.len().min(PROBE_ROOT_NEIGHBOURS)]
                        .iter()
                        .any(|r| r.to == e.from)
                    {
                        continue;
                    }
                }
                self.root_queries.push(RootQuery::new(e));
            }
        }
    }

    /// Whether the root table used to look up root pairs is built.
    pub fn has_cells(&self) -> bool {
        !self.root_start.is_empty()
    }

    fn build_cells(&mut self) {
        let offsets = &self.offsets;
        let edges = &self.edges;
        let is_root_edge = |idx: usize, e: &Edge| {
            idx - usize::from(offsets[usize::from(e.from)]) < ROOT_NEIGHBOURS
        };
        // Counting sort into cells: count, prefix sums, then place.
        let start = &mut self.root_start;
        start.clear();
        start.resize(ROOT_CELLS + 1, 0);
        for (idx, e) in edges.iter().enumerate() {
            if is_root_edge(idx, e) {
                for_each_to_column(e.to_angle, |t| {
                    for_each_covered_from_cell(e.from_angle, |a| {
                        start[root_cell(a, t) + 1] += 1;
                    });
                });
            }
        }
        for c in 0..ROOT_CELLS {
            start[c + 1] += start[c];
        }
        let placed = &mut self.root_edges;
        placed.clear();
        placed.resize(usize::from(start[ROOT_CELLS]), RootEdge::default());
        // Fill each cell from its end backwards, using start[c + 1] as the cursor; after the pass
        // every cursor has come down to its cell's start.
        for (idx, e) in edges.iter().enumerate().rev() {
            if is_root_edge(idx, e) {
                for_each_to_column(e.to_angle, |t| {
                    for_each_covered_from_cell(e.from_angle, |a| {
                        let c = root_cell(a, t);
                        start[c + 1] -= 1;
                        placed[usize::from(start[c + 1])] = RootEdge::from(e);
                    });
                });
            }
        }
        // Slot c + 1 now holds cell c's start: shift down by one and close the last cell.
        start.rotate_left(1);
        start[ROOT_CELLS] = placed.len() as u16;
    }

    pub fn minutiae(&self) -> &[Minutia] {
        &self.minutiae
    }

    pub fn len(&self) -> usize {
        self.minutiae.len()
    }

    pub fn is_empty(&self) -> bool {
        self.minutiae.is_empty()
    }

    pub fn edges(&self) -> &[Edge] {
        &self.edges
    }

    /// Edges leaving minutia `i`.
    #[inline]
    pub fn edges_of(&self, i: u8) -> &[Edge] {
        let i = usize::from(i);
        match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(&a), Some(&b)) => &self.edges[usize::from(a)..usize::from(b)],
            _ => &[],
        }
    }

    /// The root table's cell starts (empty without a table) and its edges.
    #[inline]
    pub(crate) fn root_table(&self) -> (&[u16], &[RootEdge]) {
        (&self.root_start, &self.root_edges)
    }

    #[inline]
    pub(crate) fn root_queries(&self) -> &[RootQuery] {
        &self.root_queries
    }

    /// The root edges placed in root-table cells `first..=last` (one contiguous run).
    #[cfg(test)]
    pub(crate) fn root_edges_in(&self, first: usize, last: usize) -> &[RootEdge] {
        match (self.root_start.get(first), self.root_start.get(last + 1)) {
            (Some(&a), Some(&b)) => self
                .root_edges
                .get(usize::from(a)..usize::from(b))
                .unwrap_or(&[]),
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degrees_round_trip_and_wrap() {
        assert_eq!(degrees_to_angle(0.0), 0);
        assert_eq!(degrees_to_angle(90.0), 64);
        assert_eq!(degrees_to_angle(-90.0), 192);
        assert_eq!(degrees_to_angle(360.0), 0);
        assert_eq!(degrees_to_angle(f32::NAN), 0);
        assert_eq!(angle_distance(250, 4), 10);
        assert_eq!(angle_distance(0, 128), 128);
    }

    #[test]
    fn compatible_length_interval_is_exact() {
        for l in 0u16..=220 {
            let e = Edge {
                length: l,
                from_angle: 0,
                to_angle: 0,
                from: 0,
                to: 1,
                direction: 0,
                tolerance: length_tolerance(l) as u8,
            };
            for c in 0u16..=255 {
                let want = l.abs_diff(c) <= length_tolerance(l.max(c));
                let got = (e.min_compatible_length()..=e.max_compatible_length()).contains(&c);
                assert_eq!(got, want, "{l} {c}");
            }
        }
        // The packed four-lane test agrees with the plain one.
        for l in (0u16..=220).step_by(7) {
            for fa in (0u16..256).step_by(29) {
                let e = Edge {
                    length: l,
                    from_angle: fa as u8,
                    to_angle: (fa * 7) as u8,
                    from: 0,
                    to: 1,
                    direction: 3,
                    tolerance: length_tolerance(l) as u8,
                };
                let q = RootQuery::new(&e);
                for c in (0u16..=255).step_by(3) {
                    for da in [0u8, 5, 11, 12, 13, 40, 128, 243, 244, 245, 250] {
                        let (rf, rt) = (
                            e.from_angle.wrapping_add(da),
                            e.to_angle.wrapping_sub(da / 2),
                        );
                        let r = RootEdge::new(c as u8, rf, rt, 9, 200, 201);
                        let want = (e.min_compatible_length()..=e.max_compatible_length())
                            .contains(&c)
                            && angles_within(rf, e.from_angle, ANGLE_TOLERANCE)
                            && angles_within(rt, e.to_angle, ANGLE_TOLERANCE);
                        assert_eq!(q.accepts(r), want, "{e:?} {r:?}");
                        if want {
                            let root = r.root_with(&q);
                            assert_eq!(
                                (
                                    root.cand_from(),
                                    root.cand_to(),
                                    root.probe_from(),
                                    root.probe_to()
                                ),
                                (200, 201, 0, 1)
                            );
                            assert_eq!(root.rotation(), 9u8.wrapping_sub(3));
                        }
                    }
                }
            }
        }
        for (a, b) in [(0u8, 12u8), (250, 6), (6, 250), (0, 13), (128, 116)] {
            assert_eq!(
                angles_within(a, b, 12),
                angle_distance(a, b) <= 12,
                "{a} {b}"
            );
        }
    }

    #[test]
    fn direction_is_counter_clockwise_with_y_down() {
        assert_eq!(direction(10, 0), 0);
        assert_eq!(direction(0, -10), 64); // up in the image
        assert_eq!(direction(-10, 0), 128);
        assert_eq!(direction(0, 10), 192);
        for deg in 0..360 {
            let r = (deg as f64).to_radians();
            let (dx, dy) = (
                (1000.0 * r.cos()).round() as i32,
                (-1000.0 * r.sin()).round() as i32,
            );
            let want = degrees_to_angle(deg as f32);
            assert!(angle_distance(direction(dx, dy), want) <= 1, "{deg}");
        }
    }

    #[test]
    fn edge_table_is_grouped_and_bucketed() {
        let ms: Vec<Minutia> = (0..30)
            .map(|i| Minutia {
                x: (i * 37 % 300) as i16,
                y: (i * 53 % 280) as i16,
                angle: (i * 29) as u8,
                kind: MinutiaType::RidgeEnding,
            })
            .collect();
        let t = Template::new(&ms);
        assert_eq!(t.len(), 30);
        let mut seen = 0;
        for i in 0..30u8 {
            for e in t.edges_of(i) {
                assert_eq!(e.from, i);
                assert!(i32::from(e.length) <= MAX_EDGE_LENGTH);
                seen += 1;
            }
        }
        assert_eq!(seen, t.edges().len());
        let bucketed = t.root_edges_in(0, ROOT_CELLS - 1);
        assert!(bucketed.len() >= 30 * ROOT_NEIGHBOURS);
        assert!(bucketed.len() <= 30 * ROOT_NEIGHBOURS * 5 * 2);
        // Every root edge sits in each angle cell its tolerance touches, at its length cell.
        for e in t.edges() {
            for a in [
                e.from_angle.wrapping_sub(ANGLE_TOLERANCE),
                e.from_angle,
                e.from_angle.wrapping_add(ANGLE_TOLERANCE),
            ] {
                let c = root_cell(
                    usize::from(a >> ROOT_FROM_SHIFT),
                    usize::from(e.to_angle >> ROOT_TO_SHIFT),
                );
                let in_cell = t.root_edges_in(c, c);
                let rank = t.edges_of(e.from).iter().position(|x| x == e).unwrap_or(99);
                assert_eq!(
                    in_cell.contains(&RootEdge::from(e)),
                    rank < ROOT_NEIGHBOURS,
                    "{e:?}"
                );
            }
        }
    }
}
