//! Test harness: a fresh store per test on either backend, cleaned up afterwards.
//!
//! PostgreSQL tests create database `verity_t_<pid>_<n>` through the maintenance database
//! named by `VERITY_TEST_PG` (default `postgres://postgres@127.0.0.1:5432/postgres`) and drop
//! it at the end. When PostgreSQL is unreachable they are skipped with a loud message on
//! stderr, unless `VERITY_REQUIRE_POSTGRES=1`, which turns the skip into a failure.

#![allow(dead_code)]

pub mod gen;

use sqlx::{Connection, PgConnection};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use verity_store::Store;

static COUNTER: AtomicU64 = AtomicU64::new(0);

pub fn pg_admin_url() -> String {
    std::env::var("VERITY_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A scratch directory under the system temp dir, removed on drop.
pub struct ScratchDir(pub PathBuf);

impl ScratchDir {
    pub fn new() -> Self {
        let p = std::env::temp_dir().join(unique("verity_store_test"));
        std::fs::create_dir_all(&p).expect("scratch dir");
        ScratchDir(p)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub enum Cleanup {
    Sqlite(ScratchDir),
    Postgres { db: String },
}

/// A store on a fresh database, plus the URL to open it again.
pub struct TestDb {
    pub store: Store,
    pub url: String,
    pub scratch: ScratchDir,
    cleanup: Cleanup,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = ScratchDir::new();
        let url = format!("sqlite://{}", dir.0.join("verity.db").display());
        let store = Store::open_data_dir(&dir.0)
            .await
            .expect("open sqlite store");
        TestDb {
            store,
            url,
            scratch: ScratchDir::new(),
            cleanup: Cleanup::Sqlite(dir),
        }
    }

    /// None (after a loud message) when PostgreSQL is unreachable and not required.
    pub async fn postgres() -> Option<TestDb> {
        let admin_url = pg_admin_url();
        let mut admin = match PgConnection::connect(&admin_url).await {
            Ok(c) => c,
            Err(e) => {
                let msg = format!(
                    "\n!!!!! POSTGRESQL NOT REACHABLE at {admin_url} ({e}): PostgreSQL conformance suite SKIPPED !!!!!\n\
                     !!!!! set VERITY_TEST_PG to a reachable server, or VERITY_REQUIRE_POSTGRES=1 to fail instead !!!!!\n"
                );
                if std::env::var("VERITY_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                    panic!("{msg}");
                }
                // Straight to stderr, past the test harness's output capture.
                let _ = std::io::stderr().write_all(msg.as_bytes());
                return None;
            }
        };
        let db = unique("verity_t");
        sqlx::raw_sql(&format!("CREATE DATABASE {db}"))
            .execute(&mut admin)
            .await
            .expect("create test database");
        let _ = admin.close().await;
        let url = with_database(&admin_url, &db);
        let store = Store::open(&url).await.expect("open postgres store");
        Some(TestDb {
            store,
            url,
            scratch: ScratchDir::new(),
            cleanup: Cleanup::Postgres { db },
        })
    }

    /// Closes the store; the database or directory goes when the value drops.
    pub async fn finish(self) {
        self.store.close().await;
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Cleanup::Postgres { db } = &self.cleanup {
            // Also runs when a test panics. Drop cannot await, so use a private runtime on
            // its own thread; FORCE ends connections the store still holds.
            let db = db.clone();
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async {
                    if let Ok(mut admin) = PgConnection::connect(&pg_admin_url()).await {
                        let _ =
                            sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                                .execute(&mut admin)
                                .await;
                        let _ = admin.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// `url` with its database path replaced by `db` (query string kept).
pub fn with_database(url: &str, db: &str) -> String {
    let scheme_end = url.find("://").map(|i| i + 3).unwrap_or(0);
    let (head, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    let base = match head[scheme_end..].find('/') {
        Some(slash) => &head[..scheme_end + slash],
        None => head,
    };
    format!("{base}/{db}{query}")
}

/// Declares each case twice, as `sqlite::<case>` and `postgres::<case>`; every test file of the
/// suite keeps its cases in a `cases` module.
#[allow(unused_macros)]
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let db = crate::common::TestDb::sqlite().await;
                    crate::cases::$case(&db).await;
                    db.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(db) = crate::common::TestDb::postgres().await else { return };
                    crate::cases::$case(&db).await;
                    db.finish().await;
                }
            )*
        }
    };
}
