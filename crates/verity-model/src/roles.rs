//! Roles and purposes. Authorization itself lives in `verity-workflow`; these are the names.

use crate::code_enum;

code_enum! {
    /// What a user account may do. A user may hold several roles.
    Role {
        AgencyUser = "agency_user",
        LescSpecialist = "lesc_specialist",
        LescDeportationOfficer = "lesc_deportation_officer",
        PercOfficer = "perc_officer",
        Supervisor = "supervisor",
        NcatcAnalyst = "ncatc_analyst",
        FieldOfficer = "field_officer",
        Auditor = "auditor",
        Admin = "admin",
    }
}

code_enum! {
    /// Why personal data was read. Every audited read carries one. `C` and `F` are the Nlets
    /// IAQ purposes; the rest are Verity's internal purposes.
    Purpose {
        CriminalJustice = "C",
        Firearms = "F",
        StatusDetermination = "STATUS",
        Enforcement = "ENFORCE",
        LeadGeneration = "LEADS",
        CitizenshipReview = "CITIZEN",
        Oversight = "AUDIT",
        Administration = "ADMIN",
        System = "SYSTEM",
    }
}
