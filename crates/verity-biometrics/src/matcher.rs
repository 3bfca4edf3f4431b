//! Single-finger minutiae matcher.
//!
//! 1. Root pairs: every probe edge is looked up in the candidate's cell buckets; each candidate
//!    edge with a compatible length and relative angles gives a root (two minutia
//!    correspondences at once) and an implied rotation.
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
//! comparison itself does not allocate.

pub use crate::template::ANGLE_TOLERANCE;
use crate::template::{angle_distance, length_tolerance, Edge, Template, MAX_MINUTIAE};

/// Largest disagreement between a pair's rotation and the root's rotation (about 56 degrees).
pub const ROTATION_DRIFT: u8 = 40;
/// Roots tried per comparison.
pub const MAX_TRIED_ROOTS: usize = 4;
const MAX_ROOTS: usize = 4096;
const NONE: u8 = 0xFF;
const ROTATION_BINS: usize = 32;
/// Half-width of the accepted rotation window around the histogram peak (about 20 degrees).
const ROTATION_WINDOW: u8 = 14;

/// Disagreement of two edges, or None when they are not compatible.
#[inline]
fn edge_error(a: &Edge, b: &Edge) -> Option<u32> {
    // One branch instead of three: the outcome is unpredictable, so mispredictions dominate.
    let dl = a.length.abs_diff(b.length);
    let tol = length_tolerance(a.length.max(b.length));
    let d1 = angle_distance(a.from_angle, b.from_angle);
    let d2 = angle_distance(a.to_angle, b.to_angle);
    if (dl > tol) | (d1 > ANGLE_TOLERANCE) | (d2 > ANGLE_TOLERANCE) {
        return None;
    }
    Some(u32::from(dl) * 64 / u32::from(tol) + (u32::from(d1) + u32::from(d2)) * 3)
}

#[derive(Debug, Clone, Copy)]
struct Root {
    probe_from: u8,
    probe_to: u8,
    cand_from: u8,
    cand_to: u8,
    rotation: u8,
}

/// Result of one finger comparison.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FingerScore {
    /// matched / sqrt(probe minutiae × candidate minutiae), 0..1.
    pub score: f32,
    pub matched: u16,
}

/// Reusable scratch space for comparisons. One per thread.
#[derive(Debug, Clone)]
pub struct Matcher {
    roots: Vec<Root>,
    probe_to_cand: Vec<u8>,
    cand_to_probe: Vec<u8>,
    best_probe_to_cand: Vec<u8>,
    stack: Vec<(u8, u8)>,
}

impl Default for Matcher {
    fn default() -> Self {
        Self::new()
    }
}

impl Matcher {
    pub fn new() -> Self {
        Matcher {
            roots: Vec::with_capacity(MAX_ROOTS),
            probe_to_cand: vec![NONE; MAX_MINUTIAE + 1],
            cand_to_probe: vec![NONE; MAX_MINUTIAE + 1],
            best_probe_to_cand: vec![NONE; MAX_MINUTIAE + 1],
            stack: Vec::with_capacity(MAX_MINUTIAE),
        }
    }

    /// Compares two fingers. Symmetric up to tie-breaking; 0 when either has < 3 minutiae.
    /// At least one template must have its cell index ([`Template::has_cells`]); when only
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
        if self.roots.is_empty() {
            return FingerScore::default();
        }
        let peak = self.rotation_peak();
        self.best_probe_to_cand[..np].fill(NONE);
        let mut best = 0usize;
        let mut tried = 0usize;
        let enough = np.min(nc) * 3 / 4;
        for r in 0..self.roots.len() {
            let root = self.roots[r];
            if angle_distance(root.rotation, peak) > ROTATION_WINDOW {
                continue;
            }
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
            if tried >= MAX_TRIED_ROOTS || best >= enough {
                break;
            }
        }
        FingerScore {
            score: best as f32 / ((np * nc) as f32).sqrt(),
            matched: best as u16,
        }
    }

    fn find_roots(&mut self, probe: &Template, cand: &Template) {
        self.roots.clear();
        let pm = probe.minutiae();
        let cm = cand.minutiae();
        for pe in probe.probe_root_edges() {
            for &ci in cand.cell_edges(pe.cell()) {
                let ce = &cand.edges()[usize::from(ci)];
                if edge_error(pe, ce).is_none() {
                    continue;
                }
                let p_dir = pe.from_angle.wrapping_add(pm[usize::from(pe.from)].angle);
                let c_dir = ce.from_angle.wrapping_add(cm[usize::from(ce.from)].angle);
                self.roots.push(Root {
                    probe_from: pe.from,
                    probe_to: pe.to,
                    cand_from: ce.from,
                    cand_to: ce.to,
                    rotation: c_dir.wrapping_sub(p_dir),
                });
                if self.roots.len() == MAX_ROOTS {
                    return;
                }
            }
        }
    }

    /// Centre of the most voted rotation window.
    fn rotation_peak(&self) -> u8 {
        let mut hist = [0u16; ROTATION_BINS];
        let shift = 8 - ROTATION_BINS.trailing_zeros();
        for r in &self.roots {
            hist[usize::from(r.rotation >> shift)] += 1;
        }
        let mut best_bin = 0;
        let mut best_votes = 0;
        for b in 0..ROTATION_BINS {
            let votes = hist[(b + ROTATION_BINS - 1) % ROTATION_BINS]
                + 2 * hist[b]
                + hist[(b + 1) % ROTATION_BINS];
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
        let pm = probe.minutiae();
        let cm = cand.minutiae();
        self.probe_to_cand[..pm.len()].fill(NONE);
        self.cand_to_probe[..cm.len()].fill(NONE);
        self.stack.clear();
        let mut matched = 0usize;
        for (p, c) in [
            (root.probe_from, root.cand_from),
            (root.probe_to, root.cand_to),
        ] {
            self.probe_to_cand[usize::from(p)] = c;
            self.cand_to_probe[usize::from(c)] = p;
            self.stack.push((p, c));
            matched += 1;
        }
        while let Some((p, c)) = self.stack.pop() {
            let cand_edges = cand.edges_of(c);
            for pe in probe.edges_of(p) {
                let q = pe.to;
                if self.probe_to_cand[usize::from(q)] != NONE {
                    continue;
                }
                let q_angle = pm[usize::from(q)].angle;
                let mut best: Option<(u32, u8)> = None;
                let reach = pe.length + length_tolerance(pe.length.saturating_mul(12) / 11 + 6);
                for ce in cand_edges {
                    if ce.length > reach {
                        // Neighbour edges are sorted by length.
                        break;
                    }
                    let d = ce.to;
                    if self.cand_to_probe[usize::from(d)] != NONE {
                        continue;
                    }
                    let Some(err) = edge_error(pe, ce) else {
                        continue;
                    };
                    let pair_rotation = cm[usize::from(d)].angle.wrapping_sub(q_angle);
                    if angle_distance(pair_rotation, root.rotation) > ROTATION_DRIFT {
                        continue;
                    }
                    if best.is_none_or(|(e, _)| err < e) {
                        best = Some((err, d));
                    }
                }
                if let Some((_, d)) = best {
                    self.probe_to_cand[usize::from(q)] = d;
                    self.cand_to_probe[usize::from(d)] = q;
                    self.stack.push((q, d));
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
