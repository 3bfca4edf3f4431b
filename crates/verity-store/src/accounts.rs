//! Agencies, users and login sessions.
//!
//! The store keeps only hashes of secrets (password hashes, API-key hashes, session-token
//! hashes); hashing and checking them is the caller's job. Roles are stored as their codes.

use crate::backend::{with_pool, Store, StoreRow};
use crate::error::{DbContext, StoreError};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use verity_model::{Ori, Role};

/// A law-enforcement agency known by its ORI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agency {
    pub ori: Ori,
    pub name: String,
    /// Kind of agency as the agency table names it (for example a sheriff's office).
    pub kind: String,
    /// USPS state code.
    pub state: String,
    pub county: String,
    /// The ICE field office (area of responsibility) that serves the agency.
    pub field_office: String,
    /// Hash of the agency's API key, when it has one.
    pub api_key_hash: Option<String>,
    pub active: bool,
}

/// A user account to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub roles: Vec<Role>,
    /// Set for agency users: the agency on whose behalf they act.
    pub agency_ori: Option<Ori>,
}

/// A stored user account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub roles: Vec<Role>,
    pub agency_ori: Option<Ori>,
    pub active: bool,
    /// RFC 3339 UTC.
    pub created_at: String,
}

/// A login session, found by the hash of its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub token_hash: String,
    pub username: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

fn corrupt(table: &'static str, key: &str, problem: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        table,
        key: key.to_string(),
        problem: problem.into(),
    }
}

fn parse_ori(table: &'static str, key: &str, raw: &str) -> Result<Ori, StoreError> {
    Ori::parse(raw).map_err(|e| corrupt(table, key, e.to_string()))
}

fn roles_text(roles: &[Role]) -> String {
    roles.iter().map(|r| r.code()).collect::<Vec<_>>().join(",")
}

fn parse_roles(key: &str, raw: &str) -> Result<Vec<Role>, StoreError> {
    raw.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| Role::parse(s).map_err(|e| corrupt("users", key, e.to_string())))
        .collect()
}

fn agency_from_row(row: &impl StoreRow) -> Result<Agency, StoreError> {
    let op = "read an agency row";
    let ori_text = row.text("ori").ctx(op)?;
    Ok(Agency {
        ori: parse_ori("agencies", &ori_text, &ori_text)?,
        name: row.text("name").ctx(op)?,
        kind: row.text("kind").ctx(op)?,
        state: row.text("state").ctx(op)?,
        county: row.text("county").ctx(op)?,
        field_office: row.text("field_office").ctx(op)?,
        api_key_hash: row.opt_text("api_key_hash").ctx(op)?,
        active: row.flag("active").ctx(op)?,
    })
}

fn user_from_row(row: &impl StoreRow) -> Result<User, StoreError> {
    let op = "read a user row";
    let username = row.text("username").ctx(op)?;
    let agency_ori = row
        .opt_text("agency_ori")
        .ctx(op)?
        .map(|o| parse_ori("users", &username, &o))
        .transpose()?;
    Ok(User {
        roles: parse_roles(&username, &row.text("roles").ctx(op)?)?,
        display_name: row.text("display_name").ctx(op)?,
        password_hash: row.text("password_hash").ctx(op)?,
        agency_ori,
        active: row.flag("active").ctx(op)?,
        created_at: row.text("created_at").ctx(op)?,
        username,
    })
}

fn micros_to_time(key: &str, micros: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| corrupt("sessions", key, format!("time {micros} is out of range")))
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

const AGENCY_COLUMNS: &str = "ori, name, kind, state, county, field_office, api_key_hash, active";
const USER_COLUMNS: &str =
    "username, display_name, password_hash, roles, agency_ori, active, created_at";

impl Store {
    /// Creates the agency or replaces every field of the stored one.
    pub async fn upsert_agency(&self, a: &Agency) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO agencies (ori, name, kind, state, county, field_office, api_key_hash, active) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (ori) DO UPDATE SET name = excluded.name, kind = excluded.kind, \
                 state = excluded.state, county = excluded.county, \
                 field_office = excluded.field_office, api_key_hash = excluded.api_key_hash, \
                 active = excluded.active",
            )
            .bind(a.ori.as_str())
            .bind(a.name.as_str())
            .bind(a.kind.as_str())
            .bind(a.state.as_str())
            .bind(a.county.as_str())
            .bind(a.field_office.as_str())
            .bind(a.api_key_hash.as_deref())
            .bind(a.active)
            .execute(pool)
            .await
            .ctx("store an agency")?;
        });
        Ok(())
    }

    /// Creates agencies or updates their descriptive fields, keeping each stored agency's API
    /// key and active flag (which an agency table does not carry). For imports.
    pub async fn merge_agencies(&self, agencies: &[Agency]) -> Result<(), StoreError> {
        use crate::backend::Backend;
        with_pool!(self, pool => {
            let mut tx = pool.begin_write().await.ctx("start an agency import")?;
            for a in agencies {
                sqlx::query(
                    "INSERT INTO agencies (ori, name, kind, state, county, field_office, api_key_hash, active) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (ori) DO UPDATE SET name = excluded.name, kind = excluded.kind, \
                     state = excluded.state, county = excluded.county, \
                     field_office = excluded.field_office",
                )
                .bind(a.ori.as_str())
                .bind(a.name.as_str())
                .bind(a.kind.as_str())
                .bind(a.state.as_str())
                .bind(a.county.as_str())
                .bind(a.field_office.as_str())
                .bind(a.api_key_hash.as_deref())
                .bind(a.active)
                .execute(&mut *tx)
                .await
                .ctx("import an agency")?;
            }
            tx.commit().await.ctx("commit an agency import")?;
        });
        Ok(())
    }

    pub async fn get_agency(&self, ori: &Ori) -> Result<Option<Agency>, StoreError> {
        let sql = format!("SELECT {AGENCY_COLUMNS} FROM agencies WHERE ori = $1");
        with_pool!(self, pool => {
            let row = sqlx::query(&sql)
                .bind(ori.as_str())
                .fetch_optional(pool)
                .await
                .ctx("read an agency")?;
            row.as_ref().map(agency_from_row).transpose()
        })
    }

    /// The agency whose API key hashes to `api_key_hash`, active or not.
    pub async fn agency_by_api_key_hash(
        &self,
        api_key_hash: &str,
    ) -> Result<Option<Agency>, StoreError> {
        let sql = format!("SELECT {AGENCY_COLUMNS} FROM agencies WHERE api_key_hash = $1");
        with_pool!(self, pool => {
            let row = sqlx::query(&sql)
                .bind(api_key_hash)
                .fetch_optional(pool)
                .await
                .ctx("find an agency by API key")?;
            row.as_ref().map(agency_from_row).transpose()
        })
    }

    /// All agencies, by ORI.
    pub async fn list_agencies(&self) -> Result<Vec<Agency>, StoreError> {
        let sql = format!("SELECT {AGENCY_COLUMNS} FROM agencies ORDER BY ori");
        with_pool!(self, pool => {
            let rows = sqlx::query(&sql).fetch_all(pool).await.ctx("list agencies")?;
            rows.iter().map(agency_from_row).collect()
        })
    }

    /// Creates an active user. Fails with [`StoreError::AlreadyExists`] if the name is taken.
    pub async fn create_user(&self, u: &NewUser) -> Result<User, StoreError> {
        if u.username.trim().is_empty() || u.username != u.username.trim() {
            return Err(StoreError::Invalid(verity_model::FieldError::new(
                "username",
                "must be non-empty without surrounding spaces",
            )));
        }
        let created_at = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
        with_pool!(self, pool => {
            let r = sqlx::query(
                "INSERT INTO users (username, display_name, password_hash, roles, agency_ori, active, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(u.username.as_str())
            .bind(u.display_name.as_str())
            .bind(u.password_hash.as_str())
            .bind(roles_text(&u.roles))
            .bind(u.agency_ori.as_ref().map(Ori::as_str))
            .bind(true)
            .bind(created_at.as_str())
            .execute(pool)
            .await;
            match r {
                Err(e) if is_unique_violation(&e) => {
                    return Err(StoreError::AlreadyExists { what: "user", key: u.username.clone() })
                }
                Err(sqlx::Error::Database(d)) if d.is_foreign_key_violation() => {
                    return Err(StoreError::NotFound {
                        what: "agency",
                        key: u.agency_ori.as_ref().map(|o| o.to_string()).unwrap_or_default(),
                    })
                }
                other => other.ctx("create a user")?,
            };
        });
        Ok(User {
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            password_hash: u.password_hash.clone(),
            roles: u.roles.clone(),
            agency_ori: u.agency_ori.clone(),
            active: true,
            created_at,
        })
    }

    pub async fn get_user(&self, username: &str) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1");
        with_pool!(self, pool => {
            let row = sqlx::query(&sql)
                .bind(username)
                .fetch_optional(pool)
                .await
                .ctx("read a user")?;
            row.as_ref().map(user_from_row).transpose()
        })
    }

    /// All users, by username.
    pub async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY username");
        with_pool!(self, pool => {
            let rows = sqlx::query(&sql).fetch_all(pool).await.ctx("list users")?;
            rows.iter().map(user_from_row).collect()
        })
    }

    async fn update_user(
        &self,
        username: &str,
        sql: &'static str,
        value: UserValue<'_>,
        op: &'static str,
    ) -> Result<(), StoreError> {
        let affected = with_pool!(self, pool => {
            let q = sqlx::query(sql);
            let q = match value {
                UserValue::Text(t) => q.bind(t),
                UserValue::Flag(b) => q.bind(b),
            };
            q.bind(username).execute(pool).await.ctx(op)?.rows_affected()
        });
        if affected == 0 {
            return Err(StoreError::NotFound {
                what: "user",
                key: username.to_string(),
            });
        }
        Ok(())
    }

    pub async fn set_password_hash(
        &self,
        username: &str,
        password_hash: &str,
    ) -> Result<(), StoreError> {
        self.update_user(
            username,
            "UPDATE users SET password_hash = $1 WHERE username = $2",
            UserValue::Text(password_hash),
            "set a password",
        )
        .await
    }

    /// Enables or disables a user. Disabling also ends the user's sessions.
    pub async fn set_active(&self, username: &str, active: bool) -> Result<(), StoreError> {
        self.update_user(
            username,
            "UPDATE users SET active = $1 WHERE username = $2",
            UserValue::Flag(active),
            "enable or disable a user",
        )
        .await?;
        if !active {
            with_pool!(self, pool => {
                sqlx::query("DELETE FROM sessions WHERE username = $1")
                    .bind(username)
                    .execute(pool)
                    .await
                    .ctx("end a disabled user's sessions")?;
            });
        }
        Ok(())
    }

    pub async fn set_roles(&self, username: &str, roles: &[Role]) -> Result<(), StoreError> {
        let text = roles_text(roles);
        self.update_user(
            username,
            "UPDATE users SET roles = $1 WHERE username = $2",
            UserValue::Text(&text),
            "set a user's roles",
        )
        .await
    }

    /// Records a session for `username` (which must exist) until `expires_at`.
    pub async fn create_session(
        &self,
        token_hash: &str,
        username: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<Session, StoreError> {
        let now = Utc::now();
        with_pool!(self, pool => {
            let r = sqlx::query(
                "INSERT INTO sessions (token_hash, username, created_at_micros, expires_at_micros) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(token_hash)
            .bind(username)
            .bind(now.timestamp_micros())
            .bind(expires_at.timestamp_micros())
            .execute(pool)
            .await;
            match r {
                Err(e) if is_unique_violation(&e) => {
                    return Err(StoreError::AlreadyExists { what: "session", key: "(token hash)".into() })
                }
                Err(sqlx::Error::Database(d)) if d.is_foreign_key_violation() => {
                    return Err(StoreError::NotFound { what: "user", key: username.to_string() })
                }
                other => other.ctx("create a session")?,
            };
        });
        let micros = |t: DateTime<Utc>| micros_to_time(token_hash, t.timestamp_micros());
        Ok(Session {
            token_hash: token_hash.to_string(),
            username: username.to_string(),
            created_at: micros(now)?,
            expires_at: micros(expires_at)?,
        })
    }

    /// The session with this token hash, if it exists and has not expired.
    pub async fn get_session(&self, token_hash: &str) -> Result<Option<Session>, StoreError> {
        let now = Utc::now().timestamp_micros();
        with_pool!(self, pool => {
            let row = sqlx::query(
                "SELECT token_hash, username, created_at_micros, expires_at_micros FROM sessions \
                 WHERE token_hash = $1 AND expires_at_micros > $2",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(pool)
            .await
            .ctx("read a session")?;
            let Some(row) = row else { return Ok(None) };
            let op = "read a session row";
            Ok(Some(Session {
                token_hash: row.text("token_hash").ctx(op)?,
                username: row.text("username").ctx(op)?,
                created_at: micros_to_time(token_hash, row.int("created_at_micros").ctx(op)?)?,
                expires_at: micros_to_time(token_hash, row.int("expires_at_micros").ctx(op)?)?,
            }))
        })
    }

    /// Ends a session. Returns whether it existed.
    pub async fn delete_session(&self, token_hash: &str) -> Result<bool, StoreError> {
        with_pool!(self, pool => {
            let r = sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                .bind(token_hash)
                .execute(pool)
                .await
                .ctx("delete a session")?;
            Ok(r.rows_affected() > 0)
        })
    }

    /// Deletes expired sessions; returns how many.
    pub async fn delete_expired_sessions(&self) -> Result<u64, StoreError> {
        let now = Utc::now().timestamp_micros();
        with_pool!(self, pool => {
            let r = sqlx::query("DELETE FROM sessions WHERE expires_at_micros <= $1")
                .bind(now)
                .execute(pool)
                .await
                .ctx("delete expired sessions")?;
            Ok(r.rows_affected())
        })
    }
}

enum UserValue<'a> {
    Text(&'a str),
    Flag(bool),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_text() {
        let roles = vec![Role::Admin, Role::Auditor, Role::AgencyUser];
        assert_eq!(parse_roles("u", &roles_text(&roles)).expect("valid"), roles);
        assert_eq!(parse_roles("u", "").expect("valid"), vec![]);
        assert!(parse_roles("u", "admin,wizard").is_err());
    }
}
