//! Import throughput benchmark: writes a generated world of N records (all eight systems) to a
//! scratch directory, then imports it into a fresh SQLite data dir and, when reachable, a
//! fresh PostgreSQL database, printing records/s for each.
//!
//! cargo run --release -p verity-store --example import_bench -- [N] [WORLD_DIR]
//!
//! WORLD_DIR, when given, is imported as is (for example a `verity synth` world) instead of a
//! generated one. PostgreSQL: env VERITY_TEST_PG (default postgres://postgres@127.0.0.1:5432/postgres).

#[path = "../tests/common/gen.rs"]
#[allow(dead_code)]
mod gen;

use std::path::PathBuf;
use std::time::Instant;
use verity_store::{import_world, ImportOptions, Store};

fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("verity_import_bench_{}_{name}", std::process::id()))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(200_000);
    let given_world = args.next().map(PathBuf::from);
    let batch: usize = std::env::var("BENCH_BATCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let world = match &given_world {
        Some(w) => w.clone(),
        None => {
            let w = scratch("world");
            let t = Instant::now();
            gen::write_world(&w, 42, n);
            eprintln!(
                "generated {n} records in {:.1} s",
                t.elapsed().as_secs_f64()
            );
            w
        }
    };
    let opts = ImportOptions {
        batch_size: batch,
        progress: false,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let data = scratch("sqlite");
        let store = Store::open_data_dir(&data).await?;
        let s = import_world(&store, &world, &opts).await?;
        store.close().await;
        println!(
            "sqlite:   {} records in {:.2} s = {:.0} records/s (batch {batch})",
            s.records,
            s.elapsed.as_secs_f64(),
            s.records_per_second()
        );
        let _ = std::fs::remove_dir_all(&data);

        let admin_url = std::env::var("VERITY_TEST_PG")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let db = format!("verity_bench_{}", std::process::id());
        use sqlx::Connection;
        match sqlx::PgConnection::connect(&admin_url).await {
            Err(e) => println!("postgres: SKIPPED (not reachable at {admin_url}: {e})"),
            Ok(mut c) => {
                sqlx::raw_sql(&format!("CREATE DATABASE {db}"))
                    .execute(&mut c)
                    .await?;
                let base = admin_url
                    .rsplit_once('/')
                    .map(|(b, _)| b)
                    .unwrap_or(&admin_url);
                let store = Store::open(&format!("{base}/{db}")).await?;
                let s = import_world(&store, &world, &opts).await;
                store.close().await;
                sqlx::raw_sql(&format!("DROP DATABASE {db} WITH (FORCE)"))
                    .execute(&mut c)
                    .await?;
                let s = s?;
                println!(
                    "postgres: {} records in {:.2} s = {:.0} records/s (batch {batch})",
                    s.records,
                    s.elapsed.as_secs_f64(),
                    s.records_per_second()
                );
            }
        }
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    if given_world.is_none() {
        let _ = std::fs::remove_dir_all(&world);
    }
    Ok(())
}
