//! Single-finger minutiae matcher.
//!
//! 1. Root pairs: each probe minutia's shortest edges are looked up in the candidate's root
//!    table (coarse length × origin angle cells); each candidate edge with a compatible length
//!    and relative angles gives a root (two minutia correspondences at once) and an implied
//!    rotation.
//! 2. The implied rotations vote in a 32-bin histogram; roots near the peak are kept, so a
//!    consistent global rotation is required without trusting any single root.
//! 3. From up to [`MAX_TRIED_ROOTS`] such roots an alignment is grown along the two edge graphs:
//!    a matched pair (p, c) extends to neighbours (q, d) whose edges p→q and c→d agree. Growth
//!    is local, so elastic distortion accumulates gently instead of breaking a global fit, and
//!    missing or spurious minutiae only cut a few branches.
//! 4. Score = matched / sqrt(probe count × candidate count): in 0..1, symmetric, and fair to
//!    partial prints (a small probe fully inside a large print still scores well).
//!
//! Minutia type is ignored. All scratch space lives in [`Matcher`] and is reused: the
//! comparison itself does not allocate. Everything is small-integer arithmetic on 8-byte edge
//! records precomputed by [`Template`] (length, relative angles, absolute direction and length
//! tolerance), read in sorted runs.

pub use crate::template::ANGLE_TOLERANCE;
use crate::template::{angle_distance, angles_within, Edge, RootWord, Template, ROOT_CELLS};

/// Largest disagreement between a pair's rotation and the root's rotation (about 56 degrees).
pub const ROTATION_DRIFT: u8 = 40;
/// Roots tried per comparison.
pub const MAX_TRIED_ROOTS: usize = 4;
const MAX_ROOTS: usize = 4096;
const NONE: u8 = 0xFF;
/// Best root support at or below which only one root is grown (see `compare_indexed`): a
/// correspondence found through one root edge only (support 2, once from each end) or barely
/// more.
const WEAK_SUPPORT: u8 = 3;
/// Roots kept, best supported first, for growing (more than [`MAX_TRIED_ROOTS`] because roots
/// already inside the best alignment are skipped).
const RANKED_ROOTS: usize = 8;
const ROTATION_BINS: usize = 32;
/// Half-width of the accepted rotation window around the histogram peak (about 20 degrees).
const ROTATION_WINDOW: u8 = 14;

/// 2^22 / tolerance, so that the length error scales by a multiply instead of a division.
const RECIPROCAL: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut t = 1;
    while t < 256 {
        table[t] = (1 << 22) / t as u32;
        t += 1;
    }
    table
};

/// Disagreement of two edges whose lengths are known to be compatible, or None when their
/// relative angles are not.
#[inline(always)]
fn angle_checked_error(a: &Edge, b: &Edge) -> Option<u32> {
    if !(angles_within(a.from_angle, b.from_angle, ANGLE_TOLERANCE)
        & angles_within(a.to_angle, b.to_angle, ANGLE_TOLERANCE))
    {
        return None;
    }
    let dl = u32::from(a.length.abs_diff(b.length));
    let tol = a.tolerance.max(b.tolerance);
    // dl * 64 / tol (0..=64) by a multiply; a tolerance of 0 never occurs (it is at least 5)
    // and would only give 0.
    let length_error = (dl * RECIPROCAL[usize::from(tol)]) >> 16;
    let d1 = u32::from(angle_distance(a.from_angle, b.from_angle));
    let d2 = u32::from(angle_distance(a.to_angle, b.to_angle));
    Some(length_error + (d1 + d2) * 3)
}

#[derive(Debug, Clone, Copy, Default)]
struct Root {
    probe_from: u8,
    probe_to: u8,
    cand_from: u8,
    cand_to: u8,
    rotation: u8,
}

impl From<RootWord> for Root {
    fn from(w: RootWord) -> Self {
        Root {
            probe_from: w.probe_from(),
            probe_to: w.probe_to(),
            cand_from: w.cand_from(),
            cand_to: w.cand_to(),
            rotation: w.rotation(),
        }
    }
}

/// Result of one finger comparison.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FingerScore {
    /// matched / sqrt(probe minutiae × candidate minutiae), 0..1.
    pub score: f32,
    pub matched: u16,
}

/// Reusable scratch space for comparisons. One per thread. The per-minutia maps are 256-entry
/// arrays indexed by a `u8`, so the hot loops need no bounds checks.
#[derive(Debug, Clone)]
pub struct Matcher {
    roots: Box<[RootWord; MAX_ROOTS]>,
    root_count: usize,
    probe_to_cand: [u8; 256],
    cand_to_probe: [u8; 256],
    best_probe_to_cand: [u8; 256],
    /// Pairs whose neighbourhoods are still to be explored; each probe minutia enters once.
    stack: [(u8, u8); 256],
}

impl Default for Matcher {
    fn default() -> Self {
        Self::new()
    }
}

impl Matcher {
    pub fn new() -> Self {
        Matcher {
            roots: Box::new([RootWord::default(); MAX_ROOTS]),
            root_count: 0,
            probe_to_cand: [NONE; 256],
            cand_to_probe: [NONE; 256],
            best_probe_to_cand: [NONE; 256],
            stack: [(NONE, NONE); 256],
        }
    }

    /// Compares two fingers. Symmetric up to tie-breaking; 0 when either has < 3 minutiae.
    /// At least one template must have its root table ([`Template::has_cells`]); when only
    /// `probe` has it, the roles are swapped. With neither, the score is 0.
    pub fn compare(&mut self, probe: &Template, cand: &Template) -> FingerScore {
        if cand.has_cells() {
            self.compare_indexed(probe, cand)
        } else if probe.has_cells() {
            self.compare_indexed(cand, probe)
        } else {
            FingerScore::default()
        }
    }

    fn compare_indexed(&mut self, probe: &Template, cand: &Template) -> FingerScore {
        let np = probe.len();
        let nc = cand.len();
        if np < 3 || nc < 3 {
            return FingerScore::default();
        }
        self.find_roots(probe, cand);
        if self.root_count == 0 {
            return FingerScore::default();
        }
        let peak = self.rotation_peak();
        let ranked = self.rank_roots(peak);
        self.best_probe_to_cand[..np].fill(NONE);
        let mut best = 0usize;
        let mut tried = 0usize;
        let enough = np.min(nc) * 3 / 4;
        // Early rejection: when even the best root is found hardly more often than through its
        // own edge (support 2: once from each end; mutual edges are asked once, see
        // `Template::rebuild_edges_only`), the pair is most likely unrelated; one growth
        // confirms or not, instead of trying several roots.
        let tries = if ranked[0].0 <= WEAK_SUPPORT {
            1
        } else {
            MAX_TRIED_ROOTS
        };
        for &(_, r) in ranked.iter().take_while(|(support, _)| *support > 0) {
            let root = Root::from(self.roots[usize::from(r) % MAX_ROOTS]);
            if self.best_probe_to_cand[usize::from(root.probe_from)] == root.cand_from {
                // Already part of the best alignment: growing again would find the same one.
                continue;
            }
            let matched = self.grow(probe, cand, root);
            if matched > best {
                best = matched;
                self.best_probe_to_cand[..np].copy_from_slice(&self.probe_to_cand[..np]);
            }
            tried += 1;
            if tried >= tries || best >= enough {
                break;
            }
        }
        FingerScore {
            score: best as f32 / ((np * nc) as f32).sqrt(),
            matched: best as u16,
        }
    }

    fn find_roots(&mut self, probe: &Template, cand: &Template) {
        self.root_count = 0;
        let (starts, table) = cand.root_table();
        let Ok(starts) = <&[u16; ROOT_CELLS + 1]>::try_from(starts) else {
            return;
        };
        // `roots` keeps its full length: it is written branch-free and `count` says how many
        // entries are valid.
        let roots: &mut [RootWord; MAX_ROOTS] = &mut self.roots;
        let mut count = 0usize;
        for query in probe.root_queries() {
            // The candidate's root edges sit in every origin-angle cell their tolerance
            // touches, so the probe edge's own origin cell holds all compatible ones; the query
            // names the target-angle cells its tolerance touches, one contiguous run.
            let from = usize::from(starts[usize::from(query.first_cell).min(ROOT_CELLS)]);
            let to = usize::from(starts[usize::from(query.last_cell).min(ROOT_CELLS - 1) + 1]);
            let run = table.get(from..to).unwrap_or(&[]);
            if count + run.len() > MAX_ROOTS {
                break;
            }
            // A local copy keeps the query in registers (the stores below could otherwise
            // alias it for the compiler).
            let query = *query;
            for &ce in run {
                // Branch-free: always write, keep only when compatible (the outcome is
                // unpredictable, so a branch would mispredict often). count < MAX_ROOTS here
                // (checked per run above); the mask only lets the compiler see it.
                roots[count & (MAX_ROOTS - 1)] = ce.root_with(&query);
                count += usize::from(query.accepts(ce));
            }
        }
        self.root_count = count;
    }

    /// The [`RANKED_ROOTS`] roots within the rotation window around `peak` with the most
    /// support, best first, as (support, root index); unused slots have support 0. A root's
    /// support counts the window roots that pair the same minutiae as either of its ends (in
    /// 256 hashed counters): a true correspondence is found again through other edges, a chance
    /// one rarely is, so the first roots grown are the likely ones.
    fn rank_roots(&self, peak: u8) -> [(u8, u16); RANKED_ROOTS] {
        let roots = &self.roots[..self.root_count.min(MAX_ROOTS)];
        let pair_slot = |p: u8, c: u8| usize::from(p.wrapping_mul(157) ^ c);
        let mut counters = [0u8; 256];
        for &root in roots {
            if angles_within(root.rotation(), peak, ROTATION_WINDOW) {
                let a = pair_slot(root.probe_from(), root.cand_from());
                counters[a] = counters[a].saturating_add(1);
                let b = pair_slot(root.probe_to(), root.cand_to());
                counters[b] = counters[b].saturating_add(1);
            }
        }
        let mut ranked = [(0u8, 0u16); RANKED_ROOTS];
        for (i, &root) in roots.iter().enumerate() {
            if !angles_within(root.rotation(), peak, ROTATION_WINDOW) {
                continue;
            }
            let support = counters[pair_slot(root.probe_from(), root.cand_from())]
                .saturating_add(counters[pair_slot(root.probe_to(), root.cand_to())]);
            // Insertion into a short list sorted by support (earlier roots win ties).
            if support > ranked[RANKED_ROOTS - 1].0 {
                let mut at = RANKED_ROOTS - 1;
                while at > 0 && ranked[at - 1].0 < support {
                    ranked[at] = ranked[at - 1];
                    at -= 1;
                }
                ranked[at] = (support, i as u16);
            }
        }
        ranked
    }

    /// Centre of the most voted rotation window.
    fn rotation_peak(&self) -> u8 {
        // Bin b is counted at hist[b + 1]; the ends repeat the opposite bins so that the
        // smoothing below wraps around with plain indexing.
        let mut hist = [0u16; ROTATION_BINS + 2];
        let shift = 8 - ROTATION_BINS.trailing_zeros();
        for r in &self.roots[..self.root_count.min(MAX_ROOTS)] {
            hist[usize::from(r.rotation() >> shift) + 1] += 1;
        }
        hist[0] = hist[ROTATION_BINS];
        hist[ROTATION_BINS + 1] = hist[1];
        let mut best_bin = 0;
        let mut best_votes = 0;
        for (b, w) in hist.windows(3).enumerate() {
            let votes = w[0] + 2 * w[1] + w[2];
            if votes > best_votes {
                best_votes = votes;
                best_bin = b;
            }
        }
        let width = 256 / ROTATION_BINS;
        (best_bin * width + width / 2) as u8
    }

    /// Grows an alignment from a root; returns the number of matched minutiae pairs.
    fn grow(&mut self, probe: &Template, cand: &Template, root: Root) -> usize {
        self.probe_to_cand[..probe.len()].fill(NONE);
        self.cand_to_probe[..cand.len()].fill(NONE);
        let mut depth = 0usize;
        for (p, c) in [
            (root.probe_from, root.cand_from),
            (root.probe_to, root.cand_to),
        ] {
            self.probe_to_cand[usize::from(p)] = c;
            self.cand_to_probe[usize::from(c)] = p;
            self.stack[depth] = (p, c);
            depth += 1;
        }
        let mut matched = depth;
        while depth > 0 {
            depth -= 1;
            let (p, c) = self.stack[depth];
            let cand_edges = cand.edges_of(c);
            // Both edge lists are sorted by length and so are the lower bounds of the compatible
            // windows: the window's start only moves forward.
            let mut start = 0usize;
            for pe in probe.edges_of(p) {
                let q = pe.to;
                if self.probe_to_cand[usize::from(q)] != NONE {
                    continue;
                }
                let shortest = pe.min_compatible_length();
                while start < cand_edges.len() && cand_edges[start].length < shortest {
                    start += 1;
                }
                let longest = pe.max_compatible_length();
                let q_angle = pe.target_angle();
                let mut best_error = u32::MAX;
                let mut best_d = NONE;
                for ce in &cand_edges[start..] {
                    if ce.length > longest {
                        break;
                    }
                    let d = ce.to;
                    if self.cand_to_probe[usize::from(d)] != NONE {
                        continue;
                    }
                    let pair_rotation = ce.target_angle().wrapping_sub(q_angle);
                    if !angles_within(pair_rotation, root.rotation, ROTATION_DRIFT) {
                        continue;
                    }
                    let Some(error) = angle_checked_error(pe, ce) else {
                        continue;
                    };
                    if error < best_error {
                        best_error = error;
                        best_d = d;
                    }
                }
                if best_d != NONE {
                    self.probe_to_cand[usize::from(q)] = best_d;
                    self.cand_to_probe[usize::from(best_d)] = q;
                    // Each probe minutia is pushed at most once and there are at most 254.
                    if let Some(slot) = self.stack.get_mut(depth) {
                        *slot = (q, best_d);
                        depth += 1;
                    }
                    matched += 1;
                }
            }
        }
        matched
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{Minutia, MinutiaType};

    fn grid(n: usize, salt: u32) -> Vec<Minutia> {
        // A deterministic scatter with spacing, not a real print.
        let mut state = 0x9E37_79B9u32 ^ salt;
        let mut out = Vec::new();
        while out.len() < n {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let x = (state >> 8) % 400 + 50;
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let y = (state >> 8) % 450 + 50;
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let a = (state >> 24) as u8;
            let m = Minutia {
                x: x as i16,
                y: y as i16,
                angle: a,
                kind: MinutiaType::RidgeEnding,
            };
            if out.iter().all(|o: &Minutia| {
                (i32::from(o.x) - i32::from(m.x)).abs() + (i32::from(o.y) - i32::from(m.y)).abs()
                    > 20
            }) {
                out.push(m);
            }
        }
        out
    }

    fn rotate(ms: &[Minutia], degrees: f32, dx: f32, dy: f32) -> Vec<Minutia> {
        let (s, c) = degrees.to_radians().sin_cos();
        ms.iter()
            .map(|m| {
                // Counter-clockwise on screen with y down.
                let x = f32::from(m.x) - 250.0;
                let y = f32::from(m.y) - 250.0;
                let xr = c * x + s * y;
                let yr = -s * x + c * y;
                Minutia::from_degrees(
                    xr + 250.0 + dx,
                    yr + 250.0 + dy,
                    m.degrees() + degrees,
                    m.kind,
                    197,
                )
            })
            .collect()
    }

    #[test]
    fn self_match_is_perfect() {
        let t = Template::new(&grid(45, 1));
        let s = Matcher::new().compare(&t, &t);
        assert_eq!(s.matched, 45);
        assert!((s.score - 1.0).abs() < 1e-6);
    }

    #[test]
    fn rotation_and_translation_invariant() {
        let ms = grid(45, 2);
        let a = Template::new(&ms);
        let mut m = Matcher::new();
        for deg in [-20.0, -7.0, 13.0, 20.0, 90.0] {
            let b = Template::new(&rotate(&ms, deg, 31.0, -17.0));
            let s = m.compare(&a, &b);
            assert!(s.score > 0.8, "rotation {deg}: {s:?}");
        }
    }

    #[test]
    fn unrelated_scores_low() {
        let a = Template::new(&grid(45, 3));
        let b = Template::new(&grid(45, 4));
        let s = Matcher::new().compare(&a, &b);
        assert!(s.score < 0.3, "{s:?}");
    }

    #[test]
    fn tiny_templates_score_zero() {
        let a = Template::new(&grid(2, 5));
        let b = Template::new(&grid(45, 5));
        assert_eq!(Matcher::new().compare(&a, &b), FingerScore::default());
        assert_eq!(
            Matcher::new().compare(&Template::new(&[]), &b),
            FingerScore::default()
        );
    }
}
