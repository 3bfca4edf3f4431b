//! Deny-by-default authorization.
//!
//! The role -> permission table is data (`data/access/permissions.toml`). A principal may do
//! something only when one of its roles is granted that permission; anything else is refused.

use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use verity_model::{Ori, Role};

pub const EMBEDDED_POLICY: &str = include_str!("../../../data/access/permissions.toml");

verity_model::code_enum! {
    /// Something a user may be allowed to do.
    Permission {
    ViewConsole = "view_console",
    ViewPersonData = "view_person_data",
    SubmitQuery = "submit_query",
    ViewOwnAgencyAnswers = "view_own_agency_answers",
    ReviewQueries = "review_queries",
    ReviewCitizenship = "review_citizenship",
    IssueIar = "issue_iar",
    ConfirmHits = "confirm_hits",
    PrepareDetainer = "prepare_detainer",
    ApproveDetainer = "approve_detainer",
    TrackDetainers = "track_detainers",
    Escalations = "escalations",
    RunLeads = "run_leads",
    ReviewLeads = "review_leads",
    WorkAorLeads = "work_aor_leads",
    ViewAnalytics = "view_analytics",
    ViewAuditLog = "view_audit_log",
    ManageUsers = "manage_users",
    ManageAgencies = "manage_agencies",
}}

/// Who is acting: a console user or an agency's system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub username: String,
    pub roles: Vec<Role>,
    pub agency: Option<Ori>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccessPolicyError {
    #[error("access policy: {0}")]
    Parse(String),
    #[error("access policy: unknown role '{0}'")]
    UnknownRole(String),
    #[error("access policy: role '{role}' has unknown permission '{permission}'")]
    UnknownPermission { role: String, permission: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    version: String,
    roles: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct AccessPolicy {
    pub version: String,
    grants: BTreeMap<Role, BTreeSet<Permission>>,
}

impl AccessPolicy {
    pub fn load(text: &str) -> Result<Self, AccessPolicyError> {
        let file: PolicyFile =
            toml::from_str(text).map_err(|e| AccessPolicyError::Parse(e.to_string()))?;
        let mut grants = BTreeMap::new();
        for (role, perms) in file.roles {
            let r = Role::parse(&role).map_err(|_| AccessPolicyError::UnknownRole(role.clone()))?;
            let mut set = BTreeSet::new();
            for p in perms {
                let perm =
                    Permission::parse(&p).map_err(|_| AccessPolicyError::UnknownPermission {
                        role: role.clone(),
                        permission: p.clone(),
                    })?;
                set.insert(perm);
            }
            grants.insert(r, set);
        }
        Ok(AccessPolicy {
            version: file.version,
            grants,
        })
    }

    pub fn embedded() -> Result<Self, AccessPolicyError> {
        Self::load(EMBEDDED_POLICY)
    }

    pub fn allows(&self, who: &Principal, what: Permission) -> bool {
        who.roles
            .iter()
            .any(|r| self.grants.get(r).is_some_and(|s| s.contains(&what)))
    }

    pub fn permissions_of(&self, who: &Principal) -> BTreeSet<Permission> {
        who.roles
            .iter()
            .filter_map(|r| self.grants.get(r))
            .flatten()
            .copied()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn who(roles: &[Role]) -> Principal {
        Principal {
            username: "u".into(),
            roles: roles.to_vec(),
            agency: None,
        }
    }

    #[test]
    fn embedded_policy_loads_and_covers_every_role() {
        let p = AccessPolicy::embedded().expect("valid policy");
        for r in Role::ALL {
            assert!(p.grants.contains_key(r), "role {r} has no grants entry");
        }
    }

    #[test]
    fn no_roles_means_no_access() {
        let p = AccessPolicy::embedded().expect("valid policy");
        for perm in Permission::ALL {
            assert!(!p.allows(&who(&[]), *perm));
        }
    }

    #[test]
    fn separation_of_duties_in_the_default_policy() {
        let p = AccessPolicy::embedded().expect("valid policy");
        assert!(!p.allows(&who(&[Role::PercOfficer]), Permission::ApproveDetainer));
        assert!(p.allows(&who(&[Role::Supervisor]), Permission::ApproveDetainer));
        assert!(!p.allows(&who(&[Role::AgencyUser]), Permission::ViewPersonData));
        assert!(!p.allows(&who(&[Role::Admin]), Permission::ViewPersonData));
        assert!(p.allows(&who(&[Role::Auditor]), Permission::ViewAuditLog));
    }

    #[test]
    fn unknown_names_are_load_errors() {
        let e = AccessPolicy::load("version='x'\n[roles]\nwizard=['view_console']\n").unwrap_err();
        assert_eq!(e, AccessPolicyError::UnknownRole("wizard".into()));
        let e = AccessPolicy::load("version='x'\n[roles]\nadmin=['fly']\n").unwrap_err();
        assert!(matches!(e, AccessPolicyError::UnknownPermission { .. }));
        assert!(AccessPolicy::load("version='x'\nextra=1\n[roles]\n").is_err());
    }

    proptest! {
        /// Granting is monotone and exact: a principal is allowed a permission iff one of its
        /// roles lists it.
        #[test]
        fn allows_iff_some_role_grants(mask in 0u16..512, perm_idx in 0usize..19) {
            let p = AccessPolicy::embedded().expect("valid policy");
            let roles: Vec<Role> = Role::ALL.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, r)| *r).collect();
            let perm = Permission::ALL[perm_idx % Permission::ALL.len()];
            let expected = roles.iter().any(|r| p.grants.get(r).is_some_and(|s| s.contains(&perm)));
            prop_assert_eq!(p.allows(&who(&roles), perm), expected);
        }
    }
}
