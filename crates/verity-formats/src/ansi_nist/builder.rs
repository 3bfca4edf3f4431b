//! Builds EBTS transactions from typed parts: used by tests, fuzz seeds and synthetic bookings.

use super::{Biographics, IncitsMinutiae, Record, Transaction, Type1, Type2, Type4, Type9};
use crate::fmr::{FingerView, Minutia, MinutiaKind};

/// Builder of a ten-print transaction (Type-1, one Type-2, then a Type-4 image and a Type-9
/// INCITS 378 minutiae record per finger).
#[derive(Debug, Clone)]
pub struct TransactionBuilder {
    header: Type1,
    biographics: Biographics,
    fingers: Vec<FingerView>,
    image_width: u16,
    image_height: u16,
    resolution_ppcm: u16,
}

impl TransactionBuilder {
    /// A CAR (criminal ten-print, answer required) from `ori`, destined to the FBI CJIS ORI.
    pub fn car(ori: &str, tcn: &str, date_ccyymmdd: &str) -> Self {
        TransactionBuilder {
            header: Type1 {
                version: "0500".into(),
                tot: "CAR".into(),
                date: date_ccyymmdd.into(),
                priority: Some("2".into()),
                destination: "WVIAFIS0Z".into(),
                originating: ori.into(),
                tcn: tcn.into(),
                tcr: None,
                native_scan_resolution: "19.69".into(),
                nominal_transmit_resolution: "19.69".into(),
                other: Vec::new(),
            },
            biographics: Biographics::default(),
            fingers: Vec::new(),
            image_width: 400,
            image_height: 400,
            resolution_ppcm: 197,
        }
    }

    pub fn tot(mut self, tot: &str) -> Self {
        self.header.tot = tot.into();
        self
    }

    pub fn biographics(mut self, b: Biographics) -> Self {
        self.biographics = b;
        self
    }

    /// Adds one finger's minutiae (finger position taken from the view).
    pub fn finger(mut self, view: FingerView) -> Self {
        self.fingers.push(view);
        self
    }

    /// Ten synthetic fingers (positions 1-10), each with a few minutiae derived from `seed`,
    /// so that tests and fuzz seeds get a realistic shape without real prints.
    pub fn synthetic_fingers(mut self, seed: u32) -> Self {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        let mut next = move |m: u32| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state % m
        };
        for pos in 1..=10u8 {
            let n = 3 + next(5) as usize;
            let minutiae = (0..n)
                .map(|_| Minutia {
                    kind: if next(2) == 0 {
                        MinutiaKind::RidgeEnding
                    } else {
                        MinutiaKind::Bifurcation
                    },
                    x: next(400) as u16,
                    y: next(400) as u16,
                    angle_degrees: (next(180) * 2) as f32,
                    quality: 40 + next(61) as u8,
                })
                .collect();
            self.fingers.push(FingerView {
                finger_position: pos,
                view_number: 0,
                impression_type: 1,
                quality: 60 + next(41) as u8,
                minutiae,
                extended_data: Vec::new(),
            });
        }
        self
    }

    pub fn build(self) -> Transaction {
        let mut records = vec![Record::Type2(Type2 {
            idc: 0,
            biographics: self.biographics,
            other: Vec::new(),
        })];
        for (i, f) in self.fingers.iter().enumerate() {
            // Small dummy image bytes: the payload is opaque to this crate.
            let image = vec![0xFF, 0xA0, f.finger_position, 0xFF, 0xA1];
            records.push(Record::Type4(Type4 {
                idc: (i + 1) as u8,
                impression_type: f.impression_type,
                finger_positions: [f.finger_position, 255, 255, 255, 255, 255],
                scanning_resolution: 0,
                width: self.image_width,
                height: self.image_height,
                compression: 1,
                image,
            }));
        }
        for (i, f) in self.fingers.iter().enumerate() {
            records.push(Record::Type9(Type9 {
                idc: (i + 1) as u8,
                impression_type: f.impression_type,
                minutiae_format: "U".into(),
                legacy: None,
                incits: Some(IncitsMinutiae::from_finger_view(
                    f,
                    self.image_width,
                    self.image_height,
                    self.resolution_ppcm,
                )),
                other: Vec::new(),
            }));
        }
        Transaction {
            header: self.header,
            records,
        }
    }
}
