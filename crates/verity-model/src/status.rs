//! Immigration and citizenship statuses.
//!
//! The same codes are used by the synthetic world's ground truth, by the status rules and by
//! the IAR. `NoRecordFound` and `Undetermined` are answers about the *records*, never about the
//! person: neither means unlawful presence, and nothing may treat them as removable.

/// An enum whose variants have fixed text codes: `ALL`, `code()`, `parse()` (an error naming
/// the enum and the allowed codes), `Display`, `FromStr`, and serde as the code. Used for every
/// closed vocabulary in Verity, so they all read, print and serialize the same way.
#[macro_export]
macro_rules! code_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $code:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),* }

        // Serialized as its code, the same text the CSV files and APIs use.
        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.code())
            }
        }
        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as ::serde::Deserialize>::deserialize(d)?;
                $name::parse(&s).map_err(::serde::de::Error::custom)
            }
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $code),* }
            }
            pub fn parse(raw: &str) -> Result<Self, $crate::error::FieldError> {
                let t = raw.trim();
                $(if t.eq_ignore_ascii_case($code) { return Ok($name::$variant); })*
                Err($crate::error::FieldError::new(
                    stringify!($name),
                    format!("'{}' is not one of: {}", t, [$($code),*].join(", ")),
                ))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.code()) }
        }
        impl std::str::FromStr for $name {
            type Err = $crate::error::FieldError;
            fn from_str(s: &str) -> Result<Self, Self::Err> { Self::parse(s) }
        }
    };
}

crate::code_enum! {
    /// What Verity can say about a person's status.
    ImmigrationStatus {
        UsCitizenBirth = "us_citizen_birth",
        UsCitizenNaturalized = "us_citizen_naturalized",
        UsCitizenDerived = "us_citizen_derived",
        PotentialUsCitizen = "potential_us_citizen",
        Lpr = "lpr",
        Refugee = "refugee",
        Asylee = "asylee",
        TpsHolder = "tps_holder",
        DacaRecipient = "daca_recipient",
        NonimmigrantInStatus = "nonimmigrant_in_status",
        NonimmigrantOverstay = "nonimmigrant_overstay",
        Parolee = "parolee",
        PendingAsylum = "pending_asylum",
        PendingTps = "pending_tps",
        PendingAdjustment = "pending_adjustment",
        PendingRemovalProceedings = "pending_removal_proceedings",
        FinalOrderOfRemoval = "final_order_of_removal",
        PreviouslyRemoved = "previously_removed",
        EnteredWithoutInspection = "entered_without_inspection",
        NoRecordFound = "no_record_found",
        Undetermined = "undetermined",
    }
}

impl ImmigrationStatus {
    /// Any form of U.S. citizenship, proven or potential. Enforcement is blocked for these.
    pub fn is_citizen_or_potential(self) -> bool {
        matches!(
            self,
            ImmigrationStatus::UsCitizenBirth
                | ImmigrationStatus::UsCitizenNaturalized
                | ImmigrationStatus::UsCitizenDerived
                | ImmigrationStatus::PotentialUsCitizen
        )
    }

    /// Answers about the records rather than the person. Never a basis for action.
    pub fn is_non_answer(self) -> bool {
        matches!(
            self,
            ImmigrationStatus::NoRecordFound | ImmigrationStatus::Undetermined
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for s in ImmigrationStatus::ALL {
            assert!(seen.insert(s.code()));
            assert_eq!(ImmigrationStatus::parse(s.code()), Ok(*s));
        }
        let e = ImmigrationStatus::parse("illegal").unwrap_err();
        assert!(e.problem.contains("not one of"));
    }

    #[test]
    fn no_record_found_is_not_a_person_status() {
        assert!(ImmigrationStatus::NoRecordFound.is_non_answer());
        assert!(!ImmigrationStatus::NoRecordFound.is_citizen_or_potential());
    }
}
