//! Booking throughput over HTTP on loopback: POST /v1/bookings end to end (parse, durable
//! store, 1:N search, IAQ stored) against a synthetic enrolled gallery.
//!
//! `cargo run --release -p verity-server --example load_bookings -- [ENROLLED] [BOOKINGS] [CONNECTIONS]`
//! (defaults 10000, 1000, 4). Half of the bookings are of enrolled people (a new impression of
//! their fingers), half of people never enrolled. Prints the gallery build time, bookings per
//! second, latency percentiles and how many were identified correctly. Data is written to a
//! temporary directory and removed afterwards. Synthetic people only.

// A benchmark driver: a failed step ends the run with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use verity_model::record::{BiometricsRecord, RecordBody};
use verity_model::{
    Fin, Identifiers, Identity, Ori, PartialDate, PersonName, RecordSystem, Sex, SourceRecord,
};
use verity_server::bookings::{
    build_gallery, gallery_heap_bytes, synthetic_booking, BookingResponse,
};
use verity_server::{router, AppState, ServerConfig};
use verity_store::{Agency, Store};
use verity_workflow::credentials::token_digest;
use verity_workflow::AccessPolicy;

const ORI: &str = "MD0030000";
const KEY: &str = "load-test-key";

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn fin_of(i: usize) -> String {
    format!("{}", 5_000_000_000u64 + i as u64)
}

fn identity(i: usize) -> Identity {
    let syl = [
        "KA", "LO", "MEN", "RI", "SO", "TA", "VE", "NU", "DAR", "EL", "MI", "ZO",
    ];
    let w = |k: usize| syl[k % syl.len()];
    Identity {
        name: PersonName::new(
            &format!("{}{}", w(i), w(i / 12 + 3)),
            "",
            &format!("{}{}{}", w(i / 7), w(i / 144 + 1), w(i + 5)),
        ),
        dob: PartialDate::full(
            1950 + (i % 50) as u16,
            1 + (i % 12) as u8,
            1 + (i % 28) as u8,
        )
        .ok(),
        sex: Some(if i.is_multiple_of(2) {
            Sex::Male
        } else {
            Sex::Female
        }),
        country_of_birth: "MX".into(),
        ids: Identifiers {
            fin: Fin::parse(&fin_of(i)).ok(),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn record(i: usize) -> SourceRecord {
    let fin = Fin::parse(&fin_of(i)).expect("valid FIN");
    SourceRecord {
        record_id: format!("BIO-{i:08}"),
        identity: identity(i),
        body: RecordBody::Biometrics(BiometricsRecord {
            fin,
            enrolled: PartialDate::full(2015, 1, 1).expect("date"),
            captured_by: RecordSystem::Enforcement,
            fingers: 10,
        }),
    }
}

/// One keep-alive HTTP/1.1 connection; returns (status, body) per request.
async fn post(conn: &mut TcpStream, auth: &str, body: &[u8], buf: &mut Vec<u8>) -> (u16, Vec<u8>) {
    let head = format!(
        "POST /v1/bookings HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.expect("send head");
    conn.write_all(body).await.expect("send body");
    buf.clear();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        let n = conn.read(&mut chunk).await.expect("read");
        assert!(n > 0, "server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let status: u16 = head[9..12].parse().expect("status");
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .expect("content-length");
    while buf.len() < header_end + length {
        let n = conn.read(&mut chunk).await.expect("read");
        assert!(n > 0, "server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
    (status, buf[header_end..header_end + length].to_vec())
}

#[tokio::main]
async fn main() {
    let enrolled = arg(1, 10_000);
    let bookings = arg(2, 1_000);
    let connections = arg(3, 4).max(1);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open_data_dir(dir.path()).await.expect("store");
    store
        .upsert_agency(&Agency {
            ori: Ori::parse(ORI).expect("ori"),
            name: "Load test sheriff".into(),
            kind: "sheriff".into(),
            state: "MD".into(),
            county: "TEST COUNTY".into(),
            field_office: "BAL".into(),
            api_key_hash: Some(token_digest(KEY)),
            active: true,
        })
        .await
        .expect("agency");
    let records: Vec<SourceRecord> = (0..enrolled).map(record).collect();
    for chunk in records.chunks(5_000) {
        store.insert_records(chunk).await.expect("records");
    }
    let state = AppState::new(
        store,
        AccessPolicy::embedded().expect("policy"),
        ServerConfig::default(),
    );
    let t = Instant::now();
    let n = build_gallery(&state).await.expect("gallery");
    let build = t.elapsed();
    let heap = gallery_heap_bytes(&state);
    eprintln!(
        "gallery: {n} enrolled, built in {:.1} s, {} index bytes per enrolled subject",
        build.as_secs_f64(),
        heap / n.max(1)
    );

    // Bookings prepared before the clock starts: even = enrolled person, odd = stranger.
    let today = chrono::Utc::now().format("%Y%m%d").to_string();
    let prepared: Vec<(Vec<u8>, Option<String>)> = (0..bookings)
        .map(|k| {
            let tcn = format!("LOAD-{k:07}");
            if k.is_multiple_of(2) {
                let i = (k * 7919) % enrolled.max(1);
                (
                    synthetic_booking(ORI, &tcn, &today, &identity(i), &fin_of(i), 1 + k as u64),
                    Some(fin_of(i)),
                )
            } else {
                let stranger = 9_000_000_000u64 + k as u64;
                (
                    synthetic_booking(
                        ORI,
                        &tcn,
                        &today,
                        &identity(k + 1_000_000),
                        &stranger.to_string(),
                        1,
                    ),
                    None,
                )
            }
        })
        .collect();
    let bytes: usize = prepared.iter().map(|(b, _)| b.len()).sum();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, router(state)).await.expect("serve");
    });
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{ORI}:{KEY}"));
    let prepared = std::sync::Arc::new(prepared);
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (prepared, next, auth) = (prepared.clone(), next.clone(), auth.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = TcpStream::connect(addr).await.expect("connect");
            conn.set_nodelay(true).expect("nodelay");
            let mut buf = Vec::new();
            let mut out: Vec<(Duration, bool, u16)> = Vec::new();
            loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((body, mate)) = prepared.get(k) else {
                    return out;
                };
                let t = Instant::now();
                let (status, resp) = post(&mut conn, &auth, body, &mut buf).await;
                let correct = serde_json::from_slice::<BookingResponse>(&resp)
                    .map(|r| r.fin == *mate && r.query_id.is_some())
                    .unwrap_or(false);
                out.push((t.elapsed(), correct, status));
            }
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.extend(t.await.expect("client task"));
    }
    let wall = started.elapsed();
    let mut lat: Vec<Duration> = results.iter().map(|r| r.0).collect();
    lat.sort();
    let pct =
        |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1e3;
    let ok = results.iter().filter(|r| r.2 == 200).count();
    let correct = results.iter().filter(|r| r.1).count();
    println!(
        "enrolled={n} bookings={} connections={connections} mean_booking_bytes={} wall={:.2}s \
         bookings_per_s={:.1} p50_ms={:.1} p99_ms={:.1} max_ms={:.1} http_200={ok} correct_srf_and_fin={correct} gallery_build_s={:.1}",
        results.len(),
        bytes / bookings.max(1),
        wall.as_secs_f64(),
        results.len() as f64 / wall.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        pct(1.0),
        build.as_secs_f64()
    );
}
