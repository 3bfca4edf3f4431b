//! Opening a store, and the little that differs between SQLite and PostgreSQL.
//!
//! `Store` is an enum over the two sqlx pools. Operations are written once in the
//! [`with_pool!`] macro, which expands the same body for each pool type, so the SQL text and
//! the Rust code are shared while each backend keeps its native (fast) driver. The only
//! backend-specific pieces are in [`Backend`]: how a write transaction starts and how a
//! consistent read snapshot starts.

use crate::error::{DbContext, StoreError};
use crate::migrate;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Postgres, Row, Sqlite, Transaction};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub(crate) enum Pools {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Verity's durable store. Cheap to clone (the pools are shared); safe to use from many tasks.
#[derive(Clone)]
pub struct Store {
    pub(crate) pools: Pools,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.kind())
            .finish()
    }
}

/// Runs `$body` with `$pool` bound to the concrete pool of whichever backend the store uses.
/// The body is compiled once per backend, so it may only use APIs both backends share.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pools {
            $crate::backend::Pools::Sqlite($pool) => $body,
            $crate::backend::Pools::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// The backend-specific starts of transactions.
pub(crate) trait Backend {
    type Db: sqlx::Database;
    /// A transaction that holds the database's write lock from its first statement, so that
    /// read-then-write sequences (chain heads) cannot interleave or deadlock.
    async fn begin_write(&self) -> Result<Transaction<'static, Self::Db>, sqlx::Error>;
    /// A read-only transaction that sees one consistent snapshot for its whole life.
    async fn begin_snapshot(&self) -> Result<Transaction<'static, Self::Db>, sqlx::Error>;
}

impl Backend for SqlitePool {
    type Db = Sqlite;
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        // IMMEDIATE takes the write lock now (waiting up to busy_timeout), instead of failing
        // with SQLITE_BUSY when a deferred reader later tries to upgrade.
        self.begin_with("BEGIN IMMEDIATE").await
    }
    async fn begin_snapshot(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        // In WAL mode a read transaction keeps the snapshot taken by its first SELECT.
        self.begin().await
    }
}

impl Backend for PgPool {
    type Db = Postgres;
    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        // Writers serialise on the head rows they lock with UPDATE ... RETURNING.
        self.begin().await
    }
    async fn begin_snapshot(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        self.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
    }
}

/// Typed column access shared by both row types, with errors that name the column.
pub(crate) trait StoreRow {
    fn text(&self, col: &str) -> Result<String, sqlx::Error>;
    fn opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error>;
    fn int(&self, col: &str) -> Result<i64, sqlx::Error>;
    fn flag(&self, col: &str) -> Result<bool, sqlx::Error>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>, sqlx::Error>;
    fn opt_flag(&self, col: &str) -> Result<Option<bool>, sqlx::Error>;
}

macro_rules! impl_store_row {
    ($($row:ty),*) => {$(
        impl StoreRow for $row {
            fn text(&self, col: &str) -> Result<String, sqlx::Error> { self.try_get(col) }
            fn opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error> { self.try_get(col) }
            fn int(&self, col: &str) -> Result<i64, sqlx::Error> { self.try_get(col) }
            fn flag(&self, col: &str) -> Result<bool, sqlx::Error> { self.try_get(col) }
            fn opt_int(&self, col: &str) -> Result<Option<i64>, sqlx::Error> { self.try_get(col) }
            fn opt_flag(&self, col: &str) -> Result<Option<bool>, sqlx::Error> { self.try_get(col) }
        }
    )*};
}
impl_store_row!(SqliteRow, PgRow);

impl Store {
    /// Opens (creating if needed) the store at `url` and brings its schema up to date.
    ///
    /// `sqlite:///abs/path/verity.db`, `sqlite://relative.db`, `sqlite::memory:` or
    /// `postgres://user@host:port/db` (also `postgresql://`).
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let bad = |problem: &str| StoreError::BadUrl {
            url: redact(url),
            problem: problem.into(),
        };
        let pools = if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url).map_err(|e| bad(&e.to_string()))?;
            let in_memory = url.contains(":memory:") || url.contains("mode=memory");
            Pools::Sqlite(open_sqlite(opts, in_memory, url).await?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url).map_err(|e| bad(&e.to_string()))?;
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(opts)
                .await
                .map_err(|source| StoreError::Connect {
                    target: redact(url),
                    source,
                })?;
            Pools::Postgres(pool)
        } else {
            return Err(bad("expected a URL starting with sqlite: or postgres://"));
        };
        let store = Store { pools };
        migrate::run(&store).await?;
        Ok(store)
    }

    /// Opens the embedded default: `<dir>/verity.db` (SQLite, WAL), creating `dir` if needed.
    pub async fn open_data_dir(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
            path: dir.display().to_string(),
            source,
        })?;
        let path = dir.join(crate::SQLITE_FILE_NAME);
        let opts = SqliteConnectOptions::new().filename(&path);
        let pools = Pools::Sqlite(open_sqlite(opts, false, &path.display().to_string()).await?);
        let store = Store { pools };
        migrate::run(&store).await?;
        Ok(store)
    }

    pub fn kind(&self) -> BackendKind {
        match self.pools {
            Pools::Sqlite(_) => BackendKind::Sqlite,
            Pools::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// Succeeds when the database answers a trivial query (for health checks).
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query("SELECT 1").execute(pool).await.ctx("ping the database")?;
        });
        Ok(())
    }

    /// SQLite: copies what the WAL holds into the database file without waiting for readers
    /// or writers (a PASSIVE checkpoint), so commits need not. Returns (WAL frames, frames
    /// checkpointed); `None` on PostgreSQL, which has no such step.
    pub async fn checkpoint_wal(&self) -> Result<Option<(i64, i64)>, StoreError> {
        match &self.pools {
            Pools::Sqlite(pool) => {
                let (_busy, log, done): (i64, i64, i64) =
                    sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                        .fetch_one(pool)
                        .await
                        .ctx("checkpoint the WAL")?;
                Ok(Some((log, done)))
            }
            Pools::Postgres(_) => Ok(None),
        }
    }

    /// Closes all connections; later calls fail. SQLite checkpoints its WAL on close.
    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await)
    }

    /// Runs raw SQL statements. For tests and operators' repair tools only: it bypasses every
    /// rule the typed API keeps (the audit log's append-only triggers excepted).
    #[doc(hidden)]
    pub async fn execute_raw_sql(&self, sql: &str) -> Result<u64, StoreError> {
        with_pool!(self, pool => {
            let r = sqlx::raw_sql(sql).execute(pool).await.ctx("run raw SQL")?;
            Ok(r.rows_affected())
        })
    }
}

/// The page cache per SQLite connection, in MiB, unless `VERITY_SQLITE_CACHE_MIB` says
/// otherwise. 64 MiB serves the server and lead runs; a bulk import of tens of millions of
/// records into an empty store wants several GiB, or every insert into the record id and
/// identifier indexes spills and re-reads pages (`verity import` at 10M people: ~3,000
/// records/s with 64 MiB).
pub const DEFAULT_SQLITE_CACHE_MIB: u64 = 64;

fn sqlite_cache_pragma() -> String {
    cache_pragma_for(std::env::var("VERITY_SQLITE_CACHE_MIB").ok().as_deref())
}

/// The `cache_size` pragma value for a `VERITY_SQLITE_CACHE_MIB` setting: a positive whole
/// number of MiB, else the default (a bad value is logged, never fatal).
fn cache_pragma_for(setting: Option<&str>) -> String {
    let mib = match setting.map(|v| v.trim().parse::<u64>()) {
        None => DEFAULT_SQLITE_CACHE_MIB,
        Some(Ok(m)) if m > 0 => m,
        Some(_) => {
            tracing::warn!(
                value = setting.unwrap_or_default(),
                "VERITY_SQLITE_CACHE_MIB must be a positive whole number of MiB; using {DEFAULT_SQLITE_CACHE_MIB}"
            );
            DEFAULT_SQLITE_CACHE_MIB
        }
    };
    // A negative cache_size is in KiB.
    format!("-{}", mib.saturating_mul(1024))
}

async fn open_sqlite(
    opts: SqliteConnectOptions,
    in_memory: bool,
    target: &str,
) -> Result<SqlitePool, StoreError> {
    let opts = opts
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // NORMAL with WAL: a power loss may drop the last commits but never corrupts the file.
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(30))
        .foreign_keys(true)
        .pragma("temp_store", "memory")
        .pragma("cache_size", sqlite_cache_pragma())
        // Every commit resets the other connections' page caches (WAL); reading pages through
        // a memory map instead of read() makes the re-reads cheap under concurrent writes.
        .pragma("mmap_size", "1073741824")
        // A commit that finds the WAL over this many pages checkpoints it before returning,
        // fsync included: the default 1,000 pages made every second of a 200 IAQ/s load stall
        // one commit group. A server checkpoints in the background instead
        // (`Store::checkpoint_wal`), so this is only the backstop for other writers.
        .pragma("wal_autocheckpoint", "10000");
    // Each connection to ":memory:" would be its own database, so keep exactly one. (Session 7
    // tried 8 for the HTTP load at 1M: no better on 2 cores.)
    let max = if in_memory { 1 } else { 4 };
    SqlitePoolOptions::new()
        .max_connections(max)
        .min_connections(if in_memory { 1 } else { 0 })
        .idle_timeout(if in_memory {
            None
        } else {
            Some(Duration::from_secs(600))
        })
        .max_lifetime(if in_memory {
            None
        } else {
            Some(Duration::from_secs(3600))
        })
        .acquire_timeout(Duration::from_secs(60))
        .connect_with(opts)
        .await
        .map_err(|source| StoreError::Connect {
            target: target.to_string(),
            source,
        })
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}://{user}:***{}", &url[..s], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::{cache_pragma_for, redact};

    #[test]
    fn the_sqlite_cache_setting_is_mib_and_falls_back_on_bad_values() {
        assert_eq!(cache_pragma_for(None), "-65536");
        assert_eq!(cache_pragma_for(Some(" 4096 ")), "-4194304");
        for bad in ["0", "-5", "lots", ""] {
            assert_eq!(cache_pragma_for(Some(bad)), "-65536", "{bad:?}");
        }
    }

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    }
}
