//! Content detection across the supported biometric formats and a human-readable dump.

use crate::ansi_nist;
use crate::error::FormatError;
use crate::fmr::{self, FingerView, FmrFormat};

/// One subject's finger views from any supported file.
#[derive(Debug, Clone, PartialEq)]
pub struct Subject {
    /// "ISO/IEC 19794-2:2005", "ANSI INCITS 378-2004" or "ANSI/NIST-ITL".
    pub format: &'static str,
    /// Pixels per centimetre of the minutiae coordinates (197 for 500 ppi).
    pub resolution_ppcm: u16,
    pub views: Vec<FingerView>,
}

/// What a file looks like from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectedFormat {
    /// `FMR\0` + ` 20\0`: ISO 19794-2 or INCITS 378 (layout decides which).
    FingerMinutiaeRecord,
    /// Starts with `1.001:`.
    AnsiNist,
}

/// Tells the format apart by content.
pub fn detect(bytes: &[u8]) -> Result<DetectedFormat, FormatError> {
    if bytes.starts_with(b"FMR\0") {
        Ok(DetectedFormat::FingerMinutiaeRecord)
    } else if bytes.starts_with(b"1.001:") || bytes.starts_with(b"1.01:") {
        Ok(DetectedFormat::AnsiNist)
    } else {
        let head: String = bytes
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ");
        Err(FormatError::Unrecognised(format!(
            "starts with [{head}]; expected \"FMR\\0\" (ISO 19794-2 / INCITS 378) or \"1.001:\" (ANSI/NIST-ITL)"
        )))
    }
}

/// Reads one subject's finger views from an ISO 19794-2, INCITS 378 or ANSI/NIST-ITL file.
pub fn read_subject(bytes: &[u8]) -> Result<Subject, FormatError> {
    match detect(bytes)? {
        DetectedFormat::FingerMinutiaeRecord => {
            let rec = fmr::read_fmr(bytes)?;
            Ok(Subject {
                format: rec.format.name(),
                resolution_ppcm: rec.x_resolution,
                views: rec.views,
            })
        }
        DetectedFormat::AnsiNist => {
            let tx = ansi_nist::read_transaction(bytes)?;
            let (resolution_ppcm, views) = tx.finger_views();
            if views.is_empty() {
                return Err(FormatError::Record {
                    record_type: 1,
                    record_index: 0,
                    field: "1.003".into(),
                    offset: 0,
                    problem: "the transaction has no Type-9 minutiae record (images alone cannot be matched)"
                        .into(),
                });
            }
            Ok(Subject {
                format: "ANSI/NIST-ITL",
                resolution_ppcm,
                views,
            })
        }
    }
}

/// A human-readable dump of any supported file: format, header fields, per-view minutiae
/// counts and (for ANSI/NIST) the Type-2 biographics.
pub fn describe(bytes: &[u8]) -> Result<String, FormatError> {
    use std::fmt::Write;
    let mut s = String::new();
    match detect(bytes)? {
        DetectedFormat::FingerMinutiaeRecord => {
            let rec = fmr::read_fmr(bytes)?;
            let _ = writeln!(s, "format: {}", rec.format.name());
            let _ = writeln!(s, "length: {} bytes", bytes.len());
            if let Some(d) = rec.declared_length_mismatch {
                let _ = writeln!(s, "warning: header record length says {d} bytes");
            }
            if rec.format == FmrFormat::Incits378_2004 {
                let _ = writeln!(s, "CBEFF product id: 0x{:08X}", rec.cbeff_product_id);
            }
            let _ = writeln!(
                s,
                "capture equipment: compliance 0x{:X}, id 0x{:03X}",
                rec.capture_equipment >> 12,
                rec.capture_equipment & 0x0FFF
            );
            let _ = writeln!(s, "image: {}x{} px", rec.width, rec.height);
            let _ = writeln!(
                s,
                "resolution: {}x{} px/cm",
                rec.x_resolution, rec.y_resolution
            );
            describe_views(&mut s, &rec.views);
        }
        DetectedFormat::AnsiNist => {
            let tx = ansi_nist::read_transaction(bytes)?;
            s.push_str(&tx.describe());
        }
    }
    Ok(s)
}

pub(crate) fn describe_views(s: &mut String, views: &[FingerView]) {
    use std::fmt::Write;
    let _ = writeln!(s, "finger views: {}", views.len());
    for (i, v) in views.iter().enumerate() {
        let _ = write!(
            s,
            "  view {}: finger {} (view {}, impression {}), quality {}, {} minutiae",
            i + 1,
            v.finger_position,
            v.view_number,
            v.impression_type,
            v.quality,
            v.minutiae.len()
        );
        if !v.extended_data.is_empty() {
            let _ = write!(s, ", {} bytes extended data", v.extended_data.len());
        }
        s.push('\n');
        if let Some(m) = v.minutiae.first() {
            let _ = writeln!(
                s,
                "    first minutia: {:?} at ({},{}), {:.1} deg, quality {}",
                m.kind, m.x, m.y, m.angle_degrees, m.quality
            );
        }
    }
}
