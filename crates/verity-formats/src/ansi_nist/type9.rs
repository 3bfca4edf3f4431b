//! Type-9 minutiae records, in both encodings a transaction may carry:
//!
//! - legacy fields 9.005-9.012 (OFR, FGP, FPC, CRP, DLT, MIN, RDG, MRC). MRC items are
//!   `index`, `XXXXYYYYTTT` (x and y in 0.01 mm, theta in whole degrees), quality (0-63),
//!   type (A ending, B bifurcation, C compound, D undetermined), then optional ridge counts;
//! - the INCITS 378 block 9.126-9.150. 9.137 holds one subfield per minutia with items
//!   `index, x, y, theta, type, quality` (x, y in pixels; theta in 2-degree units 0-179;
//!   type 0 other, 1 ending, 2 bifurcation; quality 0-100).

use super::tagged::{Field, Place, RawField};
use crate::error::FormatError;
use crate::fmr::{FingerView, Minutia, MinutiaKind};

/// One minutia of the legacy 9.012 MRC field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyMinutia {
    pub index: u16,
    /// 0.01 mm units
    pub x: u16,
    /// 0.01 mm units
    pub y: u16,
    /// whole degrees 0-359
    pub theta: u16,
    pub quality: u8,
    /// A ridge ending, B bifurcation, C compound, D undetermined.
    pub kind: char,
    /// Remaining items (neighbour index, ridge count pairs) kept verbatim.
    pub ridge_counts: Vec<String>,
}

/// Legacy Type-9 minutiae (9.005-9.012).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LegacyMinutiae {
    /// 9.005 OFR originating fingerprint reading system, items verbatim.
    pub reading_system: Option<String>,
    /// 9.006 FGP
    pub finger_position: u8,
    /// 9.007 FPC pattern classification, verbatim.
    pub pattern_class: Option<String>,
    /// 9.008 CRP core positions, verbatim.
    pub cores: Option<String>,
    /// 9.009 DLT delta positions, verbatim.
    pub deltas: Option<String>,
    /// 9.011 RDG: whether ridge counts are present ("0"/"1").
    pub ridge_count_indicator: Option<String>,
    /// 9.012 MRC (9.010 MIN is their count, computed on write).
    pub minutiae: Vec<LegacyMinutia>,
}

/// One minutia of the INCITS 378 field 9.137.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncitsMinutia {
    pub x: u16,
    pub y: u16,
    /// 2-degree units 0-179
    pub theta: u8,
    pub kind: MinutiaKind,
    pub quality: u8,
}

/// The INCITS 378 block of a Type-9 record (9.126-9.150).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IncitsMinutiae {
    /// 9.126 CBEFF information, verbatim.
    pub cbeff: Option<String>,
    /// 9.127 capture equipment id, verbatim.
    pub capture_equipment: Option<String>,
    /// 9.128 HLL
    pub width: u16,
    /// 9.129 VLL
    pub height: u16,
    /// 9.130 SLC: 1 pixels per inch, 2 pixels per centimetre.
    pub scale_units: u8,
    /// 9.131
    pub x_scale: u16,
    /// 9.132
    pub y_scale: u16,
    /// 9.133 FVW
    pub view_number: u8,
    /// 9.134 FGP
    pub finger_position: u8,
    /// 9.135 FQD first item
    pub quality: u8,
    /// 9.137 FMD (9.136 NOM is their count, computed on write).
    pub minutiae: Vec<IncitsMinutia>,
    /// 9.138-9.150 (ridge counts, cores, deltas), verbatim.
    pub other: Vec<Field>,
}

impl IncitsMinutiae {
    /// Resolution in pixels per centimetre, from the scale fields.
    pub fn resolution_ppcm(&self) -> u16 {
        match self.scale_units {
            1 => ((u32::from(self.x_scale) * 100 + 127) / 254) as u16,
            _ => self.x_scale,
        }
    }

    pub fn to_finger_view(&self, impression_type: u8) -> FingerView {
        FingerView {
            finger_position: self.finger_position,
            view_number: self.view_number,
            impression_type,
            quality: self.quality,
            minutiae: self
                .minutiae
                .iter()
                .map(|m| Minutia {
                    kind: m.kind,
                    x: m.x,
                    y: m.y,
                    angle_degrees: f32::from(m.theta) * 2.0,
                    quality: m.quality,
                })
                .collect(),
            extended_data: Vec::new(),
        }
    }

    /// The block for one finger view; angles quantised to 2-degree units.
    pub fn from_finger_view(view: &FingerView, width: u16, height: u16, ppcm: u16) -> Self {
        IncitsMinutiae {
            cbeff: None,
            capture_equipment: None,
            width,
            height,
            scale_units: 2,
            x_scale: ppcm,
            y_scale: ppcm,
            view_number: view.view_number,
            finger_position: view.finger_position,
            quality: view.quality,
            minutiae: view
                .minutiae
                .iter()
                .map(|m| IncitsMinutia {
                    x: m.x,
                    y: m.y,
                    theta: crate::fmr::FmrFormat::Incits378_2004.encode_angle(m.angle_degrees),
                    kind: m.kind,
                    quality: m.quality,
                })
                .collect(),
            other: Vec::new(),
        }
    }
}

/// A Type-9 record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Type9 {
    pub idc: u8,
    /// 9.003 IMP impression type
    pub impression_type: u8,
    /// 9.004 FMT: "S" standard (legacy fields), "U" user-defined.
    pub minutiae_format: String,
    pub legacy: Option<LegacyMinutiae>,
    pub incits: Option<IncitsMinutiae>,
    /// Any other fields (vendor blocks, 9.300+ extended feature set), verbatim.
    pub other: Vec<Field>,
}

fn field_err(place: Place, f: &RawField<'_>, problem: impl Into<String>) -> FormatError {
    place.err(place.tag(f.number), f.offset, problem)
}

fn item_number<T: std::str::FromStr>(
    place: Place,
    f: &RawField<'_>,
    what: &str,
    s: &str,
) -> Result<T, FormatError> {
    s.trim().parse().map_err(|_| {
        field_err(
            place,
            f,
            format!(
                "{what} '{}' is not a number in range",
                super::tagged::truncate(s)
            ),
        )
    })
}

impl Type9 {
    pub(crate) fn from_fields(
        idc: u8,
        fields: &[RawField<'_>],
        place: Place,
    ) -> Result<Self, FormatError> {
        let mut t = Type9 {
            idc,
            ..Type9::default()
        };
        let mut legacy = LegacyMinutiae::default();
        let mut has_legacy = false;
        let mut legacy_count: Option<(usize, RawField<'_>)> = None;
        let mut incits = IncitsMinutiae::default();
        let mut has_incits = false;
        let mut incits_count: Option<(usize, RawField<'_>)> = None;
        for f in fields {
            let text = || f.as_str(place).map(str::to_string);
            has_legacy |= (5..=12).contains(&f.number);
            has_incits |= (126..=150).contains(&f.number);
            match f.number {
                2 => {}
                3 => t.impression_type = f.number(place)?,
                4 => t.minutiae_format = text()?,
                5 => {
                    legacy.reading_system = Some(text()?);
                }
                6 => {
                    // FGP may list several positions; the first is the finger these minutiae are of.
                    let items = f.items(place)?;
                    let first = items.first().and_then(|s| s.first()).copied().unwrap_or("");
                    legacy.finger_position = item_number(place, f, "finger position", first)?;
                }
                7 => legacy.pattern_class = Some(text()?),
                8 => legacy.cores = Some(text()?),
                9 => legacy.deltas = Some(text()?),
                10 => {
                    legacy_count = Some((f.number(place)?, *f));
                }
                11 => legacy.ridge_count_indicator = Some(text()?),
                12 => {
                    legacy.minutiae = parse_mrc(f, place)?;
                }
                126 => {
                    incits.cbeff = Some(text()?);
                }
                127 => incits.capture_equipment = Some(text()?),
                128 => {
                    incits.width = f.number(place)?;
                }
                129 => incits.height = f.number(place)?,
                130 => incits.scale_units = f.number(place)?,
                131 => incits.x_scale = f.number(place)?,
                132 => incits.y_scale = f.number(place)?,
                133 => incits.view_number = f.number(place)?,
                134 => {
                    incits.finger_position = f.number(place)?;
                }
                135 => {
                    let items = f.items(place)?;
                    let first = items.first().and_then(|s| s.first()).copied().unwrap_or("");
                    incits.quality = item_number(place, f, "quality", first)?;
                }
                136 => {
                    incits_count = Some((f.number(place)?, *f));
                }
                137 => {
                    incits.minutiae = parse_fmd(f, place)?;
                }
                138..=150 => incits.other.push(f.owned()),
                _ => t.other.push(f.owned()),
            }
        }
        if let Some((n, f)) = legacy_count {
            if n != legacy.minutiae.len() {
                return Err(field_err(
                    place,
                    &f,
                    format!(
                        "MIN says {n} minutiae but 9.012 holds {}",
                        legacy.minutiae.len()
                    ),
                ));
            }
        }
        if let Some((n, f)) = incits_count {
            if n != incits.minutiae.len() {
                return Err(field_err(
                    place,
                    &f,
                    format!(
                        "NOM says {n} minutiae but 9.137 holds {}",
                        incits.minutiae.len()
                    ),
                ));
            }
        }
        if has_legacy {
            t.legacy = Some(legacy);
        }
        if has_incits {
            t.incits = Some(incits);
        }
        Ok(t)
    }

    pub(crate) fn to_fields(&self) -> Vec<Field> {
        let mut out = vec![
            Field::text(2, format!("{:02}", self.idc)),
            Field::text(3, self.impression_type.to_string()),
            Field::text(4, self.minutiae_format.clone()),
        ];
        if let Some(l) = &self.legacy {
            let opt = |out: &mut Vec<Field>, n: u32, v: &Option<String>| {
                if let Some(v) = v {
                    out.push(Field::text(n, v.clone()));
                }
            };
            opt(&mut out, 5, &l.reading_system);
            out.push(Field::text(6, l.finger_position.to_string()));
            opt(&mut out, 7, &l.pattern_class);
            opt(&mut out, 8, &l.cores);
            opt(&mut out, 9, &l.deltas);
            out.push(Field::text(10, l.minutiae.len().to_string()));
            opt(&mut out, 11, &l.ridge_count_indicator);
            if !l.minutiae.is_empty() {
                let subs: Vec<Vec<String>> = l
                    .minutiae
                    .iter()
                    .map(|m| {
                        let mut items = vec![
                            m.index.to_string(),
                            format!(
                                "{:04}{:04}{:03}",
                                m.x.min(9999),
                                m.y.min(9999),
                                m.theta.min(999)
                            ),
                            m.quality.to_string(),
                            m.kind.to_string(),
                        ];
                        items.extend(m.ridge_counts.iter().cloned());
                        items
                    })
                    .collect();
                out.push(Field::from_items(12, &subs));
            }
        }
        if let Some(b) = &self.incits {
            if let Some(v) = &b.cbeff {
                out.push(Field::text(126, v.clone()));
            }
            if let Some(v) = &b.capture_equipment {
                out.push(Field::text(127, v.clone()));
            }
            for (n, v) in [
                (128, b.width.to_string()),
                (129, b.height.to_string()),
                (130, b.scale_units.to_string()),
                (131, b.x_scale.to_string()),
                (132, b.y_scale.to_string()),
                (133, b.view_number.to_string()),
                (134, b.finger_position.to_string()),
                (135, b.quality.to_string()),
                (136, b.minutiae.len().to_string()),
            ] {
                out.push(Field::text(n, v));
            }
            if !b.minutiae.is_empty() {
                let subs: Vec<Vec<String>> = b
                    .minutiae
                    .iter()
                    .enumerate()
                    .map(|(i, m)| {
                        vec![
                            (i + 1).to_string(),
                            m.x.to_string(),
                            m.y.to_string(),
                            m.theta.to_string(),
                            m.kind.code().to_string(),
                            m.quality.to_string(),
                        ]
                    })
                    .collect();
                out.push(Field::from_items(137, &subs));
            }
            out.extend(b.other.iter().cloned());
        }
        out.extend(self.other.iter().cloned());
        out
    }

    /// The minutiae as a finger view: the INCITS block when present (pixels), else the
    /// legacy fields converted to the INCITS/ISO conventions as far as the record allows:
    /// units stay 0.01 mm (reported as 1000 per centimetre); the legacy origin is bottom-left,
    /// so y is mirrored as `9999 - y` (top-left origin up to a translation, since the image
    /// height is not in the record); theta is turned by 180 degrees because the legacy
    /// encoding measures the direction the opposite way (as NIST's converters do).
    pub fn finger_view(&self) -> Option<(u16, FingerView)> {
        if let Some(b) = &self.incits {
            return Some((b.resolution_ppcm(), b.to_finger_view(self.impression_type)));
        }
        let l = self.legacy.as_ref()?;
        let view = FingerView {
            finger_position: l.finger_position,
            view_number: 0,
            impression_type: self.impression_type,
            quality: 0,
            minutiae: l
                .minutiae
                .iter()
                .map(|m| Minutia {
                    kind: match m.kind {
                        'A' => MinutiaKind::RidgeEnding,
                        'B' => MinutiaKind::Bifurcation,
                        _ => MinutiaKind::Other,
                    },
                    x: m.x,
                    y: 9999u16.saturating_sub(m.y),
                    angle_degrees: f32::from((m.theta % 360 + 180) % 360),
                    // legacy quality is 0-63 (0 manual, 1 unknown, 2-63 low..high)
                    quality: ((u16::from(m.quality.min(63)) * 100) / 63) as u8,
                })
                .collect(),
            extended_data: Vec::new(),
        };
        Some((1000, view))
    }
}

fn parse_mrc(f: &RawField<'_>, place: Place) -> Result<Vec<LegacyMinutia>, FormatError> {
    let mut out = Vec::new();
    for (i, items) in f.items(place)?.into_iter().enumerate() {
        let which = |what: &str| format!("minutia {}: {what}", i + 1);
        if items.len() < 4 {
            return Err(field_err(
                place,
                f,
                which("needs index, XXXXYYYYTTT, quality and type"),
            ));
        }
        let pos = items[1].trim();
        if pos.len() != 11 || !pos.bytes().all(|b| b.is_ascii_digit()) {
            return Err(field_err(
                place,
                f,
                which(&format!(
                    "position '{}' is not XXXXYYYYTTT",
                    super::tagged::truncate(pos)
                )),
            ));
        }
        let num = |s: &str| s.parse::<u16>().unwrap_or(0);
        let theta = num(&pos[8..11]);
        if theta >= 360 {
            return Err(field_err(
                place,
                f,
                which(&format!("theta {theta} is not 0-359")),
            ));
        }
        let kind_s = items[3].trim();
        let kind = match kind_s {
            "A" | "B" | "C" | "D" => kind_s.chars().next().unwrap_or('D'),
            other => {
                return Err(field_err(
                    place,
                    f,
                    which(&format!(
                        "type '{}' is not A, B, C or D",
                        super::tagged::truncate(other)
                    )),
                ))
            }
        };
        out.push(LegacyMinutia {
            index: item_number(place, f, &which("index"), items[0])?,
            x: num(&pos[0..4]),
            y: num(&pos[4..8]),
            theta,
            quality: item_number(place, f, &which("quality"), items[2])?,
            kind,
            ridge_counts: items[4..].iter().map(|s| s.to_string()).collect(),
        });
    }
    Ok(out)
}

fn parse_fmd(f: &RawField<'_>, place: Place) -> Result<Vec<IncitsMinutia>, FormatError> {
    let mut out = Vec::new();
    for (i, items) in f.items(place)?.into_iter().enumerate() {
        let which = |what: &str| format!("minutia {}: {what}", i + 1);
        if items.len() != 6 {
            return Err(field_err(
                place,
                f,
                which(&format!(
                    "has {} items; expected index, x, y, theta, type, quality",
                    items.len()
                )),
            ));
        }
        let theta: u8 = item_number(place, f, &which("theta"), items[3])?;
        if theta >= 180 {
            return Err(field_err(
                place,
                f,
                which(&format!("theta {theta} is not 0-179")),
            ));
        }
        let code: u8 = item_number(place, f, &which("type"), items[4])?;
        let kind = MinutiaKind::from_code(code)
            .ok_or_else(|| field_err(place, f, which(&format!("type {code} is not 0, 1 or 2"))))?;
        let x: u16 = item_number(place, f, &which("x"), items[1])?;
        let y: u16 = item_number(place, f, &which("y"), items[2])?;
        out.push(IncitsMinutia {
            x,
            y,
            theta,
            kind,
            quality: item_number(place, f, &which("quality"), items[5])?,
        });
    }
    Ok(out)
}
