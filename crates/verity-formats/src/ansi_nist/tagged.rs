//! Traditional-encoding tagged records: `T.NNN:value` fields separated by GS, subfields by
//! RS, items by US, the record ended by FS, and `T.001` giving the record length in bytes.
//! Field `T.999` (image data) is binary and runs to the final FS.

use crate::error::FormatError;

pub const FS: u8 = 0x1C;
pub const GS: u8 = 0x1D;
pub const RS: u8 = 0x1E;
pub const US: u8 = 0x1F;

/// One field of a tagged record, value kept as the bytes between `:` and the separator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub number: u32,
    pub value: Vec<u8>,
}

impl Field {
    pub fn text(number: u32, value: impl Into<String>) -> Self {
        Field {
            number,
            value: value.into().into_bytes(),
        }
    }

    /// A field from subfields of items (joined with RS and US).
    pub fn from_items(number: u32, subfields: &[Vec<String>]) -> Self {
        let mut value = Vec::new();
        for (i, sub) in subfields.iter().enumerate() {
            if i > 0 {
                value.push(RS);
            }
            for (j, item) in sub.iter().enumerate() {
                if j > 0 {
                    value.push(US);
                }
                value.extend_from_slice(item.as_bytes());
            }
        }
        Field { number, value }
    }
}

/// A field as found in the input, borrowed, with the absolute byte offset of its value.
#[derive(Debug, Clone, Copy)]
pub struct RawField<'a> {
    pub number: u32,
    pub value: &'a [u8],
    pub offset: usize,
}

/// Where we are, for error messages.
#[derive(Debug, Clone, Copy)]
pub struct Place {
    pub record_type: u32,
    pub record_index: usize,
}

impl Place {
    pub fn err(
        self,
        field: impl Into<String>,
        offset: usize,
        problem: impl Into<String>,
    ) -> FormatError {
        FormatError::Record {
            record_type: self.record_type,
            record_index: self.record_index,
            field: field.into(),
            offset,
            problem: problem.into(),
        }
    }
    pub fn tag(self, number: u32) -> String {
        format!("{}.{:03}", self.record_type, number)
    }
}

impl<'a> RawField<'a> {
    pub fn as_str(&self, place: Place) -> Result<&'a str, FormatError> {
        std::str::from_utf8(self.value).map_err(|e| {
            place.err(
                place.tag(self.number),
                self.offset + e.valid_up_to(),
                "is not valid text (UTF-8)",
            )
        })
    }

    /// Subfields split by RS, each split into items by US.
    pub fn items(&self, place: Place) -> Result<Vec<Vec<&'a str>>, FormatError> {
        let s = self.as_str(place)?;
        Ok(s.split(RS as char)
            .map(|sub| sub.split(US as char).collect())
            .collect())
    }

    pub fn number<T: std::str::FromStr>(&self, place: Place) -> Result<T, FormatError> {
        let s = self.as_str(place)?;
        s.trim().parse().map_err(|_| {
            place.err(
                place.tag(self.number),
                self.offset,
                format!("'{}' is not a number in range", truncate(s)),
            )
        })
    }

    pub fn owned(&self) -> Field {
        Field {
            number: self.number,
            value: self.value.to_vec(),
        }
    }
}

pub fn truncate(s: &str) -> String {
    if s.chars().count() > 40 {
        let t: String = s.chars().take(40).collect();
        format!("{t}...")
    } else {
        s.to_string()
    }
}

fn parse_decimal(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > 12 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    bytes.iter().try_fold(0u64, |acc, &b| {
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// Reads a `T.NNN:` tag at `at`; returns (type, field number, offset after the colon).
fn read_tag(bytes: &[u8], at: usize) -> Option<(u64, u64, usize)> {
    let rest = bytes.get(at..)?;
    let dot = rest.iter().take(12).position(|&b| b == b'.')?;
    let colon = rest.iter().take(24).position(|&b| b == b':')?;
    if colon <= dot + 1 {
        return None;
    }
    let t = parse_decimal(&rest[..dot])?;
    let n = parse_decimal(&rest[dot + 1..colon])?;
    Some((t, n, at + colon + 1))
}

/// Splits one tagged record starting at `start`. Returns the fields (x.001 excluded) and the
/// offset just past the record's FS.
pub fn split_record(
    bytes: &[u8],
    start: usize,
    place: Place,
) -> Result<(Vec<RawField<'_>>, usize), FormatError> {
    let len_tag = place.tag(1);
    let (t, n, value_at) = read_tag(bytes, start)
        .ok_or_else(|| place.err(&len_tag, start, "record does not start with a 'T.001:' tag"))?;
    if t != u64::from(place.record_type) || n != 1 {
        return Err(place.err(
            &len_tag,
            start,
            format!("expected tag {len_tag} but found {t}.{n:03}"),
        ));
    }
    let len_end = bytes[value_at..]
        .iter()
        .position(|&b| b == GS || b == FS)
        .map(|p| value_at + p)
        .ok_or_else(|| place.err(&len_tag, value_at, "record length is not terminated"))?;
    let declared = parse_decimal(&bytes[value_at..len_end])
        .ok_or_else(|| place.err(&len_tag, value_at, "record length is not a decimal number"))?;
    let remaining = (bytes.len() - start) as u64;
    if declared > remaining {
        return Err(place.err(
            &len_tag,
            value_at,
            format!("record length {declared} exceeds the {remaining} bytes left in the input"),
        ));
    }
    // Checked against the input size above, so it fits in usize.
    let end = start + declared as usize;
    if end <= len_end || bytes[end - 1] != FS {
        return Err(place.err(
            &len_tag,
            value_at,
            format!("record length {declared} does not end on a file separator (FS)"),
        ));
    }
    let mut fields = Vec::new();
    let mut at = len_end + 1;
    if bytes[len_end] == FS {
        return if at == end {
            Ok((fields, end))
        } else {
            Err(place.err(
                &len_tag,
                len_end,
                "file separator before the declared record end",
            ))
        };
    }
    let mut last_number = 1u64;
    while at < end {
        let (t, n, value_at) = read_tag(&bytes[..end], at)
            .ok_or_else(|| place.err("tag", at, "expected a 'T.NNN:' field tag"))?;
        if t != u64::from(place.record_type) {
            return Err(place.err(
                format!("{t}.{n:03}"),
                at,
                format!(
                    "field of Type-{t} inside a Type-{} record",
                    place.record_type
                ),
            ));
        }
        let number = u32::try_from(n)
            .map_err(|_| place.err("tag", at, format!("field number {n} is too large")))?;
        if n <= last_number {
            return Err(place.err(place.tag(number), at, "field is out of order or repeated"));
        }
        last_number = n;
        let (value_end, next) = if number == 999 {
            // Binary image data: everything up to the record's final FS.
            (value_at.max(end - 1), end)
        } else {
            let p = bytes[value_at..end]
                .iter()
                .position(|&b| b == GS || b == FS)
                .map(|p| value_at + p)
                .ok_or_else(|| place.err(place.tag(number), value_at, "field is not terminated"))?;
            if bytes[p] == FS && p + 1 != end {
                return Err(place.err(
                    place.tag(number),
                    p,
                    "file separator before the declared record end",
                ));
            }
            (p, p + 1)
        };
        fields.push(RawField {
            number,
            value: &bytes[value_at..value_end],
            offset: value_at,
        });
        at = next;
    }
    Ok((fields, end))
}

/// Encodes a tagged record; fields are written in ascending number order and x.001 is
/// computed (its own digits included).
pub fn encode_record(record_type: u32, fields: &[Field]) -> Vec<u8> {
    let mut sorted: Vec<&Field> = fields.iter().filter(|f| f.number != 1).collect();
    sorted.sort_by_key(|f| f.number);
    let mut body = Vec::new();
    for f in &sorted {
        body.push(GS);
        body.extend_from_slice(format!("{record_type}.{:03}:", f.number).as_bytes());
        body.extend_from_slice(&f.value);
    }
    body.push(FS);
    let prefix = format!("{record_type}.001:");
    let mut len = prefix.len() + body.len() + 1;
    // The length counts its own digits; two passes always settle.
    for _ in 0..3 {
        len = prefix.len() + len.to_string().len() + body.len();
    }
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(prefix.as_bytes());
    out.extend_from_slice(len.to_string().as_bytes());
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Place = Place {
        record_type: 2,
        record_index: 1,
    };

    #[test]
    fn encodes_and_splits_with_a_self_consistent_length() {
        let rec = encode_record(2, &[Field::text(18, "DOE,JOHN"), Field::text(2, "01")]);
        let (fields, end) = split_record(&rec, 0, P).expect("valid record");
        assert_eq!(end, rec.len());
        assert!(rec.starts_with(format!("2.001:{}\x1d2.002:01\x1d", rec.len()).as_bytes()));
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[1].value, b"DOE,JOHN");
    }

    #[test]
    fn length_beyond_the_input_is_rejected_with_offset() {
        let e = split_record(b"2.001:999\x1d2.002:01\x1c", 0, P).expect_err("length past end");
        match e {
            FormatError::Record { field, offset, .. } => {
                assert_eq!(field, "2.001");
                assert_eq!(offset, 6);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn out_of_order_fields_are_rejected() {
        let mut rec = Vec::from(&b"2.001:00\x1d2.018:X\x1d2.002:01\x1c"[..]);
        let n = rec.len().to_string();
        rec[6..8].copy_from_slice(n.as_bytes());
        assert!(split_record(&rec, 0, P).is_err());
    }
}
