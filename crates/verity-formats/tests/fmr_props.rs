//! Property tests: random records survive write then read (angles quantised to the format's
//! unit), and arbitrary bytes never panic the reader.

use proptest::prelude::*;
use verity_formats::fmr::{
    read_fmr, write_fmr, FingerMinutiaeRecord, FingerView, FmrFormat, Minutia, MinutiaKind,
};

fn kind() -> impl Strategy<Value = MinutiaKind> {
    prop_oneof![
        Just(MinutiaKind::Other),
        Just(MinutiaKind::RidgeEnding),
        Just(MinutiaKind::Bifurcation)
    ]
}

fn minutia(format: FmrFormat) -> impl Strategy<Value = Minutia> {
    let units = format.units_per_circle();
    (kind(), 0u16..0x4000, 0u16..0x4000, 0..units, 0u8..=100).prop_map(
        move |(kind, x, y, a, quality)| Minutia {
            kind,
            x,
            y,
            angle_degrees: format.decode_angle(a as u8),
            quality,
        },
    )
}

fn view(format: FmrFormat) -> impl Strategy<Value = FingerView> {
    (
        0u8..=10,
        0u8..16,
        0u8..16,
        0u8..=100,
        proptest::collection::vec(minutia(format), 0..40),
        proptest::collection::vec(any::<u8>(), 0..20),
    )
        .prop_map(
            |(finger_position, view_number, impression_type, quality, minutiae, extended_data)| {
                FingerView {
                    finger_position,
                    view_number,
                    impression_type,
                    quality,
                    minutiae,
                    extended_data,
                }
            },
        )
}

fn record() -> impl Strategy<Value = FingerMinutiaeRecord> {
    prop_oneof![
        Just(FmrFormat::Iso19794_2_2005),
        Just(FmrFormat::Incits378_2004)
    ]
    .prop_flat_map(|format| {
        (
            any::<u16>(),
            any::<u16>(),
            1u16..1000,
            1u16..1000,
            proptest::collection::vec(view(format), 0..5),
            any::<u16>(),
            any::<u32>(),
        )
            .prop_map(
                move |(width, height, xr, yr, views, capture_equipment, product)| {
                    FingerMinutiaeRecord {
                        format,
                        width,
                        height,
                        x_resolution: xr,
                        y_resolution: yr,
                        views,
                        capture_equipment,
                        cbeff_product_id: if format == FmrFormat::Incits378_2004 {
                            product
                        } else {
                            0
                        },
                        declared_length_mismatch: None,
                    }
                },
            )
    })
}

proptest! {
    #[test]
    fn write_then_read_is_identity(rec in record()) {
        prop_assert!(rec.check_encodable().is_ok());
        let bytes = write_fmr(&rec);
        prop_assert_eq!(bytes.len(), rec.encoded_len());
        prop_assert_eq!(read_fmr(&bytes), Ok(rec));
    }

    #[test]
    fn angles_are_quantised_to_the_nearest_unit(deg in 0.0f32..360.0) {
        for format in [FmrFormat::Iso19794_2_2005, FmrFormat::Incits378_2004] {
            let back = format.decode_angle(format.encode_angle(deg));
            let diff = (back - deg).abs();
            let wrapped = diff.min(360.0 - diff);
            prop_assert!(wrapped <= format.degrees_per_unit() / 2.0 + 1e-3, "{deg} -> {back}");
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = read_fmr(&bytes);
    }

    #[test]
    fn corrupted_fixture_never_panics(pos in 0usize..343, val in any::<u8>(), cut in 0usize..=343) {
        let mut b = include_bytes!("fixtures/ansi378-2004-example.fmr").to_vec();
        b[pos] = val;
        b.truncate(cut);
        let _ = read_fmr(&b);
        let _ = verity_formats::read_subject(&b);
    }
}
