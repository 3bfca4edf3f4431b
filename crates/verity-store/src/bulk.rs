//! Bulk loading into an empty store: what `import_world` does when the store holds no records.
//!
//! Keeping eight secondary indexes of the records table (and the sweep-key tables' b-trees) up
//! to date row by row is what made importing tens of millions of records take hours: every
//! insert walks and splits pages all over each b-tree. A bulk load instead
//! 1. records the meta flag [`BULK_FLAG`], creates two staging tables and drops the indexes
//!    named in [`BULK_DROPPED_INDEXES`], all in one transaction;
//! 2. inserts the records in rev order with the normal path's statements, many batches per
//!    transaction, appending their sweep-key hashes to the staging tables and writing each
//!    batch's digest chunk (one chunk per batch, as the normal path writes it);
//! 3. finishes: moves the staged sweep keys into their tables in key order (so each b-tree is
//!    written once, in order), drops the staging tables, re-creates every dropped index with
//!    the statement of the migration that first created it, and clears the flag last.
//!
//! Each finishing step is idempotent, so a load that stops anywhere is completed by the next
//! import (which resumes the bulk load: stored record ids are skipped) or by
//! [`Store::finish_interrupted_bulk_load`], which finishes it as it stands. While the flag is
//! set the store is incomplete; [`Store::bulk_load_pending`] says so.

use crate::backend::{Pools, Store};
use crate::error::{DbContext, StoreError};
use crate::records::{placeholder_style, DerivedRows, Placeholders, RecordRow, RecordWriter};
use crate::scan::{encode_digests, value_rows, VALUES_PER_QUERY};
use crate::BackendKind;
use sqlx::{PgConnection, SqliteConnection};

/// The meta key set while a bulk load is under way (its value says when it started and from
/// where). Set before any index is dropped; cleared after every index is back.
pub const BULK_FLAG: &str = "bulk_load_in_progress";

/// The secondary indexes a bulk load drops and re-creates: every index of `records` except
/// the constraints' own (`rev` primary key, `record_id` unique), which the load needs to hand
/// out revs and skip stored ids. Each is re-created with the `CREATE INDEX` statement of the
/// migration that made it ([`index_statement`]); a test checks this list against the schema.
pub const BULK_DROPPED_INDEXES: &[&str] = &[
    "records_system",
    "records_a_number",
    "records_fin",
    "records_fbi_number",
    "records_ssn",
    "records_passport",
    "records_state_id",
    "records_body_fin",
];

/// Staging tables: (name, SQLite columns, PostgreSQL columns). Rows are appended unordered
/// while loading and moved into the sweep-key tables, sorted, at the end.
const STAGING_TABLES: &[(&str, &str, &str)] = &[
    (
        "bulk_citizen_hashes",
        "key_hash INTEGER NOT NULL",
        "key_hash BIGINT NOT NULL",
    ),
    (
        "bulk_status_hashes",
        "key_hash INTEGER NOT NULL, record_id TEXT NOT NULL",
        "key_hash BIGINT NOT NULL, record_id TEXT COLLATE \"C\" NOT NULL",
    ),
];

/// The statements that move the staged rows into their tables, in key order, once.
const MERGE_STATEMENTS: &[&str] = &[
    // `WHERE true` keeps SQLite from reading ON CONFLICT as a join constraint.
    "INSERT INTO lead_citizen_hashes (key_hash) \
     SELECT DISTINCT key_hash FROM bulk_citizen_hashes WHERE true ORDER BY key_hash \
     ON CONFLICT DO NOTHING",
    "INSERT INTO lead_status_hashes (key_hash, record_id) \
     SELECT DISTINCT key_hash, record_id FROM bulk_status_hashes WHERE true \
     ORDER BY key_hash, record_id ON CONFLICT DO NOTHING",
];

/// Batches of the import per bulk transaction (with the default 10,000-record batch, 200,000
/// records): fewer commits write each page fewer times, and a stop loses at most this much.
pub(crate) const BATCHES_PER_TRANSACTION: usize = 20;

/// The SQLite page cache of the loading connection, in MiB, unless `VERITY_SQLITE_CACHE_MIB`
/// asks for more. The record-id index takes random inserts; at 39M records it is ~1.5 GiB.
/// SQLite allocates pages only as it uses them, so small loads do not take this much.
pub const BULK_SQLITE_CACHE_MIB: u64 = 3072;

/// Every migration of a backend, in version order (the same files `migrate` embeds).
fn migrations(kind: BackendKind) -> [&'static str; 9] {
    match kind {
        BackendKind::Sqlite => [
            include_str!("../migrations/sqlite/0001_initial.sql"),
            include_str!("../migrations/sqlite/0002_lesc.sql"),
            include_str!("../migrations/sqlite/0003_perc.sql"),
            include_str!("../migrations/sqlite/0004_ncatc.sql"),
            include_str!("../migrations/sqlite/0005_bookings.sql"),
            include_str!("../migrations/sqlite/0006_ncatc_sweep.sql"),
            include_str!("../migrations/sqlite/0007_ncatc_sweep_hashes.sql"),
            include_str!("../migrations/sqlite/0008_record_digests.sql"),
            include_str!("../migrations/sqlite/0009_record_packs.sql"),
        ],
        BackendKind::Postgres => [
            include_str!("../migrations/postgres/0001_initial.sql"),
            include_str!("../migrations/postgres/0002_lesc.sql"),
            include_str!("../migrations/postgres/0003_perc.sql"),
            include_str!("../migrations/postgres/0004_ncatc.sql"),
            include_str!("../migrations/postgres/0005_bookings.sql"),
            include_str!("../migrations/postgres/0006_ncatc_sweep.sql"),
            include_str!("../migrations/postgres/0007_ncatc_sweep_hashes.sql"),
            include_str!("../migrations/postgres/0008_record_digests.sql"),
            include_str!("../migrations/postgres/0009_record_packs.sql"),
        ],
    }
}

/// The `CREATE INDEX` statement (without its `;`) that the migrations of `kind` create index
/// `name` with; an error unless exactly one migration does.
pub fn index_statement(kind: BackendKind, name: &str) -> Result<&'static str, StoreError> {
    let head = format!("CREATE INDEX {name} ON ");
    let mut found = Vec::new();
    for text in migrations(kind) {
        let mut from = 0;
        while let Some(at) = text[from..].find(&head) {
            let start = from + at;
            let end = text[start..].find(';').map_or(text.len(), |e| start + e);
            found.push(&text[start..end]);
            from = end;
        }
    }
    match found[..] {
        [one] => Ok(one),
        _ => Err(StoreError::Corrupt {
            table: "migrations",
            key: name.to_string(),
            problem: format!(
                "expected one CREATE INDEX statement for this index, found {}",
                found.len()
            ),
        }),
    }
}

/// One connection of either backend, taken out of the pool for the load (so its session
/// settings never reach other work).
enum BulkConn {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// Runs `$body` with `$conn` bound to the concrete connection (compiled once per backend).
macro_rules! with_conn {
    ($c:expr, $conn:ident => $body:expr) => {
        match $c {
            BulkConn::Sqlite($conn) => $body,
            BulkConn::Postgres($conn) => $body,
        }
    };
}

/// Runs `sql` (one or more statements, no parameters). Through `Executor::execute` on a
/// string rather than `sqlx::raw_sql`, whose future on a borrowed connection is not `Send`.
async fn exec(conn: &mut BulkConn, sql: &str, op: &'static str) -> Result<(), StoreError> {
    use sqlx::Executor;
    with_conn!(conn, c => {
        c.execute(sql).await.ctx(op)?;
    });
    Ok(())
}

/// Whether a table or index of this name exists.
async fn object_exists(
    conn: &mut BulkConn,
    is_index: bool,
    name: &str,
) -> Result<bool, StoreError> {
    let sql = match (&conn, is_index) {
        (BulkConn::Sqlite(_), true) => {
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = $1"
        }
        (BulkConn::Sqlite(_), false) => {
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1"
        }
        (BulkConn::Postgres(_), true) => {
            "SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname = $1"
        }
        (BulkConn::Postgres(_), false) => {
            "SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = $1"
        }
    };
    let n: i64 = with_conn!(conn, c => {
        sqlx::query_scalar(sql)
            .bind(name)
            .fetch_one(&mut *c)
            .await
            .ctx("look up a schema object")?
    });
    Ok(n > 0)
}

/// A bulk load in progress: its connection and the open transaction's state.
pub(crate) struct BulkLoader {
    conn: BulkConn,
    kind: BackendKind,
    style: Placeholders,
    /// Whether a transaction is open, and then the last rev handed out in it.
    open_rev: Option<i64>,
    batches_in_transaction: usize,
}

impl BulkLoader {
    /// Takes a connection, sets the load's session settings and prepares the store (flag,
    /// staging tables, indexes dropped: one transaction). Also resumes an interrupted load.
    pub(crate) async fn start(store: &Store, source: &str) -> Result<BulkLoader, StoreError> {
        let kind = store.kind();
        let mut conn = take_connection(store).await?;
        let settings = match kind {
            // The larger cache serves the record-id index's random inserts; index builds sort
            // in files rather than in memory. The other settings (WAL, synchronous=NORMAL)
            // stay: a crash mid-load loses at most the open transaction, never the file.
            BackendKind::Sqlite => format!(
                "PRAGMA cache_size = -{}; PRAGMA temp_store = FILE; PRAGMA threads = 2",
                bulk_cache_mib(std::env::var("VERITY_SQLITE_CACHE_MIB").ok().as_deref())
                    .saturating_mul(1024)
            ),
            // Index builds sort in memory up to this much; committing without waiting for the
            // WAL flush risks only the last commits on a server crash, which the next import
            // redoes (ids already stored are skipped).
            BackendKind::Postgres => "SET maintenance_work_mem = '1GB'; \
                 SET synchronous_commit = off; SET max_parallel_maintenance_workers = 2"
                .to_string(),
        };
        exec(&mut conn, &settings, "set up the bulk load connection").await?;
        let mut prepare_sql = String::new();
        for (name, sqlite_cols, pg_cols) in STAGING_TABLES {
            let cols = match kind {
                BackendKind::Sqlite => sqlite_cols,
                BackendKind::Postgres => pg_cols,
            };
            prepare_sql.push_str(&format!("CREATE TABLE IF NOT EXISTS {name} ({cols});\n"));
        }
        for name in BULK_DROPPED_INDEXES {
            prepare_sql.push_str(&format!("DROP INDEX IF EXISTS {name};\n"));
        }
        let flag = format!("bulk load of {source} started {}", now_seconds());
        // The flag goes in with the drops (one transaction): a store never lacks an index
        // without saying so.
        let prepared = prepare(&mut conn, kind, &flag, &prepare_sql).await;
        if let Err(e) = prepared {
            close(conn).await;
            return Err(e);
        }
        Ok(BulkLoader {
            conn,
            kind,
            style: placeholder_style(kind),
            open_rev: None,
            batches_in_transaction: 0,
        })
    }

    /// Inserts one batch (records, staged sweep keys, its digest chunk) in the open
    /// transaction, committing every [`BATCHES_PER_TRANSACTION`] batches. Returns how many
    /// records were inserted (ids already stored are skipped).
    pub(crate) async fn write_batch(&mut self, rows: &[RecordRow]) -> Result<u64, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let result = self.write_batch_inner(rows).await;
        if result.is_err() {
            self.rollback().await;
        }
        result
    }

    async fn write_batch_inner(&mut self, rows: &[RecordRow]) -> Result<u64, StoreError> {
        let kind = self.kind;
        let style = self.style;
        let base = match self.open_rev {
            Some(rev) => rev,
            None => {
                exec(
                    &mut self.conn,
                    begin_statement(kind),
                    "start a bulk transaction",
                )
                .await?;
                let rev = with_conn!(&mut self.conn, c => c.lock_rev_head().await?);
                self.open_rev = Some(rev);
                rev
            }
        };
        let inserted_revs =
            with_conn!(&mut self.conn, c => c.insert_record_rows(rows, base, style).await?);
        let inserted = inserted_revs.len() as u64;
        self.open_rev = Some(base + rows.len() as i64);
        let derived = DerivedRows::of(rows, base, inserted_revs);
        with_conn!(&mut self.conn, c => {
            for chunk in derived.citizen.chunks(VALUES_PER_QUERY) {
                let sql = format!(
                    "INSERT INTO bulk_citizen_hashes (key_hash) VALUES {}",
                    value_rows(kind, chunk.len(), 1)
                );
                let mut q = sqlx::query(&sql);
                for h in chunk {
                    q = q.bind(*h);
                }
                q.execute(&mut *c).await.ctx("stage citizen keys")?;
            }
            for chunk in derived.status.chunks(VALUES_PER_QUERY / 2) {
                let sql = format!(
                    "INSERT INTO bulk_status_hashes (key_hash, record_id) VALUES {}",
                    value_rows(kind, chunk.len(), 2)
                );
                let mut q = sqlx::query(&sql);
                for (h, id) in chunk {
                    q = q.bind(*h).bind(id.as_str());
                }
                q.execute(&mut *c).await.ctx("stage status keys")?;
            }
            let revs = derived.digests.iter().map(|d| d.rev);
            if let (Some(first), Some(last)) = (revs.clone().min(), revs.max()) {
                sqlx::query(crate::scan::INSERT_DIGEST_CHUNK)
                .bind(first)
                .bind(last)
                .bind(i64::try_from(derived.digests.len()).unwrap_or(i64::MAX))
                .bind(encode_digests(&derived.digests))
                .bind(derived.pack.as_slice())
                .execute(&mut *c)
                .await
                .ctx("store record digests")?;
            }
        });
        self.batches_in_transaction += 1;
        if self.batches_in_transaction >= BATCHES_PER_TRANSACTION {
            self.commit().await?;
        }
        Ok(inserted)
    }

    /// Commits the open transaction (whole batches only), if any.
    pub(crate) async fn commit(&mut self) -> Result<(), StoreError> {
        if let Some(rev) = self.open_rev.take() {
            self.batches_in_transaction = 0;
            with_conn!(&mut self.conn, c => c.set_rev_head(rev).await?);
            exec(&mut self.conn, "COMMIT", "commit a bulk transaction").await?;
        }
        Ok(())
    }

    async fn rollback(&mut self) {
        if self.open_rev.take().is_some() {
            self.batches_in_transaction = 0;
            let _ = exec(&mut self.conn, "ROLLBACK", "roll back a bulk transaction").await;
        }
    }

    /// Commits, then finishes the load (sweep keys into place, indexes back, flag cleared).
    pub(crate) async fn finish(mut self) -> Result<(), StoreError> {
        self.commit().await?;
        let result = complete(&mut self.conn).await;
        close(self.conn).await;
        result
    }

    /// Commits what is whole and lets go of the connection, leaving the flag set: the next
    /// import resumes the load.
    pub(crate) async fn stop(mut self) -> Result<(), StoreError> {
        let result = self.commit().await;
        close(self.conn).await;
        result
    }
}

/// In one transaction (rolled back should a statement fail): the flag, then the staging
/// tables and index drops of `sql`.
async fn prepare(
    conn: &mut BulkConn,
    kind: BackendKind,
    flag: &str,
    sql: &str,
) -> Result<(), StoreError> {
    let op = "prepare the store for a bulk load";
    exec(conn, begin_statement(kind), op).await?;
    let flagged = with_conn!(&mut *conn, c => {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(BULK_FLAG)
        .bind(flag)
        .execute(&mut *c)
        .await
        .ctx("record the bulk load flag")
        .map(|_| ())
    });
    let done = match flagged {
        Ok(()) => match exec(conn, sql, op).await {
            Ok(()) => exec(conn, "COMMIT", op).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    if done.is_err() {
        let _ = exec(conn, "ROLLBACK", "roll back").await;
    }
    done
}

/// `sql` in one transaction (rolled back should a statement fail).
async fn exec_in_transaction(
    conn: &mut BulkConn,
    kind: BackendKind,
    sql: &str,
    op: &'static str,
) -> Result<(), StoreError> {
    exec(conn, begin_statement(kind), op).await?;
    let done = match exec(conn, sql, op).await {
        Ok(()) => exec(conn, "COMMIT", op).await,
        Err(e) => Err(e),
    };
    if done.is_err() {
        let _ = exec(conn, "ROLLBACK", "roll back").await;
    }
    done
}

async fn close(conn: BulkConn) {
    use sqlx::Connection;
    match conn {
        BulkConn::Sqlite(c) => {
            let _ = c.close().await;
        }
        BulkConn::Postgres(c) => {
            let _ = c.close().await;
        }
    }
}

async fn take_connection(store: &Store) -> Result<BulkConn, StoreError> {
    Ok(match &store.pools {
        Pools::Sqlite(p) => BulkConn::Sqlite(
            p.acquire()
                .await
                .ctx("take a connection for the bulk load")?
                .detach(),
        ),
        Pools::Postgres(p) => BulkConn::Postgres(
            p.acquire()
                .await
                .ctx("take a connection for the bulk load")?
                .detach(),
        ),
    })
}

/// The loading connection's SQLite cache in MiB: [`BULK_SQLITE_CACHE_MIB`], or the
/// `VERITY_SQLITE_CACHE_MIB` setting when that is a larger whole number.
fn bulk_cache_mib(setting: Option<&str>) -> u64 {
    setting
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(BULK_SQLITE_CACHE_MIB, |m| m.max(BULK_SQLITE_CACHE_MIB))
}

/// The statement that starts a write transaction (SQLite takes the write lock at once).
fn begin_statement(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Sqlite => "BEGIN IMMEDIATE",
        BackendKind::Postgres => "BEGIN",
    }
}

/// Seconds since the Unix epoch, for the flag's text (a clock before 1970 reads as 0).
fn now_seconds() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("at unix time {secs}")
}

/// The finishing steps, each idempotent: staged sweep keys into their tables (and the
/// staging tables dropped) in one transaction, each missing index re-created, the flag
/// cleared last.
async fn complete(conn: &mut BulkConn) -> Result<(), StoreError> {
    let kind = match conn {
        BulkConn::Sqlite(_) => BackendKind::Sqlite,
        BulkConn::Postgres(_) => BackendKind::Postgres,
    };
    if object_exists(conn, false, STAGING_TABLES[0].0).await?
        || object_exists(conn, false, STAGING_TABLES[1].0).await?
    {
        let mut sql = String::new();
        for (name, sqlite_cols, pg_cols) in STAGING_TABLES {
            // A table lost to a crash between steps comes back empty: nothing to move.
            let cols = match kind {
                BackendKind::Sqlite => sqlite_cols,
                BackendKind::Postgres => pg_cols,
            };
            sql.push_str(&format!("CREATE TABLE IF NOT EXISTS {name} ({cols});\n"));
        }
        for stmt in MERGE_STATEMENTS {
            sql.push_str(stmt);
            sql.push_str(";\n");
        }
        for (name, _, _) in STAGING_TABLES {
            sql.push_str(&format!("DROP TABLE {name};\n"));
        }
        exec_in_transaction(conn, kind, &sql, "move staged sweep keys into place").await?;
    }
    for name in BULK_DROPPED_INDEXES {
        if !object_exists(conn, true, name).await? {
            let stmt = index_statement(kind, name)?;
            exec(conn, stmt, "re-create an index after a bulk load").await?;
        }
    }
    with_conn!(conn, c => {
        sqlx::query("DELETE FROM meta WHERE key = $1")
            .bind(BULK_FLAG)
            .execute(&mut *c)
            .await
            .ctx("clear the bulk load flag")?;
    });
    Ok(())
}

impl Store {
    /// Whether a bulk load was started and has not finished (the store then lacks indexes
    /// and holds part of a world): the text of the flag, if set.
    pub async fn bulk_load_pending(&self) -> Result<Option<String>, StoreError> {
        self.get_meta(BULK_FLAG).await
    }

    /// Finishes an interrupted bulk load as it stands: the staged sweep keys go into their
    /// tables, every dropped index is re-created and the flag is cleared. The store then
    /// holds the whole batches the load committed, like any interrupted import; importing the
    /// same world again completes it. Returns whether there was a load to finish.
    pub async fn finish_interrupted_bulk_load(&self) -> Result<bool, StoreError> {
        if self.bulk_load_pending().await?.is_none() {
            return Ok(false);
        }
        let mut conn = take_connection(self).await?;
        let result = complete(&mut conn).await;
        close(conn).await;
        result.map(|()| true)
    }

    /// Whether the store holds no record (then an import may bulk load).
    pub(crate) async fn has_no_records(&self) -> Result<bool, StoreError> {
        crate::backend::with_pool!(self, pool => {
            let any: Option<i64> = sqlx::query_scalar("SELECT rev FROM records LIMIT 1")
                .fetch_optional(pool)
                .await
                .ctx("check whether the store holds records")?;
            Ok(any.is_none())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dropped_index_has_one_statement_per_backend() {
        for kind in [BackendKind::Sqlite, BackendKind::Postgres] {
            for name in BULK_DROPPED_INDEXES {
                let stmt = index_statement(kind, name).expect("one statement");
                assert!(stmt.starts_with(&format!("CREATE INDEX {name} ON records ")));
                assert!(!stmt.contains(';'));
            }
            assert!(index_statement(kind, "records_nonexistent").is_err());
        }
    }

    #[test]
    fn the_bulk_cache_only_grows_with_the_setting() {
        assert_eq!(bulk_cache_mib(None), BULK_SQLITE_CACHE_MIB);
        assert_eq!(bulk_cache_mib(Some("64")), BULK_SQLITE_CACHE_MIB);
        assert_eq!(bulk_cache_mib(Some("8192")), 8192);
        assert_eq!(bulk_cache_mib(Some("lots")), BULK_SQLITE_CACHE_MIB);
    }
}

#[cfg(test)]
mod send_probe {
    use super::*;
    fn is_send<T: Send>(_: T) {}
    #[allow(dead_code)]
    async fn probe(
        store: &Store,
        mut loader: BulkLoader,
        rows: Vec<RecordRow>,
        mut conn: BulkConn,
    ) {
        is_send(BulkLoader::start(store, "x"));
        is_send(loader.write_batch(&rows));
        is_send(loader.commit());
        is_send(store.finish_interrupted_bulk_load());
        is_send(store.has_no_records());
        is_send(complete(&mut conn));
        is_send(exec(&mut conn, "x", "x"));
        is_send(object_exists(&mut conn, true, "x"));
        is_send(prepare(&mut conn, BackendKind::Sqlite, "x", "y"));
        is_send(loader.finish());
    }
}
