//! Versioned schema migrations, embedded in the binary (one SQL directory per backend under
//! `migrations/`) and run when a store opens. sqlx records applied versions and checksums in
//! `_sqlx_migrations`, so an edited, already-applied migration is refused rather than skipped.

use crate::backend::{with_pool, Store};
use crate::error::StoreError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

/// (version, description, SQL) for one backend, in version order.
type Steps = &'static [(i64, &'static str, &'static str)];

const SQLITE: Steps = &[
    (
        1,
        "initial",
        include_str!("../migrations/sqlite/0001_initial.sql"),
    ),
    (
        2,
        "lesc",
        include_str!("../migrations/sqlite/0002_lesc.sql"),
    ),
    (
        3,
        "perc",
        include_str!("../migrations/sqlite/0003_perc.sql"),
    ),
    (
        4,
        "ncatc",
        include_str!("../migrations/sqlite/0004_ncatc.sql"),
    ),
    (
        5,
        "bookings",
        include_str!("../migrations/sqlite/0005_bookings.sql"),
    ),
    (
        6,
        "ncatc sweep",
        include_str!("../migrations/sqlite/0006_ncatc_sweep.sql"),
    ),
    (
        7,
        "ncatc sweep hashes",
        include_str!("../migrations/sqlite/0007_ncatc_sweep_hashes.sql"),
    ),
    (
        8,
        "record digests",
        include_str!("../migrations/sqlite/0008_record_digests.sql"),
    ),
    (
        9,
        "record packs",
        include_str!("../migrations/sqlite/0009_record_packs.sql"),
    ),
];

const POSTGRES: Steps = &[
    (
        1,
        "initial",
        include_str!("../migrations/postgres/0001_initial.sql"),
    ),
    (
        2,
        "lesc",
        include_str!("../migrations/postgres/0002_lesc.sql"),
    ),
    (
        3,
        "perc",
        include_str!("../migrations/postgres/0003_perc.sql"),
    ),
    (
        4,
        "ncatc",
        include_str!("../migrations/postgres/0004_ncatc.sql"),
    ),
    (
        5,
        "bookings",
        include_str!("../migrations/postgres/0005_bookings.sql"),
    ),
    (
        6,
        "ncatc sweep",
        include_str!("../migrations/postgres/0006_ncatc_sweep.sql"),
    ),
    (
        7,
        "ncatc sweep hashes",
        include_str!("../migrations/postgres/0007_ncatc_sweep_hashes.sql"),
    ),
    (
        8,
        "record digests",
        include_str!("../migrations/postgres/0008_record_digests.sql"),
    ),
    (
        9,
        "record packs",
        include_str!("../migrations/postgres/0009_record_packs.sql"),
    ),
];

#[derive(Debug)]
struct Embedded(Steps);

type BoxDynError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl MigrationSource<'static> for Embedded {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 'static>> {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|(version, description, sql)| {
                    Migration::new(
                        *version,
                        Cow::Borrowed(*description),
                        MigrationType::Simple,
                        Cow::Borrowed(*sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

pub(crate) async fn run(store: &Store) -> Result<(), StoreError> {
    let steps = match store.kind() {
        crate::BackendKind::Sqlite => SQLITE,
        crate::BackendKind::Postgres => POSTGRES,
    };
    let migrator = Migrator::new(Embedded(steps)).await?;
    with_pool!(store, pool => migrator.run(pool).await?);
    Ok(())
}

/// The newest schema version this build knows, per backend (they move together).
pub const SCHEMA_VERSION: i64 = 9;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_have_the_same_versions() {
        let v = |s: Steps| s.iter().map(|(v, d, _)| (*v, *d)).collect::<Vec<_>>();
        assert_eq!(v(SQLITE), v(POSTGRES));
        assert_eq!(SQLITE.last().map(|s| s.0), Some(SCHEMA_VERSION));
    }
}
