//! Synthetic fingerprint minutiae (no images): master prints and their impressions.
//!
//! A master print is drawn per (seed, FIN, finger) from a pattern class with realistic
//! frequencies (loops ~65%, whorls ~28%, arches ~4%, tented arches ~3%; ulnar loops dominate,
//! so right-hand fingers mostly carry right loops). Its ridge orientation field follows the
//! zero-pole model: half the sum of the arguments to the cores minus those to the deltas (arches
//! use a smooth bump field instead). Minutiae are scattered over an elliptical print with a
//! higher density near the core, a minimum spacing of about a ridge period, directions along
//! the ridge flow, and a ridge-ending/bifurcation mix of about 55/42 (3% "other").
//!
//! An impression applies what a capture does to the master: partial contact (the print area is
//! cropped by a shifted, shrunk ellipse), smooth non-linear skin distortion (a sum of Gaussian
//! displacement bumps), rotation and translation, position and angle jitter, missed and
//! spurious minutiae, and type flips. Everything is deterministic from its seeds.

use crate::template::{degrees_to_angle, Minutia, MinutiaType};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::f32::consts::PI;

/// Capture area in pixels at 500 ppi.
pub const IMAGE_WIDTH: u16 = 500;
pub const IMAGE_HEIGHT: u16 = 560;
const CENTER_X: f32 = 250.0;
const CENTER_Y: f32 = 290.0;
const SEMI_AXIS_X: f32 = 170.0;
const SEMI_AXIS_Y: f32 = 215.0;
/// Minimum distance between master minutiae: about one ridge period at 500 ppi.
const MIN_SPACING: f32 = 11.0;

/// Henry/NIST pattern class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatternClass {
    Arch,
    TentedArch,
    LeftLoop,
    RightLoop,
    Whorl,
}

/// A master minutia: sub-pixel position (image coordinates, y down) and direction in degrees,
/// counter-clockwise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MasterMinutia {
    pub x: f32,
    pub y: f32,
    pub degrees: f32,
    pub kind: MinutiaType,
}

/// The underlying finger from which impressions are taken.
#[derive(Debug, Clone, PartialEq)]
pub struct MasterPrint {
    pub seed: u64,
    pub finger: u8,
    pub pattern: PatternClass,
    pub cores: Vec<(f32, f32)>,
    pub deltas: Vec<(f32, f32)>,
    pub minutiae: Vec<MasterMinutia>,
}

/// How an impression differs from its master.
#[derive(Debug, Clone, PartialEq)]
pub struct ImpressionParams {
    pub max_rotation_degrees: f32,
    pub max_translation: f32,
    /// Standard deviation (pixels) of each Gaussian displacement bump's vector.
    pub distortion: f32,
    /// Contact ellipse scale range relative to the full print.
    pub contact_scale: (f32, f32),
    /// Standard deviation (pixels) of the contact ellipse's centre shift.
    pub contact_shift: f32,
    pub jitter_px: f32,
    pub jitter_degrees: f32,
    pub miss_rate: f32,
    /// Spurious minutiae added, as a fraction of the kept ones.
    pub spurious_rate: f32,
    pub type_flip_rate: f32,
}

impl ImpressionParams {
    /// A rolled ten-print impression.
    pub fn rolled() -> Self {
        ImpressionParams {
            max_rotation_degrees: 20.0,
            max_translation: 30.0,
            distortion: 5.0,
            contact_scale: (0.8, 1.0),
            contact_shift: 15.0,
            jitter_px: 2.0,
            jitter_degrees: 5.0,
            miss_rate: 0.12,
            spurious_rate: 0.08,
            type_flip_rate: 0.10,
        }
    }
    /// A plain (flat) impression: smaller contact area, more shift and more distortion.
    pub fn plain() -> Self {
        ImpressionParams {
            contact_scale: (0.55, 0.75),
            contact_shift: 30.0,
            distortion: 7.0,
            ..Self::rolled()
        }
    }
}

/// Stable seed for (world seed, FIN, finger): FNV-1a over the FIN, then SplitMix64 mixing.
pub fn finger_seed(seed: u64, fin: &str, finger: u8) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in fin.bytes().chain([0xFF, finger]) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    splitmix(h ^ splitmix(seed))
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn normal(rng: &mut ChaCha8Rng) -> f32 {
    // Box-Muller; 1 - u keeps the logarithm finite.
    let u: f32 = 1.0 - rng.gen::<f32>();
    let v: f32 = rng.gen();
    (-2.0 * u.ln()).sqrt() * (2.0 * PI * v).cos()
}

fn pattern_for(rng: &mut ChaCha8Rng, finger: u8) -> PatternClass {
    // Ulnar loops open towards the little finger: right loops on the right hand (fingers 1-5).
    let right_hand = !(6..=10).contains(&finger);
    let (ulnar, radial) = if right_hand {
        (PatternClass::RightLoop, PatternClass::LeftLoop)
    } else {
        (PatternClass::LeftLoop, PatternClass::RightLoop)
    };
    let u: f32 = rng.gen();
    match u {
        u if u < 0.037 => PatternClass::Arch,
        u if u < 0.066 => PatternClass::TentedArch,
        u if u < 0.346 => PatternClass::Whorl,
        u if u < 0.946 => ulnar,
        _ => radial,
    }
}

/// Points (x, y) in pixels.
type Points = Vec<(f32, f32)>;

/// Singular points (cores, deltas) in a frame centred on the print with y up.
fn singular_points(rng: &mut ChaCha8Rng, pattern: PatternClass) -> (Points, Points) {
    let mut j = |s: f32| normal(rng) * s;
    match pattern {
        PatternClass::Arch => (vec![], vec![]),
        PatternClass::TentedArch => (
            vec![(j(10.0), 10.0 + j(15.0))],
            vec![(j(10.0), -70.0 + j(15.0))],
        ),
        PatternClass::RightLoop => (
            vec![(15.0 + j(15.0), 40.0 + j(20.0))],
            vec![(-105.0 + j(20.0), -85.0 + j(20.0))],
        ),
        PatternClass::LeftLoop => (
            vec![(-15.0 + j(15.0), 40.0 + j(20.0))],
            vec![(105.0 + j(20.0), -85.0 + j(20.0))],
        ),
        PatternClass::Whorl => {
            let cx = j(10.0);
            let cy = 30.0 + j(15.0);
            let half = 12.0 + j(6.0).abs();
            (
                vec![(cx - half, cy + j(6.0)), (cx + half, cy + j(6.0))],
                vec![
                    (-120.0 + j(20.0), -90.0 + j(20.0)),
                    (120.0 + j(20.0), -90.0 + j(20.0)),
                ],
            )
        }
    }
}

/// Ridge orientation (radians, mod pi, y up) at (u, v) relative to the print centre.
fn orientation(
    pattern: PatternClass,
    cores: &[(f32, f32)],
    deltas: &[(f32, f32)],
    arch_height: f32,
    u: f32,
    v: f32,
) -> f32 {
    if pattern == PatternClass::Arch {
        let sigma = 110.0;
        let height = arch_height * ((v + SEMI_AXIS_Y) / (2.0 * SEMI_AXIS_Y)).clamp(0.2, 1.0);
        let slope = -2.0 * height * u / (sigma * sigma) * (-(u * u) / (sigma * sigma)).exp();
        return slope.atan();
    }
    let mut theta = 0.0;
    for &(cx, cy) in cores {
        theta += (v - cy).atan2(u - cx);
    }
    for &(dx, dy) in deltas {
        theta -= (v - dy).atan2(u - dx);
    }
    theta / 2.0
}

/// The master print of one finger of one person.
pub fn master(seed: u64, fin: &str, finger: u8) -> MasterPrint {
    let own_seed = finger_seed(seed, fin, finger);
    let mut rng = ChaCha8Rng::seed_from_u64(own_seed);
    let pattern = pattern_for(&mut rng, finger);
    let (cores, deltas) = singular_points(&mut rng, pattern);
    let arch_height = 40.0 + 30.0 * rng.gen::<f32>();
    let count = (55.0 + 10.0 * normal(&mut rng)).round().clamp(25.0, 90.0) as usize;
    let focus = cores.first().copied().unwrap_or((0.0, 0.0));
    let mut placed: Vec<MasterMinutia> = Vec::with_capacity(count);
    let mut attempts = 0;
    while placed.len() < count && attempts < count * 200 {
        attempts += 1;
        let u = (rng.gen::<f32>() * 2.0 - 1.0) * SEMI_AXIS_X;
        let v = (rng.gen::<f32>() * 2.0 - 1.0) * SEMI_AXIS_Y;
        if (u / SEMI_AXIS_X).powi(2) + (v / SEMI_AXIS_Y).powi(2) > 1.0 {
            continue;
        }
        // Denser near the core, as in real prints.
        let r2 = (u - focus.0).powi(2) + (v - focus.1).powi(2);
        if rng.gen::<f32>() > 0.55 + 0.45 * (-r2 / (2.0 * 110.0 * 110.0)).exp() {
            continue;
        }
        let x = CENTER_X + u;
        let y = CENTER_Y - v;
        if placed
            .iter()
            .any(|m| (m.x - x).powi(2) + (m.y - y).powi(2) < MIN_SPACING * MIN_SPACING)
        {
            continue;
        }
        let ridge = orientation(pattern, &cores, &deltas, arch_height, u, v);
        let flip = if rng.gen::<bool>() { PI } else { 0.0 };
        let degrees = (ridge + flip).to_degrees() + 3.0 * normal(&mut rng);
        let k: f32 = rng.gen();
        let kind = if k < 0.55 {
            MinutiaType::RidgeEnding
        } else if k < 0.97 {
            MinutiaType::Bifurcation
        } else {
            MinutiaType::Other
        };
        placed.push(MasterMinutia {
            x,
            y,
            degrees: degrees.rem_euclid(360.0),
            kind,
        });
    }
    let to_image = |&(u, v): &(f32, f32)| (CENTER_X + u, CENTER_Y - v);
    MasterPrint {
        seed: own_seed,
        finger,
        pattern,
        cores: cores.iter().map(to_image).collect(),
        deltas: deltas.iter().map(to_image).collect(),
        minutiae: placed,
    }
}

struct Bump {
    x: f32,
    y: f32,
    inv_two_sigma2: f32,
    dx: f32,
    dy: f32,
}

fn displace(bumps: &[Bump], x: f32, y: f32) -> (f32, f32) {
    let mut ox = x;
    let mut oy = y;
    for b in bumps {
        let w = (-((x - b.x).powi(2) + (y - b.y).powi(2)) * b.inv_two_sigma2).exp();
        ox += w * b.dx;
        oy += w * b.dy;
    }
    (ox, oy)
}

/// One impression of a master print; `impression_seed` tells impressions apart
/// (e.g. 0 for the enrolment, 1 for a later booking).
pub fn impression(
    master: &MasterPrint,
    params: &ImpressionParams,
    impression_seed: u64,
) -> Vec<Minutia> {
    let mut rng = ChaCha8Rng::seed_from_u64(splitmix(master.seed ^ splitmix(impression_seed)));
    let scale = params.contact_scale.0
        + (params.contact_scale.1 - params.contact_scale.0) * rng.gen::<f32>();
    let contact_x = CENTER_X + params.contact_shift * normal(&mut rng);
    let contact_y = CENTER_Y + params.contact_shift * normal(&mut rng);
    let ax = SEMI_AXIS_X * scale;
    let ay = SEMI_AXIS_Y * scale;
    let inside =
        |x: f32, y: f32| ((x - contact_x) / ax).powi(2) + ((y - contact_y) / ay).powi(2) <= 1.0;
    let bumps: Vec<Bump> = (0..3)
        .map(|_| {
            let sigma = 70.0 + 70.0 * rng.gen::<f32>();
            Bump {
                x: CENTER_X + (rng.gen::<f32>() * 2.0 - 1.0) * SEMI_AXIS_X,
                y: CENTER_Y + (rng.gen::<f32>() * 2.0 - 1.0) * SEMI_AXIS_Y,
                inv_two_sigma2: 1.0 / (2.0 * sigma * sigma),
                dx: params.distortion * normal(&mut rng),
                dy: params.distortion * normal(&mut rng),
            }
        })
        .collect();
    let rotation = (rng.gen::<f32>() * 2.0 - 1.0) * params.max_rotation_degrees;
    let (sin, cos) = rotation.to_radians().sin_cos();
    let tx = (rng.gen::<f32>() * 2.0 - 1.0) * params.max_translation;
    let ty = (rng.gen::<f32>() * 2.0 - 1.0) * params.max_translation;

    let mut raw: Vec<MasterMinutia> = Vec::with_capacity(master.minutiae.len() + 8);
    for m in &master.minutiae {
        let missed = rng.gen::<f32>() < params.miss_rate;
        let flip = rng.gen::<f32>() < params.type_flip_rate;
        if missed || !inside(m.x, m.y) {
            continue;
        }
        let kind = match (flip, m.kind) {
            (true, MinutiaType::RidgeEnding) => MinutiaType::Bifurcation,
            (true, MinutiaType::Bifurcation) => MinutiaType::RidgeEnding,
            (_, k) => k,
        };
        raw.push(MasterMinutia { kind, ..*m });
    }
    let spurious =
        (raw.len() as f32 * params.spurious_rate * 2.0 * rng.gen::<f32>()).round() as usize;
    let mut tries = 0;
    let mut added = 0;
    while added < spurious && tries < 1000 {
        tries += 1;
        let x = contact_x + (rng.gen::<f32>() * 2.0 - 1.0) * ax;
        let y = contact_y + (rng.gen::<f32>() * 2.0 - 1.0) * ay;
        if !inside(x, y) {
            continue;
        }
        let kind = if rng.gen::<bool>() {
            MinutiaType::RidgeEnding
        } else {
            MinutiaType::Bifurcation
        };
        raw.push(MasterMinutia {
            x,
            y,
            degrees: rng.gen::<f32>() * 360.0,
            kind,
        });
        added += 1;
    }

    let mut out: Vec<Minutia> = Vec::with_capacity(raw.len());
    for m in raw {
        // Distort the position and a point a little way along the direction, so the direction
        // turns with the local skin stretch.
        let (dir_s, dir_c) = m.degrees.to_radians().sin_cos();
        let (x0, y0) = displace(&bumps, m.x, m.y);
        let (x1, y1) = displace(&bumps, m.x + 6.0 * dir_c, m.y - 6.0 * dir_s);
        let degrees =
            (-(y1 - y0)).atan2(x1 - x0).to_degrees() + params.jitter_degrees * normal(&mut rng);
        let x = x0 + params.jitter_px * normal(&mut rng) - CENTER_X;
        let y = y0 + params.jitter_px * normal(&mut rng) - CENTER_Y;
        // Counter-clockwise on screen (y down).
        let xr = cos * x + sin * y + CENTER_X + tx;
        let yr = -sin * x + cos * y + CENTER_Y + ty;
        if !(0.0..f32::from(IMAGE_WIDTH)).contains(&xr)
            || !(0.0..f32::from(IMAGE_HEIGHT)).contains(&yr)
        {
            continue;
        }
        out.push(Minutia {
            x: xr.round() as i16,
            y: yr.round() as i16,
            angle: degrees_to_angle(degrees + rotation),
            kind: m.kind,
        });
    }
    // Extractors report minutiae in no meaningful order.
    for i in (1..out.len()).rev() {
        let j = rng.gen_range(0..=i);
        out.swap(i, j);
    }
    out
}

/// Ten rolled impressions (fingers 1..=10) of one person.
pub fn ten_print(
    seed: u64,
    fin: &str,
    impression_seed: u64,
    params: &ImpressionParams,
) -> Vec<(u8, Vec<Minutia>)> {
    (1..=10u8)
        .map(|f| {
            (
                f,
                impression(&master(seed, fin, f), params, impression_seed),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic() {
        let a = master(7, "1234567890", 3);
        let b = master(7, "1234567890", 3);
        assert_eq!(a, b);
        let p = ImpressionParams::rolled();
        assert_eq!(impression(&a, &p, 1), impression(&b, &p, 1));
        assert_ne!(impression(&a, &p, 1), impression(&a, &p, 2));
        assert_ne!(master(7, "1234567890", 4).minutiae, a.minutiae);
        assert_ne!(master(8, "1234567890", 3).minutiae, a.minutiae);
    }

    #[test]
    fn realistic_counts_and_spacing() {
        let mut total = 0;
        for f in 1..=10 {
            let m = master(1, "5550001111", f);
            assert!((25..=90).contains(&m.minutiae.len()));
            for (i, a) in m.minutiae.iter().enumerate() {
                for b in &m.minutiae[i + 1..] {
                    assert!((a.x - b.x).powi(2) + (a.y - b.y).powi(2) >= MIN_SPACING * MIN_SPACING);
                }
            }
            let imp = impression(&m, &ImpressionParams::rolled(), 0);
            total += imp.len();
        }
        let mean = total / 10;
        assert!(
            (30..=65).contains(&mean),
            "mean rolled impression count {mean}"
        );
    }

    #[test]
    fn pattern_frequencies_are_plausible() {
        let mut loops = 0;
        let mut whorls = 0;
        for i in 0..400 {
            match master(3, &format!("{:010}", i), 2).pattern {
                PatternClass::LeftLoop | PatternClass::RightLoop => loops += 1,
                PatternClass::Whorl => whorls += 1,
                _ => {}
            }
        }
        assert!((200..=320).contains(&loops), "loops {loops}");
        assert!((70..=160).contains(&whorls), "whorls {whorls}");
    }
}
