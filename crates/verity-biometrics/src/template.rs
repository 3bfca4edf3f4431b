//! Compact minutiae templates and their precomputed local "edge" tables.
//!
//! A template keeps its minutiae as 6-byte records (pixels at 197 px/cm = 500 ppi, angle in
//! 256ths of a turn) plus, for every minutia, the edges to its nearest neighbours described by
//! quantities that do not change under rotation or translation: the edge length and the angle of
//! the edge relative to each end's own direction. Edges are also bucketed by a coarse cell of
//! those three values so the matcher can look up compatible edges without scanning them all.

/// Resolution of template coordinates: 197 pixels per centimetre (500 pixels per inch).
pub const PIXELS_PER_CM: u16 = 197;
/// Templates keep at most this many minutiae (indices fit in a byte; 0xFF means "none").
pub const MAX_MINUTIAE: usize = 254;
/// Neighbours per minutia in the edge table.
pub const NEIGHBOURS: usize = 9;
/// The nearest few neighbours' edges are the ones used to look for root pairs: they survive
/// missing and spurious minutiae best, and fewer of them keep the search cheap.
pub const ROOT_NEIGHBOURS: usize = 5;
pub const PROBE_ROOT_NEIGHBOURS: usize = 2;
/// Edges longer than this (pixels) are not kept: distortion makes them unreliable.
pub const MAX_EDGE_LENGTH: i32 = 220;

/// Edge-length cell width (pixels) and count; angle cells are 16/256 of a turn (16 per turn).
pub(crate) const LEN_CELL: u16 = 8;
pub(crate) const LEN_CELLS: usize = 32;
pub(crate) const ANGLE_CELL_SHIFT: u32 = 4;
pub(crate) const ANGLE_CELLS: usize = 16;
pub(crate) const CELLS: usize = LEN_CELLS * ANGLE_CELLS * ANGLE_CELLS;

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

/// One directed edge from a minutia to one of its neighbours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    pub length: u16,
    /// Edge direction minus the origin minutia's direction.
    pub from_angle: u8,
    /// Edge direction minus the target minutia's direction.
    pub to_angle: u8,
    pub from: u8,
    pub to: u8,
}

impl Edge {
    #[inline]
    pub(crate) fn cell(&self) -> usize {
        let len_cell = usize::from(self.length / LEN_CELL).min(LEN_CELLS - 1);
        cell_index(
            len_cell,
            usize::from(self.from_angle >> ANGLE_CELL_SHIFT),
            usize::from(self.to_angle >> ANGLE_CELL_SHIFT),
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

/// Calls `f` for each cell that an edge compatible with `e` may fall in.
fn for_each_covered_cell(e: &Edge, mut f: impl FnMut(usize)) {
    let lo = e.length.saturating_sub(length_tolerance(e.length));
    let hi = e
        .length
        .saturating_add(length_tolerance(e.length.saturating_mul(12) / 11 + 6));
    let len_lo = usize::from(lo / LEN_CELL).min(LEN_CELLS - 1);
    let len_hi = usize::from(hi / LEN_CELL).min(LEN_CELLS - 1);
    let from_lo = e.from_angle.wrapping_sub(ANGLE_TOLERANCE) >> ANGLE_CELL_SHIFT;
    let from_n = angle_cell_span(e.from_angle);
    let to_lo = e.to_angle.wrapping_sub(ANGLE_TOLERANCE) >> ANGLE_CELL_SHIFT;
    let to_n = angle_cell_span(e.to_angle);
    for len_cell in len_lo..=len_hi {
        for i in 0..from_n {
            let fc = usize::from(from_lo.wrapping_add(i)) % ANGLE_CELLS;
            for j in 0..to_n {
                let tc = usize::from(to_lo.wrapping_add(j)) % ANGLE_CELLS;
                f(cell_index(len_cell, fc, tc));
            }
        }
    }
}

/// How many consecutive angle cells `angle ± ANGLE_TOLERANCE` touches.
#[inline]
fn angle_cell_span(angle: u8) -> u8 {
    let lo = angle.wrapping_sub(ANGLE_TOLERANCE) >> ANGLE_CELL_SHIFT;
    let hi = angle.wrapping_add(ANGLE_TOLERANCE) >> ANGLE_CELL_SHIFT;
    (hi.wrapping_sub(lo) % ANGLE_CELLS as u8) + 1
}

#[inline]
pub(crate) fn cell_index(len_cell: usize, from_cell: usize, to_cell: usize) -> usize {
    (len_cell * ANGLE_CELLS + from_cell) * ANGLE_CELLS + to_cell
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
            edges.push(Edge {
                length: (d2 as f32).sqrt().round() as u16,
                from_angle: dir.wrapping_sub(a.angle),
                to_angle: dir.wrapping_sub(b.angle),
                from: i as u8,
                to: j,
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
    /// Edge indices grouped by cell: cell c holds `cell_edges[cell_start[c]..cell_start[c + 1]]`.
    cell_start: Vec<u16>,
    cell_edges: Vec<u16>,
}

impl Template {
    /// Builds the edge tables. Keeps at most [`MAX_MINUTIAE`] minutiae (the first ones) and drops
    /// exact duplicates of position, which some extractors emit.
    pub fn new(minutiae: &[Minutia]) -> Self {
        let mut t = Template {
            minutiae: Vec::new(),
            offsets: Vec::new(),
            edges: Vec::new(),
            cell_start: Vec::new(),
            cell_edges: Vec::new(),
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
        self.cell_start.clear();
        self.cell_edges.clear();
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
    }

    /// Whether the cell index used to look up root pairs is built.
    pub fn has_cells(&self) -> bool {
        !self.cell_start.is_empty()
    }

    fn build_cells(&mut self) {
        let offsets = &self.offsets;
        let edges = &self.edges;
        // Counting sort of root edges into every cell their tolerance box touches, so a probe
        // edge needs to look in its own cell only.
        let is_root_edge = |idx: usize, e: &Edge| {
            idx - usize::from(offsets[usize::from(e.from)]) < ROOT_NEIGHBOURS
        };
        let cell_start = &mut self.cell_start;
        cell_start.clear();
        cell_start.resize(CELLS + 1, 0);
        for (idx, e) in edges.iter().enumerate() {
            if is_root_edge(idx, e) {
                for_each_covered_cell(e, |c| cell_start[c + 1] += 1);
            }
        }
        for c in 0..CELLS {
            cell_start[c + 1] += cell_start[c];
        }
        let cell_edges = &mut self.cell_edges;
        cell_edges.clear();
        cell_edges.resize(usize::from(cell_start[CELLS]), 0);
        // Fill each cell from its end backwards, using cell_start[c + 1] as the cursor; after the
        // pass every cursor has come down to its cell's start.
        for (idx, e) in edges.iter().enumerate().rev() {
            if is_root_edge(idx, e) {
                for_each_covered_cell(e, |c| {
                    cell_start[c + 1] -= 1;
                    cell_edges[usize::from(cell_start[c + 1])] = idx as u16;
                });
            }
        }
        // Slot c + 1 now holds cell c's start: shift down by one and close the last cell.
        cell_start.rotate_left(1);
        cell_start[CELLS] = cell_edges.len() as u16;
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

    /// The probe-side edges used to find root pairs: the first [`PROBE_ROOT_NEIGHBOURS`] of each
    /// minutia (the candidate side buckets [`ROOT_NEIGHBOURS`], so a neighbour shifted by one
    /// rank through a missing or spurious minutia still pairs).
    pub(crate) fn probe_root_edges(&self) -> impl Iterator<Item = &Edge> {
        (0..self.minutiae.len()).flat_map(move |i| {
            let own = self.edges_of(i as u8);
            &own[..own.len().min(PROBE_ROOT_NEIGHBOURS)]
        })
    }

    /// Indices (into [`Template::edges`]) of the root edges in one cell.
    #[inline]
    pub(crate) fn cell_edges(&self, cell: usize) -> &[u16] {
        match (self.cell_start.get(cell), self.cell_start.get(cell + 1)) {
            (Some(&a), Some(&b)) => self
                .cell_edges
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
        let bucketed: usize = (0..CELLS).map(|c| t.cell_edges(c).len()).sum();
        assert!(bucketed >= 30 * ROOT_NEIGHBOURS);
        assert!(bucketed <= 30 * ROOT_NEIGHBOURS * 4 * 3 * 3);
    }
}
