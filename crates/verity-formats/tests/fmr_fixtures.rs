//! The two NIST sample records decode to the published values and re-encode byte-for-byte.

use verity_formats::fmr::{read_fmr, write_fmr, FmrFormat, MinutiaKind};
use verity_formats::read_subject;

const ISO: &[u8] = include_bytes!("fixtures/iso19794-2-2005-example.fmr");
const ANSI: &[u8] = include_bytes!("fixtures/ansi378-2004-example.fmr");

#[test]
fn iso_fixture_decodes_to_published_values() {
    let rec = read_fmr(ISO).expect("ISO fixture parses");
    assert_eq!(rec.format, FmrFormat::Iso19794_2_2005);
    assert_eq!((rec.width, rec.height), (512, 512));
    assert_eq!((rec.x_resolution, rec.y_resolution), (197, 197));
    assert_eq!(rec.views.len(), 2);
    assert_eq!(rec.views[0].finger_position, 7);
    assert_eq!(rec.views[0].minutiae.len(), 27);
    assert_eq!(rec.views[1].finger_position, 2);
    assert_eq!(rec.views[1].minutiae.len(), 22);
    let m = rec.views[0].minutiae[0];
    assert_eq!(m.kind, MinutiaKind::RidgeEnding);
    assert_eq!((m.x, m.y, m.quality), (100, 14, 90));
    assert_eq!(m.angle_degrees, 112.5); // byte 80 of 256
    let m2 = rec.views[1].minutiae[0];
    assert_eq!(m2.kind, MinutiaKind::RidgeEnding);
    assert_eq!(
        (m2.x, m2.y, m2.angle_degrees, m2.quality),
        (40, 93, 0.0, 90)
    );
    // The header's length field (340) disagrees with the file size (341): kept, not "fixed".
    assert_eq!(rec.declared_length_mismatch, Some(340));
    assert_eq!(rec.views[0].extended_data.len(), 0);
    assert_eq!(rec.views[1].extended_data.len(), 11);
    let areas = rec.views[1].extended_areas().expect("well-formed areas");
    assert_eq!(areas.len(), 1);
    assert_eq!(areas[0].0, 1, "ridge count area");
}

#[test]
fn ansi_fixture_decodes_to_published_values() {
    let rec = read_fmr(ANSI).expect("ANSI fixture parses");
    assert_eq!(rec.format, FmrFormat::Incits378_2004);
    assert_eq!(rec.cbeff_product_id, 0x0042_0011);
    assert_eq!((rec.width, rec.height), (512, 512));
    assert_eq!((rec.x_resolution, rec.y_resolution), (197, 197));
    assert_eq!(rec.declared_length_mismatch, None);
    let counts: Vec<(u8, usize)> = rec
        .views
        .iter()
        .map(|v| (v.finger_position, v.minutiae.len()))
        .collect();
    assert_eq!(counts, vec![(7, 27), (2, 22)]);
    let m = rec.views[0].minutiae[0];
    assert_eq!(m.kind, MinutiaKind::RidgeEnding);
    assert_eq!((m.x, m.y, m.angle_degrees, m.quality), (100, 14, 112.0, 90));
    let m2 = rec.views[1].minutiae[0];
    assert_eq!(
        (m2.x, m2.y, m2.angle_degrees, m2.quality),
        (40, 93, 0.0, 90)
    );
}

#[test]
fn both_formats_carry_the_same_minutiae_within_angle_quantisation() {
    let iso = read_fmr(ISO).expect("iso");
    let ansi = read_fmr(ANSI).expect("ansi");
    for (a, b) in iso.views.iter().zip(&ansi.views) {
        assert_eq!(a.minutiae.len(), b.minutiae.len());
        for (p, q) in a.minutiae.iter().zip(&b.minutiae) {
            assert_eq!((p.kind, p.x, p.y, p.quality), (q.kind, q.x, q.y, q.quality));
            let diff = (p.angle_degrees - q.angle_degrees).abs();
            assert!(diff <= 2.0, "{} vs {}", p.angle_degrees, q.angle_degrees);
        }
    }
}

#[test]
fn fixtures_reencode_byte_for_byte() {
    for bytes in [ISO, ANSI] {
        let rec = read_fmr(bytes).expect("parses");
        assert_eq!(write_fmr(&rec), bytes);
    }
}

#[test]
fn subject_reader_tells_the_formats_apart() {
    let iso = read_subject(ISO).expect("iso subject");
    let ansi = read_subject(ANSI).expect("ansi subject");
    assert_eq!(iso.format, "ISO/IEC 19794-2:2005");
    assert_eq!(ansi.format, "ANSI INCITS 378-2004");
    assert_eq!(iso.resolution_ppcm, 197);
    assert_eq!(ansi.views.len(), 2);
}

#[test]
fn truncated_fixture_reports_an_offset() {
    for bytes in [ISO, ANSI] {
        for cut in [9, 30, 100, bytes.len() - 1] {
            let err = read_fmr(&bytes[..cut]).expect_err("truncated input must fail");
            assert!(err.to_string().contains("byte"), "{err}");
        }
    }
}

#[test]
fn describe_names_format_and_counts() {
    let text = verity_formats::describe(ANSI).expect("describes");
    assert!(text.contains("ANSI INCITS 378-2004"), "{text}");
    assert!(text.contains("finger 7"), "{text}");
    assert!(text.contains("27 minutiae"), "{text}");
    assert!(text.contains("0x00420011"), "{text}");
}
