//! A compact binary form of a [`SourceRecord`], for Verity's own caches (the NCATC candidates
//! file), where decoding JSON cost an incremental lead run most of its time. It is postcard over
//! the record's own fields; the body is written as an externally tagged enum, because postcard
//! cannot read the internally tagged one the JSON form uses. Not an interchange format: a cache
//! that holds it carries its own format number and is rebuilt when that changes.

use crate::record::*;
use serde::{Deserialize, Serialize};

/// A record that could not be written or read in the compact form.
#[derive(Debug, thiserror::Error)]
#[error("compact record: {0}")]
pub struct CompactError(String);

#[derive(Serialize)]
struct RecordRef<'a> {
    record_id: &'a str,
    identity: &'a Identity,
    body: BodyRef<'a>,
}

#[derive(Serialize)]
enum BodyRef<'a> {
    Benefits(&'a BenefitsRecord),
    Travel(&'a TravelRecord),
    Enforcement(&'a EnforcementRecord),
    Court(&'a CourtRecord),
    Criminal(&'a CriminalRecord),
    Custody(&'a CustodyRecord),
    Citizenship(&'a CitizenshipRecord),
    Biometrics(&'a BiometricsRecord),
}

#[derive(Deserialize)]
struct RecordOwned {
    record_id: String,
    identity: Identity,
    body: BodyOwned,
}

#[derive(Deserialize)]
enum BodyOwned {
    Benefits(BenefitsRecord),
    Travel(TravelRecord),
    Enforcement(EnforcementRecord),
    Court(CourtRecord),
    Criminal(CriminalRecord),
    Custody(CustodyRecord),
    Citizenship(CitizenshipRecord),
    Biometrics(BiometricsRecord),
}

impl SourceRecord {
    /// Appends the record's compact form to `out`.
    pub fn write_compact(&self, out: &mut Vec<u8>) -> Result<(), CompactError> {
        let body = match &self.body {
            RecordBody::Benefits(b) => BodyRef::Benefits(b),
            RecordBody::Travel(b) => BodyRef::Travel(b),
            RecordBody::Enforcement(b) => BodyRef::Enforcement(b),
            RecordBody::Court(b) => BodyRef::Court(b),
            RecordBody::Criminal(b) => BodyRef::Criminal(b),
            RecordBody::Custody(b) => BodyRef::Custody(b),
            RecordBody::Citizenship(b) => BodyRef::Citizenship(b),
            RecordBody::Biometrics(b) => BodyRef::Biometrics(b),
        };
        let value = RecordRef {
            record_id: &self.record_id,
            identity: &self.identity,
            body,
        };
        let taken = std::mem::take(out);
        *out = postcard::to_extend(&value, taken).map_err(|e| CompactError(e.to_string()))?;
        Ok(())
    }

    /// Reads one record's compact form from the start of `bytes`: the record and the bytes
    /// after it.
    pub fn read_compact(bytes: &[u8]) -> Result<(SourceRecord, &[u8]), CompactError> {
        let (r, rest) = postcard::take_from_bytes::<RecordOwned>(bytes)
            .map_err(|e| CompactError(e.to_string()))?;
        let body = match r.body {
            BodyOwned::Benefits(b) => RecordBody::Benefits(b),
            BodyOwned::Travel(b) => RecordBody::Travel(b),
            BodyOwned::Enforcement(b) => RecordBody::Enforcement(b),
            BodyOwned::Court(b) => RecordBody::Court(b),
            BodyOwned::Criminal(b) => RecordBody::Criminal(b),
            BodyOwned::Custody(b) => RecordBody::Custody(b),
            BodyOwned::Citizenship(b) => RecordBody::Citizenship(b),
            BodyOwned::Biometrics(b) => RecordBody::Biometrics(b),
        };
        Ok((
            SourceRecord {
                record_id: r.record_id,
                identity: r.identity,
                body,
            },
            rest,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::date::PartialDate;
    use crate::name::{PersonName, Sex};

    fn sample(body: RecordBody) -> SourceRecord {
        SourceRecord {
            record_id: "CRIM-1".into(),
            identity: Identity {
                name: PersonName::new("ANA", "", "REYES"),
                aliases: vec![PersonName::new("ANNA", "M", "REYES")],
                dob: PartialDate::full(1990, 4, 2).ok(),
                sex: Some(Sex::Female),
                country_of_birth: "GT".into(),
                ..Default::default()
            },
            body,
        }
    }

    #[test]
    fn records_of_several_systems_read_back_the_same_one_after_another() {
        let records = [
            sample(RecordBody::Citizenship(CitizenshipRecord {
                evidence: CitizenshipEvidence::UsPassport,
                document_number: "P1".into(),
                issued: None,
            })),
            sample(RecordBody::Court(CourtRecord {
                case_number: "C-9".into(),
                filed: PartialDate::full(2019, 6, 1).unwrap_or_else(|e| panic!("{e}")),
                outcome: CourtOutcome::InAbsentiaOrder,
                decided: None,
                relief: String::new(),
                appeal_pending: true,
            })),
        ];
        let mut bytes = Vec::new();
        for r in &records {
            r.write_compact(&mut bytes)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let mut rest = bytes.as_slice();
        for r in &records {
            let (back, after) = SourceRecord::read_compact(rest).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(&back, r);
            rest = after;
        }
        assert!(rest.is_empty());
        // A cut record is an error, not a wrong record.
        assert!(SourceRecord::read_compact(&bytes[..bytes.len() / 3]).is_err());
    }
}
