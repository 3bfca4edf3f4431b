//! ANSI/NIST-ITL traditional encoding (as profiled by FBI EBTS): a [`Transaction`] is a
//! Type-1 header whose CNT field (1.003) lists the records that follow, then those records.
//!
//! Tagged records (Type-1, 2, 9, 14 and any other tagged type) are `T.NNN:value` fields; binary
//! records (Type-3 to 8) start with a 4-byte length. Only CNT says which binary type comes
//! next, so the reader follows CNT exactly and checks each record's IDC against it.
//!
//! Typed records keep the fields they understand as typed values and every other field
//! verbatim (`other`), so `read_transaction(write_transaction(t)) == t`.

mod builder;
pub mod tagged;
mod type2;
pub mod type9;

pub use builder::TransactionBuilder;
pub use tagged::{Field, FS, GS, RS, US};
pub use type2::{Biographics, Type2};
pub use type9::{IncitsMinutia, IncitsMinutiae, LegacyMinutia, LegacyMinutiae, Type9};

use crate::error::FormatError;
use crate::fmr::FingerView;
use tagged::{encode_record, split_record, Place, RawField};

/// The Type-1 transaction header. CNT (1.003) and LEN (1.001) are derived on write.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Type1 {
    /// 1.002 VER, e.g. "0500"
    pub version: String,
    /// 1.004 TOT type of transaction, e.g. "CAR"
    pub tot: String,
    /// 1.005 DAT, CCYYMMDD
    pub date: String,
    /// 1.006 PRY priority 1-9
    pub priority: Option<String>,
    /// 1.007 DAI destination agency
    pub destination: String,
    /// 1.008 ORI originating agency
    pub originating: String,
    /// 1.009 TCN transaction control number
    pub tcn: String,
    /// 1.010 TCR transaction control reference (the TCN this answers)
    pub tcr: Option<String>,
    /// 1.011 NSR native scanning resolution, e.g. "19.69" (pixels/mm)
    pub native_scan_resolution: String,
    /// 1.012 NTR nominal transmitting resolution
    pub nominal_transmit_resolution: String,
    /// Other Type-1 fields (1.013 DOM, 1.014 GMT, ...), verbatim.
    pub other: Vec<Field>,
}

/// A binary fingerprint image record (Type-4: 18-byte header, image kept opaque).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Type4 {
    pub idc: u8,
    /// IMP impression type
    pub impression_type: u8,
    /// FGP: up to six finger positions, 255 = unused
    pub finger_positions: [u8; 6],
    /// ISR: 0 = native (minimum) scanning resolution, 1 = nominal
    pub scanning_resolution: u8,
    /// HLL
    pub width: u16,
    /// VLL
    pub height: u16,
    /// GCA: 0 none, 1 WSQ
    pub compression: u8,
    pub image: Vec<u8>,
}

/// A Type-14 variable-resolution fingerprint image (tagged; image bytes opaque).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Type14 {
    pub idc: u8,
    /// 14.003 IMP
    pub impression_type: u8,
    /// 14.004 SRC source agency
    pub source_agency: String,
    /// 14.005 FCD capture date CCYYMMDD
    pub capture_date: String,
    /// 14.006 HLL
    pub width: u16,
    /// 14.007 VLL
    pub height: u16,
    /// 14.008 SLC: 0 none, 1 pixels per inch, 2 pixels per cm
    pub scale_units: u8,
    /// 14.009 THPS
    pub x_scale: u16,
    /// 14.010 TVPS
    pub y_scale: u16,
    /// 14.011 CGA compression, e.g. "WSQ20", "NONE"
    pub compression: String,
    /// 14.012 BPX bits per pixel
    pub bits_per_pixel: u8,
    /// 14.013 FGP first finger position
    pub finger_position: u8,
    /// Other fields, verbatim.
    pub other: Vec<Field>,
    /// 14.999 image data
    pub image: Vec<u8>,
}

/// One logical record after the Type-1 header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Type2(Type2),
    Type4(Type4),
    Type9(Type9),
    Type14(Type14),
    /// Another tagged type (10, 13, 15, ...), fields verbatim (x.002 IDC included).
    Tagged {
        record_type: u32,
        idc: u8,
        fields: Vec<Field>,
    },
    /// Another binary type (3, 5, 6, 7, 8): the whole record verbatim, length prefix included.
    Binary {
        record_type: u32,
        idc: u8,
        bytes: Vec<u8>,
    },
}

impl Record {
    pub fn record_type(&self) -> u32 {
        match self {
            Record::Type2(_) => 2,
            Record::Type4(_) => 4,
            Record::Type9(_) => 9,
            Record::Type14(_) => 14,
            Record::Tagged { record_type, .. } | Record::Binary { record_type, .. } => *record_type,
        }
    }
    pub fn idc(&self) -> u8 {
        match self {
            Record::Type2(r) => r.idc,
            Record::Type4(r) => r.idc,
            Record::Type9(r) => r.idc,
            Record::Type14(r) => r.idc,
            Record::Tagged { idc, .. } | Record::Binary { idc, .. } => *idc,
        }
    }
}

/// A whole ANSI/NIST-ITL transaction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Transaction {
    pub header: Type1,
    pub records: Vec<Record>,
}

const BINARY_TYPES: [u32; 6] = [3, 4, 5, 6, 7, 8];

fn is_binary(record_type: u32) -> bool {
    BINARY_TYPES.contains(&record_type)
}

/// Reads a traditional-encoding transaction.
pub fn read_transaction(bytes: &[u8]) -> Result<Transaction, FormatError> {
    let place1 = Place {
        record_type: 1,
        record_index: 0,
    };
    let (fields, mut at) = split_record(bytes, 0, place1)?;
    let (header, content) = read_type1(&fields, place1)?;
    let mut records = Vec::with_capacity(content.len().min(bytes.len() / 8));
    for (i, (record_type, idc, cnt_offset)) in content.into_iter().enumerate() {
        let place = Place {
            record_type,
            record_index: i + 1,
        };
        if at >= bytes.len() {
            return Err(place1.err(
                "1.003",
                cnt_offset,
                format!(
                    "CNT lists a Type-{record_type} record #{} but the input ends at byte {at}",
                    i + 1
                ),
            ));
        }
        let (record, end) = if is_binary(record_type) {
            read_binary(bytes, at, place)?
        } else {
            read_tagged(bytes, at, place)?
        };
        if record.idc() != idc {
            return Err(place.err(
                if is_binary(record_type) {
                    "IDC".to_string()
                } else {
                    place.tag(2)
                },
                at,
                format!("IDC {} does not match CNT's {idc}", record.idc()),
            ));
        }
        records.push(record);
        at = end;
    }
    if at != bytes.len() {
        return Err(FormatError::Record {
            record_type: 1,
            record_index: 0,
            field: "1.003".into(),
            offset: at,
            problem: format!(
                "{} bytes follow the {} records that CNT lists",
                bytes.len() - at,
                records.len()
            ),
        });
    }
    Ok(Transaction { header, records })
}

type Content = Vec<(u32, u8, usize)>;

fn read_type1(fields: &[RawField<'_>], place: Place) -> Result<(Type1, Content), FormatError> {
    let mut h = Type1::default();
    let mut content = None;
    for f in fields {
        let text = || f.as_str(place).map(str::to_string);
        match f.number {
            2 => h.version = text()?,
            3 => content = Some(parse_cnt(f, place)?),
            4 => h.tot = text()?,
            5 => h.date = text()?,
            6 => h.priority = Some(text()?),
            7 => h.destination = text()?,
            8 => h.originating = text()?,
            9 => h.tcn = text()?,
            10 => h.tcr = Some(text()?),
            11 => h.native_scan_resolution = text()?,
            12 => h.nominal_transmit_resolution = text()?,
            _ => h.other.push(f.owned()),
        }
    }
    let content = content.ok_or_else(|| place.err("1.003", 0, "CNT field is missing"))?;
    Ok((h, content))
}

fn parse_cnt(f: &RawField<'_>, place: Place) -> Result<Content, FormatError> {
    let subs = f.items(place)?;
    let bad = |p: String| place.err("1.003", f.offset, p);
    let first = subs.first().ok_or_else(|| bad("is empty".into()))?;
    if first.len() != 2 || first[0].trim() != "1" {
        return Err(bad(
            "first subfield must be '1' US <count of other records>".into(),
        ));
    }
    let count: usize = first[1].trim().parse().map_err(|_| {
        bad(format!(
            "record count '{}' is not a number",
            tagged::truncate(first[1])
        ))
    })?;
    if count != subs.len() - 1 {
        return Err(bad(format!(
            "says {count} records follow but lists {}",
            subs.len() - 1
        )));
    }
    let mut out = Vec::with_capacity(subs.len() - 1);
    for (i, s) in subs[1..].iter().enumerate() {
        let parsed = (s.len() == 2)
            .then(|| {
                Some((
                    s[0].trim().parse::<u32>().ok()?,
                    s[1].trim().parse::<u8>().ok()?,
                ))
            })
            .flatten();
        let (t, idc) = parsed
            .ok_or_else(|| bad(format!("subfield {} is not <record type> US <IDC>", i + 2)))?;
        if t == 1 || t == 0 || t > 99 {
            return Err(bad(format!("subfield {} lists record type {t}", i + 2)));
        }
        out.push((t, idc, f.offset));
    }
    Ok(out)
}

fn read_binary(bytes: &[u8], at: usize, place: Place) -> Result<(Record, usize), FormatError> {
    let avail = bytes.len() - at;
    let head = bytes.get(at..at + 5).ok_or_else(|| {
        place.err(
            "LEN",
            at,
            format!("binary record header needs 5 bytes, {avail} left"),
        )
    })?;
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let idc = head[4];
    if len > avail {
        return Err(place.err(
            "LEN",
            at,
            format!("record length {len} exceeds the {avail} bytes left"),
        ));
    }
    if place.record_type != 4 {
        if len < 5 {
            return Err(place.err(
                "LEN",
                at,
                format!("record length {len} is shorter than its header"),
            ));
        }
        return Ok((
            Record::Binary {
                record_type: place.record_type,
                idc,
                bytes: bytes[at..at + len].to_vec(),
            },
            at + len,
        ));
    }
    if len < 18 {
        return Err(place.err(
            "LEN",
            at,
            format!("Type-4 length {len} is shorter than the 18-byte header"),
        ));
    }
    let r = &bytes[at..at + len];
    let mut finger_positions = [0u8; 6];
    finger_positions.copy_from_slice(&r[6..12]);
    Ok((
        Record::Type4(Type4 {
            idc,
            impression_type: r[5],
            finger_positions,
            scanning_resolution: r[12],
            width: u16::from_be_bytes([r[13], r[14]]),
            height: u16::from_be_bytes([r[15], r[16]]),
            compression: r[17],
            image: r[18..].to_vec(),
        }),
        at + len,
    ))
}

fn idc_of(fields: &[RawField<'_>], place: Place, at: usize) -> Result<u8, FormatError> {
    let f = fields
        .iter()
        .find(|f| f.number == 2)
        .ok_or_else(|| place.err(place.tag(2), at, "IDC field is missing"))?;
    f.number(place)
}

fn read_tagged(bytes: &[u8], at: usize, place: Place) -> Result<(Record, usize), FormatError> {
    let (fields, end) = split_record(bytes, at, place)?;
    let idc = idc_of(&fields, place, at)?;
    let record = match place.record_type {
        2 => Record::Type2(Type2::from_fields(idc, &fields, place)?),
        9 => Record::Type9(Type9::from_fields(idc, &fields, place)?),
        14 => Record::Type14(read_type14(idc, &fields, place, at)?),
        t => Record::Tagged {
            record_type: t,
            idc,
            fields: fields
                .iter()
                .filter(|f| f.number != 2)
                .map(RawField::owned)
                .collect(),
        },
    };
    Ok((record, end))
}

fn read_type14(
    idc: u8,
    fields: &[RawField<'_>],
    place: Place,
    at: usize,
) -> Result<Type14, FormatError> {
    let mut r = Type14 {
        idc,
        ..Type14::default()
    };
    let mut seen_image = false;
    for f in fields {
        let text = || f.as_str(place).map(str::to_string);
        match f.number {
            2 => {}
            3 => r.impression_type = f.number(place)?,
            4 => r.source_agency = text()?,
            5 => r.capture_date = text()?,
            6 => r.width = f.number(place)?,
            7 => r.height = f.number(place)?,
            8 => r.scale_units = f.number(place)?,
            9 => r.x_scale = f.number(place)?,
            10 => r.y_scale = f.number(place)?,
            11 => r.compression = text()?,
            12 => r.bits_per_pixel = f.number(place)?,
            13 => {
                let items = f.items(place)?;
                let first = items.first().and_then(|s| s.first()).copied().unwrap_or("");
                r.finger_position = first.trim().parse().map_err(|_| {
                    place.err(
                        "14.013",
                        f.offset,
                        format!(
                            "finger position '{}' is not a number",
                            tagged::truncate(first)
                        ),
                    )
                })?;
            }
            999 => {
                r.image = f.value.to_vec();
                seen_image = true;
            }
            _ => r.other.push(f.owned()),
        }
    }
    if !seen_image {
        return Err(place.err("14.999", at, "image data field is missing"));
    }
    Ok(r)
}

/// Encodes a transaction; LEN fields and the CNT field are computed from the records.
pub fn write_transaction(tx: &Transaction) -> Vec<u8> {
    let h = &tx.header;
    let mut cnt = vec![vec!["1".to_string(), tx.records.len().to_string()]];
    cnt.extend(
        tx.records
            .iter()
            .map(|r| vec![r.record_type().to_string(), format!("{:02}", r.idc())]),
    );
    let mut f1 = vec![
        Field::text(2, h.version.clone()),
        Field::from_items(3, &cnt),
        Field::text(4, h.tot.clone()),
        Field::text(5, h.date.clone()),
        Field::text(7, h.destination.clone()),
        Field::text(8, h.originating.clone()),
        Field::text(9, h.tcn.clone()),
        Field::text(11, h.native_scan_resolution.clone()),
        Field::text(12, h.nominal_transmit_resolution.clone()),
    ];
    if let Some(p) = &h.priority {
        f1.push(Field::text(6, p.clone()));
    }
    if let Some(t) = &h.tcr {
        f1.push(Field::text(10, t.clone()));
    }
    f1.extend(h.other.iter().cloned());
    let mut out = encode_record(1, &f1);
    for r in &tx.records {
        match r {
            Record::Type2(t) => out.extend(encode_record(2, &t.to_fields())),
            Record::Type9(t) => out.extend(encode_record(9, &t.to_fields())),
            Record::Type14(t) => out.extend(encode_record(14, &type14_fields(t))),
            Record::Tagged {
                record_type,
                idc,
                fields,
            } => {
                let mut all = vec![Field::text(2, format!("{idc:02}"))];
                all.extend(fields.iter().cloned());
                out.extend(encode_record(*record_type, &all));
            }
            Record::Type4(t) => {
                let len = u32::try_from(18 + t.image.len()).unwrap_or(u32::MAX);
                out.extend_from_slice(&len.to_be_bytes());
                out.push(t.idc);
                out.push(t.impression_type);
                out.extend_from_slice(&t.finger_positions);
                out.push(t.scanning_resolution);
                out.extend_from_slice(&t.width.to_be_bytes());
                out.extend_from_slice(&t.height.to_be_bytes());
                out.push(t.compression);
                out.extend_from_slice(&t.image);
            }
            Record::Binary { bytes, .. } => out.extend_from_slice(bytes),
        }
    }
    out
}

fn type14_fields(t: &Type14) -> Vec<Field> {
    let mut f = vec![
        Field::text(2, format!("{:02}", t.idc)),
        Field::text(3, t.impression_type.to_string()),
        Field::text(4, t.source_agency.clone()),
        Field::text(5, t.capture_date.clone()),
        Field::text(6, t.width.to_string()),
        Field::text(7, t.height.to_string()),
        Field::text(8, t.scale_units.to_string()),
        Field::text(9, t.x_scale.to_string()),
        Field::text(10, t.y_scale.to_string()),
        Field::text(11, t.compression.clone()),
        Field::text(12, t.bits_per_pixel.to_string()),
        Field::text(13, t.finger_position.to_string()),
        Field {
            number: 999,
            value: t.image.clone(),
        },
    ];
    f.extend(t.other.iter().cloned());
    f
}

impl Transaction {
    pub fn tot(&self) -> &str {
        &self.header.tot
    }
    pub fn ori(&self) -> &str {
        &self.header.originating
    }
    pub fn tcn(&self) -> &str {
        &self.header.tcn
    }

    /// The first Type-2 record's biographics (empty when there is no Type-2).
    pub fn biographics(&self) -> Biographics {
        self.records
            .iter()
            .find_map(|r| match r {
                Record::Type2(t) => Some(t.biographics.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// Finger views from the Type-9 records, with their resolution (pixels/cm). When any
    /// Type-9 carries an INCITS 378 block only those blocks are used (pixels, one
    /// resolution); otherwise the legacy minutiae are used, in 0.01 mm units (1000 per cm).
    /// Defaults to 197 (500 ppi) when there is no Type-9.
    pub fn finger_views(&self) -> (u16, Vec<FingerView>) {
        let type9s: Vec<&Type9> = self
            .records
            .iter()
            .filter_map(|r| match r {
                Record::Type9(t) => Some(t),
                _ => None,
            })
            .collect();
        let any_incits = type9s.iter().any(|t| t.incits.is_some());
        let mut resolution = None;
        let mut views = Vec::new();
        for t in type9s {
            if any_incits && t.incits.is_none() {
                continue;
            }
            if let Some((ppcm, v)) = t.finger_view() {
                resolution.get_or_insert(ppcm);
                views.push(v);
            }
        }
        (resolution.unwrap_or(197), views)
    }

    /// Human-readable summary: header, record list, biographics, per-view minutiae counts.
    pub fn describe(&self) -> String {
        use std::fmt::Write;
        let h = &self.header;
        let mut s = String::new();
        let _ = writeln!(s, "format: ANSI/NIST-ITL (version {})", h.version);
        let _ = writeln!(
            s,
            "TOT: {}  date: {}  priority: {}",
            h.tot,
            h.date,
            h.priority.as_deref().unwrap_or("-")
        );
        let _ = writeln!(s, "ORI: {}  DAI: {}", h.originating, h.destination);
        let _ = writeln!(
            s,
            "TCN: {}  TCR: {}",
            h.tcn,
            h.tcr.as_deref().unwrap_or("-")
        );
        let _ = writeln!(
            s,
            "resolution: native {} / nominal {} px/mm",
            h.native_scan_resolution, h.nominal_transmit_resolution
        );
        let mut counts: Vec<(u32, usize)> = Vec::new();
        for r in &self.records {
            match counts.iter_mut().find(|(t, _)| *t == r.record_type()) {
                Some((_, n)) => *n += 1,
                None => counts.push((r.record_type(), 1)),
            }
        }
        let list: Vec<String> = counts
            .iter()
            .map(|(t, n)| format!("Type-{t} x{n}"))
            .collect();
        let _ = writeln!(s, "records: Type-1, {}", list.join(", "));
        if self.records.iter().any(|r| matches!(r, Record::Type2(_))) {
            s.push_str(&self.biographics().describe());
        }
        let (ppcm, views) = self.finger_views();
        if !views.is_empty() {
            let _ = writeln!(s, "minutiae resolution: {ppcm} px/cm");
            crate::subject::describe_views(&mut s, &views);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type4_header_is_the_18_byte_layout() {
        let tx = Transaction {
            header: Type1::default(),
            records: vec![Record::Type4(Type4 {
                idc: 3,
                impression_type: 1,
                finger_positions: [2, 255, 255, 255, 255, 255],
                scanning_resolution: 0,
                width: 0x0190,
                height: 0x01F4,
                compression: 1,
                image: vec![0xAA, 0xBB],
            })],
        };
        let bytes = write_transaction(&tx);
        let t1_len = bytes.iter().position(|&b| b == FS).expect("Type-1 ends") + 1;
        assert_eq!(
            &bytes[t1_len..],
            &[
                0, 0, 0, 20, 3, 1, 2, 255, 255, 255, 255, 255, 0, 0x01, 0x90, 0x01, 0xF4, 1, 0xAA,
                0xBB
            ]
        );
        assert_eq!(read_transaction(&bytes), Ok(tx));
    }

    #[test]
    fn binary_length_past_the_input_is_rejected() {
        let tx = TransactionBuilder::car("MD0030000", "T1", "20240101").build();
        let mut bytes = write_transaction(&tx);
        // Chop the input so that the first Type-4's LEN points past the end.
        bytes.truncate(bytes.len() - 5);
        assert!(read_transaction(&bytes).is_err());
    }
}
