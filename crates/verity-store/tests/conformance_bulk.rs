//! Conformance of the bulk load (`verity_store::bulk`), on SQLite and on PostgreSQL: a world
//! bulk loaded into an empty store is stored exactly as the batch-by-batch import stores it
//! (records with their revs and JSON, both sweep-key hash tables, digest chunks), the schema
//! afterwards is the migrations' schema, and a bulk load that stops part-way is completed by
//! the next import or finished on request, never left without its indexes unannounced.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use common::{gen, TestDb};
use sqlx::Connection;
use std::path::Path;
use verity_model::RecordSystem;
use verity_store::bulk::{BULK_DROPPED_INDEXES, BULK_FLAG};
use verity_store::import::{import_world_with, ImportMode};
use verity_store::{BackendKind, ImportError, ImportOptions};

conformance!(
    bulk_import_stores_what_the_batch_import_stores,
    schema_after_a_bulk_load_is_the_migrations_schema,
    an_interrupted_bulk_load_is_resumed_by_the_next_import,
    an_interrupted_bulk_load_can_be_finished_as_it_stands,
    a_bulk_load_that_stored_nothing_is_redone,
);

/// Records in the test world: with batches of 7 and 20 batches per bulk transaction, several
/// transactions.
const RECORDS: u64 = 400;

fn opts() -> ImportOptions {
    ImportOptions {
        batch_size: 7,
        progress: false,
    }
}

/// A second fresh store on the same backend as `db`.
async fn twin(db: &TestDb) -> TestDb {
    match db.store.kind() {
        BackendKind::Sqlite => TestDb::sqlite().await,
        BackendKind::Postgres => TestDb::postgres()
            .await
            .expect("PostgreSQL answered for the first store"),
    }
}

/// Every row of a query, each as its columns (all selected as text) joined by '|'.
async fn rows_as_text(url: &str, kind: BackendKind, sql: &str) -> Vec<String> {
    async fn collect<R: sqlx::Row>(rows: Vec<R>) -> Vec<String>
    where
        for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        usize: sqlx::ColumnIndex<R>,
    {
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| r.get::<Option<String>, _>(i).unwrap_or_else(|| "∅".into()))
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect()
    }
    match kind {
        BackendKind::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
            let rows = sqlx::query(sql).fetch_all(&mut c).await.unwrap();
            let out = collect(rows).await;
            c.close().await.unwrap();
            out
        }
        BackendKind::Postgres => {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            let rows = sqlx::query(sql).fetch_all(&mut c).await.unwrap();
            let out = collect(rows).await;
            c.close().await.unwrap();
            out
        }
    }
}

/// Every table an import fills, as text, in key order: (table, rows).
async fn contents(db: &TestDb) -> Vec<(&'static str, Vec<String>)> {
    let kind = db.store.kind();
    let hex = match kind {
        BackendKind::Sqlite => "hex(digest)",
        BackendKind::Postgres => "upper(encode(digest, 'hex'))",
    };
    let t = |c: &str| format!("CAST({c} AS TEXT)");
    let records = format!(
        "SELECT {}, record_id, system, family_name, given_name, dob, a_number, fin, fbi_number, \
         ssn, passport, state_id, region, county, record_json FROM records ORDER BY rev",
        t("rev")
    );
    let digests = format!(
        "SELECT {}, {}, {}, {hex} FROM record_digests ORDER BY first_rev",
        t("first_rev"),
        t("last_rev"),
        t("records")
    );
    let citizen = format!(
        "SELECT {} FROM lead_citizen_hashes ORDER BY key_hash",
        t("key_hash")
    );
    let status = format!(
        "SELECT {}, record_id FROM lead_status_hashes ORDER BY key_hash, record_id",
        t("key_hash")
    );
    let head = format!("SELECT {} FROM record_rev_head", t("rev"));
    let mut out = Vec::new();
    for (table, sql) in [
        ("records", records),
        ("record_digests", digests),
        ("lead_citizen_hashes", citizen),
        ("lead_status_hashes", status),
        ("record_rev_head", head),
    ] {
        out.push((table, rows_as_text(&db.url, kind, &sql).await));
    }
    out
}

/// The schema: every table and index with its definition (SQLite: `sqlite_master`;
/// PostgreSQL: `pg_tables` and `pg_indexes`).
async fn schema(db: &TestDb) -> Vec<String> {
    let kind = db.store.kind();
    match kind {
        BackendKind::Sqlite => {
            rows_as_text(
                &db.url,
                kind,
                "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name",
            )
            .await
        }
        BackendKind::Postgres => {
            let mut out = rows_as_text(
                &db.url,
                kind,
                "SELECT CAST(tablename AS TEXT) FROM pg_tables \
                 WHERE schemaname = current_schema() ORDER BY tablename",
            )
            .await;
            out.extend(
                rows_as_text(
                    &db.url,
                    kind,
                    "SELECT CAST(tablename AS TEXT), CAST(indexname AS TEXT), indexdef \
                     FROM pg_indexes WHERE schemaname = current_schema() \
                     ORDER BY tablename, indexname",
                )
                .await,
            );
            out
        }
    }
}

/// Names of the indexes on `records` that no constraint owns.
async fn secondary_record_indexes(db: &TestDb) -> Vec<String> {
    let kind = db.store.kind();
    let sql = match kind {
        BackendKind::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records' \
             AND sql IS NOT NULL ORDER BY name"
        }
        BackendKind::Postgres => {
            "SELECT CAST(i.indexname AS TEXT) FROM pg_indexes i \
             WHERE i.schemaname = current_schema() AND i.tablename = 'records' \
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname) \
             ORDER BY i.indexname"
        }
    };
    rows_as_text(&db.url, kind, sql).await
}

async fn import(db: &TestDb, world: &Path, mode: ImportMode) -> Result<(u64, bool), ImportError> {
    import_world_with(&db.store, world, &opts(), mode)
        .await
        .map(|s| (s.records_inserted, s.bulk))
}

/// Replaces the date cell `column` of data row `row` of `system`'s file with an impossible
/// date; returns the clean file.
fn break_row(world: &Path, system: RecordSystem, column: &str, row: usize) -> String {
    let path = world.join(system.file_name());
    let clean = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = clean.lines().map(str::to_string).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let col = header.iter().position(|h| *h == column).unwrap();
    let mut cells: Vec<String> = lines[row].split(',').map(str::to_string).collect();
    cells[col] = "2020-13-45".into();
    lines[row] = cells.join(",");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    clean
}

mod cases {
    use super::*;

    pub async fn bulk_import_stores_what_the_batch_import_stores(db: &TestDb) {
        let world = db.scratch.0.join("world");
        gen::write_world(&world, 21, RECORDS);
        let (inserted, bulk) = import(db, &world, ImportMode::Auto).await.unwrap();
        assert_eq!((inserted, bulk), (RECORDS, true));
        let normal = twin(db).await;
        let (inserted, bulk) = import(&normal, &world, ImportMode::Incremental)
            .await
            .unwrap();
        assert_eq!((inserted, bulk), (RECORDS, false));
        let got = contents(db).await;
        let want = contents(&normal).await;
        for ((table, g), (_, w)) in got.iter().zip(&want) {
            assert!(!w.is_empty(), "{table}: the test world must fill it");
            assert_eq!(g.len(), w.len(), "{table}: row count");
            assert_eq!(g, w, "{table}");
        }
        assert_eq!(db.store.bulk_load_pending().await.unwrap(), None);
        // A second import into the now filled store takes the batch path and adds nothing.
        let (inserted, bulk) = import(db, &world, ImportMode::Auto).await.unwrap();
        assert_eq!((inserted, bulk), (0, false));
        assert_eq!(contents(db).await[0], want[0]);
        normal.finish().await;
    }

    pub async fn schema_after_a_bulk_load_is_the_migrations_schema(db: &TestDb) {
        let migrated = twin(db).await;
        let want = schema(&migrated).await;
        // The dropped list is every secondary index of records, as the migrations made them.
        let mut listed: Vec<String> = BULK_DROPPED_INDEXES.iter().map(|s| s.to_string()).collect();
        listed.sort();
        assert_eq!(secondary_record_indexes(&migrated).await, listed);
        let world = db.scratch.0.join("world");
        gen::write_world(&world, 22, RECORDS);
        let (_, bulk) = import(db, &world, ImportMode::Auto).await.unwrap();
        assert!(bulk);
        assert_eq!(schema(db).await, want);
        assert_eq!(db.store.get_meta(BULK_FLAG).await.unwrap(), None);
        migrated.finish().await;
    }

    pub async fn an_interrupted_bulk_load_is_resumed_by_the_next_import(db: &TestDb) {
        let world = db.scratch.0.join("world");
        let written = gen::write_world(&world, 23, RECORDS);
        // A bad row in the third file: the transactions before it are committed.
        let last = RecordSystem::Enforcement;
        let bad_row = written[&last].len() - 2;
        let clean = break_row(&world, last, "date", bad_row);
        let migrated_schema = schema(&twin(db).await).await;

        let err = import(db, &world, ImportMode::Auto).await.unwrap_err();
        assert!(matches!(err, ImportError::Row { .. }), "{err}");
        let stored = db.store.count_records().await.unwrap();
        assert!(stored > 0 && stored < RECORDS, "stored {stored}");
        // Not silently incomplete: the flag says so and the indexes are visibly absent.
        assert!(db.store.bulk_load_pending().await.unwrap().is_some());
        assert!(secondary_record_indexes(db).await.is_empty());

        // The same thing on the batch path, for comparison: it stops at the same batch.
        let normal = twin(db).await;
        import(&normal, &world, ImportMode::Incremental)
            .await
            .unwrap_err();
        assert_eq!(normal.store.count_records().await.unwrap(), stored);

        std::fs::write(world.join(last.file_name()), clean).unwrap();
        let (inserted, bulk) = import(db, &world, ImportMode::Auto).await.unwrap();
        assert_eq!(
            (inserted, bulk),
            (RECORDS - stored, true),
            "resumed in bulk"
        );
        import(&normal, &world, ImportMode::Incremental)
            .await
            .unwrap();
        assert_eq!(contents(db).await, contents(&normal).await);
        assert_eq!(schema(db).await, migrated_schema);
        assert_eq!(db.store.bulk_load_pending().await.unwrap(), None);
        normal.finish().await;
    }

    pub async fn an_interrupted_bulk_load_can_be_finished_as_it_stands(db: &TestDb) {
        let world = db.scratch.0.join("world");
        let written = gen::write_world(&world, 24, RECORDS);
        let last = RecordSystem::Enforcement;
        let clean = break_row(&world, last, "date", written[&last].len() - 2);
        let migrated_schema = schema(&twin(db).await).await;
        import(db, &world, ImportMode::Auto).await.unwrap_err();
        let normal = twin(db).await;
        import(&normal, &world, ImportMode::Incremental)
            .await
            .unwrap_err();

        assert!(db.store.finish_interrupted_bulk_load().await.unwrap());
        assert!(!db.store.finish_interrupted_bulk_load().await.unwrap());
        assert_eq!(schema(db).await, migrated_schema);
        // As it stands, it is what an interrupted batch import leaves.
        assert_eq!(contents(db).await, contents(&normal).await);

        // Then the store is not empty: the next import takes the batch path and completes it.
        std::fs::write(world.join(last.file_name()), clean).unwrap();
        let (_, bulk) = import(db, &world, ImportMode::Auto).await.unwrap();
        assert!(!bulk);
        import(&normal, &world, ImportMode::Incremental)
            .await
            .unwrap();
        assert_eq!(contents(db).await, contents(&normal).await);
        normal.finish().await;
    }

    pub async fn a_bulk_load_that_stored_nothing_is_redone(db: &TestDb) {
        let world = db.scratch.0.join("world");
        gen::write_world(&world, 25, RECORDS);
        // A bad row before the first batch of the first file: nothing is stored, the flag is.
        let first = RecordSystem::ALL[0];
        let clean = break_row(&world, first, "filed", 3);
        import(db, &world, ImportMode::Auto).await.unwrap_err();
        assert_eq!(db.store.count_records().await.unwrap(), 0);
        assert!(db.store.bulk_load_pending().await.unwrap().is_some());
        std::fs::write(world.join(first.file_name()), clean).unwrap();
        // Even a forced batch import first puts the indexes back.
        let (inserted, bulk) = import(db, &world, ImportMode::Incremental).await.unwrap();
        assert_eq!((inserted, bulk), (RECORDS, false));
        assert_eq!(db.store.bulk_load_pending().await.unwrap(), None);
        let migrated = twin(db).await;
        assert_eq!(schema(db).await, schema(&migrated).await);
        migrated.finish().await;
    }
}
