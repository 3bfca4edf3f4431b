//! Lead runs end to end on a small synthetic world: precision against the truth, resumption,
//! incremental re-runs, and the same leads on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used)]

use super::*;
use sqlx::{Connection, PgConnection};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use verity_store::leads::LeadFilter;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The status sweep rows of `records`: each `person::full_name_dob_keys` key of a record
/// that `person::bears_on_status`, with that record's id; sorted, each once (`lead_status_keys`).
fn status_key_rows<'a>(
    records: impl IntoIterator<Item = &'a SourceRecord>,
) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = records
        .into_iter()
        .filter(|r| person::bears_on_status(r))
        .flat_map(|r| {
            person::full_name_dob_keys(r)
                .into_iter()
                .map(|k| (k, r.record_id.clone()))
        })
        .collect();
    rows.sort();
    rows.dedup();
    rows
}

fn scratch(prefix: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!(
        "verity_ncatc_{prefix}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// A 400-person world (written once per test process).
fn world() -> &'static Path {
    static WORLD: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    WORLD.get_or_init(|| {
        let out = scratch("world");
        verity_synth::generate_world(&verity_synth::SynthConfig {
            people: 400,
            seed: 7,
            out: out.clone(),
            progress: false,
        })
        .unwrap();
        out
    })
}

fn today() -> NaiveDate {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(world().join("manifest.json")).unwrap())
            .unwrap();
    manifest["today"]
        .as_str()
        .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .unwrap_or_else(|| NaiveDate::from_ymd_opt(2026, 11, 1).unwrap())
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn import(store: &Store) {
    let opts = verity_store::ImportOptions {
        batch_size: 1_000,
        progress: false,
    };
    verity_store::import_world(store, world(), &opts)
        .await
        .unwrap();
}

/// A fresh SQLite store in a scratch directory, holding the test world.
async fn imported(prefix: &str) -> (PathBuf, Store) {
    let dir = scratch(prefix);
    let store = Store::open_data_dir(&dir).await.unwrap();
    import(&store).await;
    (dir, store)
}

/// The test options, with the person map in `dir` when `with_map`.
fn map_opts(dir: &Path, with_map: bool) -> RunOptions {
    let mut o = opts();
    if with_map {
        o.map_dir = Some(dir.join("ncatc"));
    }
    o
}

/// The leads as comparable tuples (ids are deterministic; times are not compared).
async fn lead_set(store: &Store) -> Vec<(String, String, Option<String>, String, String)> {
    let leads = store
        .list_leads(&LeadFilter {
            limit: 100_000,
            ..LeadFilter::default()
        })
        .await
        .unwrap();
    let mut out: Vec<_> = leads
        .into_iter()
        .map(|l| (l.lead_id, l.status, l.aor, l.state, l.primary_rule))
        .collect();
    out.sort();
    out
}

fn opts() -> RunOptions {
    let mut o = RunOptions::new("test", today());
    o.batch_size = 50;
    o.page_size = 300;
    o
}

async fn full_then_checks(store: &Store) -> Vec<(String, String, Option<String>, String, String)> {
    let ctx = LeadContext::load(None).unwrap();
    import(store).await;
    // Stop after two batches, then resume: the result must equal an uninterrupted run.
    let mut stopping = opts();
    // Small batches: the screen leaves few persons to evaluate in a 400-person world.
    stopping.batch_size = 10;
    stopping.stop_after_batches = Some(2);
    let err = run_leads(store, &ctx, &stopping, &|_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, RunError::Stopped { .. }), "{err}");
    let running = store.latest_lead_run("running").await.unwrap().unwrap();
    assert!(running.cursor_key.is_some());
    // The progress callback learns the run's kind before any record is read (the command
    // sets the process up for it), a resumed run's from the run it resumes.
    let started = std::sync::Mutex::new(Vec::new());
    let on_start = |p: Progress| {
        if let Progress::Started { incremental } = p {
            started.lock().unwrap().push(incremental);
        }
    };
    let resumed = run_leads(store, &ctx, &opts(), &on_start).await.unwrap();
    assert!(resumed.resumed);
    assert_eq!(resumed.kind, "full");
    assert_eq!(*started.lock().unwrap(), vec![false]);
    // Only persons a lead rule could apply to are evaluated (criminal, custody and
    // citizenship records alone give no removable status).
    assert!(resumed.stats.persons_evaluated > 0);
    assert!(resumed.stats.persons_evaluated <= resumed.stats.persons);
    let leads = lead_set(store).await;
    assert!(!leads.is_empty(), "a 400-person world yields some leads");

    // Against the truth: every lead right, none on a citizen.
    let truth = Truth::load(world()).unwrap();
    let rows = store
        .list_leads(&LeadFilter {
            limit: 100_000,
            ..LeadFilter::default()
        })
        .await
        .unwrap();
    let rep = score_leads(
        &truth,
        rows.iter().map(|l| {
            (
                l.lead_id.as_str(),
                l.status.as_str(),
                l.evidence_json.as_str(),
            )
        }),
    );
    assert_eq!(rep.on_us_citizens, 0, "{rep:?}");
    assert_eq!(rep.correct, rep.leads, "{rep:?}");

    // A re-run with no change touches nobody.
    let again = run_leads(store, &ctx, &opts(), &on_start).await.unwrap();
    assert_eq!(again.kind, "incremental");
    assert_eq!(*started.lock().unwrap(), vec![false, true]);
    assert_eq!(again.stats.persons_evaluated, 0);
    assert_eq!(lead_set(store).await, leads);

    // A U.S. passport arrives for a lead's subject (same identifiers): the lead is withdrawn
    // by an incremental run that evaluates only that person.
    let first = &rows[0];
    let evidence: serde_json::Value = serde_json::from_str(&first.evidence_json).unwrap();
    let rid = evidence["records"][0]["record_id"].as_str().unwrap();
    let mut rec = store.get_record(rid).await.unwrap().unwrap();
    rec.record_id = format!("CIT-NEW-{rid}");
    rec.body = verity_model::RecordBody::Citizenship(verity_model::record::CitizenshipRecord {
        evidence: verity_model::record::CitizenshipEvidence::UsPassport,
        document_number: "X1".into(),
        issued: None,
    });
    if rec.identity.ids.a_number.is_none()
        && rec.identity.ids.fin.is_none()
        && rec.identity.ids.fbi_number.is_none()
    {
        // No identifier to link by: the name-and-birth-date sweep must catch it instead.
        assert!(!person::name_dob_keys(&rec).is_empty() || rec.identity.dob.is_none());
    }
    store.insert_records(&[rec]).await.unwrap();
    let inc = run_leads(store, &ctx, &opts(), &|_| {}).await.unwrap();
    assert_eq!(inc.kind, "incremental");
    assert!(inc.stats.persons_evaluated >= 1);
    assert!(inc.stats.persons_evaluated < 10, "{:?}", inc.stats);
    // The run read only the changed person's records: the new record, the lead's own record
    // (its subject key) and what identifier expansion returns, each record at most once per
    // identifier it holds (at most 7). Nothing proportional to the store.
    let mut all = Vec::new();
    let mut after_rev = 0;
    loop {
        let page = store.scan_records(after_rev, 1_000).await.unwrap();
        let Some((last, _)) = page.last() else { break };
        after_rev = *last;
        all.extend(page.into_iter().map(|(_, r)| r));
    }
    let group = group_persons(&all)
        .into_iter()
        .find(|g| g.iter().any(|&i| all[i].record_id == rid))
        .unwrap();
    let bound = 2 + 7 * (group.len() as u64 + 1);
    assert!(
        inc.stats.records_read >= group.len() as u64,
        "{:?}",
        inc.stats
    );
    assert!(inc.stats.records_read <= bound, "{:?} > {bound}", inc.stats);
    assert!(
        inc.stats.records_read * 10 < all.len() as u64,
        "{:?}",
        inc.stats
    );
    let after = store.get_lead(&first.lead_id).await.unwrap().unwrap();
    assert_eq!(after.state, "withdrawn", "{after:?}");
    lead_set(store).await
}

#[test]
fn lead_runs_are_precise_resumable_and_incremental_on_sqlite() {
    rt().block_on(async {
        let dir = scratch("sqlite");
        let store = Store::open_data_dir(&dir).await.unwrap();
        full_then_checks(&store).await;
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    });
}

#[test]
fn sqlite_and_postgres_give_the_same_leads() {
    rt().block_on(async {
        let admin_url = std::env::var("VERITY_TEST_PG")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
        let Ok(mut admin) = PgConnection::connect(&admin_url).await else {
            eprintln!("!!!!! PostgreSQL not reachable at {admin_url}: cross-backend lead test SKIPPED !!!!!");
            assert_ne!(std::env::var("VERITY_REQUIRE_POSTGRES").as_deref(), Ok("1"));
            return;
        };
        let db = format!(
            "verity_ncatc_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        sqlx::raw_sql(&format!("CREATE DATABASE {db}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin_url);
        let pg = Store::open(&format!("{base}/{db}")).await.unwrap();
        let dir = scratch("sqlite_pair");
        let lite = Store::open_data_dir(&dir).await.unwrap();
        let on_pg = full_then_checks(&pg).await;
        let on_lite = full_then_checks(&lite).await;
        pg.close().await;
        lite.close().await;
        let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
            .execute(&mut admin)
            .await;
        let _ = std::fs::remove_dir_all(dir);
        assert_eq!(on_pg, on_lite);
    });
}

#[test]
fn the_scan_view_keeps_what_a_decoded_record_gives() {
    rt().block_on(async {
        let (dir, store) = imported("scan_view").await;
        let head = store.max_record_rev().await.unwrap();
        let raw = store.scan_record_json(0, head, 100_000).await.unwrap();
        assert!(raw.len() > 1_000, "{} records", raw.len());
        let (mut citizen, mut status, mut linked) = (0, 0, 0);
        for r in &raw {
            let viewed = scan::scan_raw(r).unwrap();
            let decoded = scan::scan_decoded(r.rev, &r.decode().unwrap());
            assert_eq!(viewed, decoded, "record {}", r.record_id);
            citizen += usize::from(!viewed.citizen_keys.is_empty());
            status += usize::from(!viewed.status_keys.is_empty());
            linked += usize::from(!viewed.keys.is_empty());
        }
        // The world exercises every branch.
        assert!(citizen > 0 && status > 0 && linked > 0);
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    });
}

#[test]
fn the_hashed_full_scan_groups_records_as_the_union_find_on_strings() {
    rt().block_on(async {
        let (dir, store) = imported("scan_groups").await;
        let head = store.max_record_rev().await.unwrap();
        let raw = store.scan_record_json(0, head, 100_000).await.unwrap();
        let mut full = scan::FullScan::default();
        let screen = LeadScreen::by_system(&LeadContext::load(None).unwrap());
        for r in &raw {
            full.add(&scan::scan_raw(r).unwrap(), &screen).unwrap();
        }
        let records: Vec<SourceRecord> = raw.iter().map(|r| r.decode().unwrap()).collect();
        // The reference: every group, as its person key and sorted revs.
        let mut expected: Vec<(String, Vec<i64>)> = group_persons(&records)
            .into_iter()
            .map(|g| {
                let rs: Vec<SourceRecord> = g.iter().map(|&i| records[i].clone()).collect();
                let mut revs: Vec<i64> = g.iter().map(|&i| raw[i].rev).collect();
                revs.sort();
                (person::person_key(&rs), revs)
            })
            .collect();
        expected.sort();
        let total = expected.len() as u64;
        // With every record "having an open lead", every group is kept.
        let grouped = full.group(|_| true, &screen, false);
        assert_eq!(grouped.persons_total, total);
        let mut got: Vec<(String, Vec<i64>)> = grouped
            .persons
            .into_iter()
            .map(|p| {
                let mut revs = p.revs;
                revs.sort();
                (p.key, revs)
            })
            .collect();
        got.sort();
        assert_eq!(got, expected);
        assert!(
            got.iter().any(|(_, revs)| revs.len() > 2),
            "some linking happened"
        );
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    });
}

/// Copies of every `every`th record under a new id (what `verity leads touch` does).
async fn touched_copies(store: &Store, every: usize) -> Vec<SourceRecord> {
    let head = store.max_record_rev().await.unwrap();
    let raw = store.scan_record_json(0, head, 1_000_000).await.unwrap();
    raw.iter()
        .enumerate()
        .filter(|(i, _)| (i + 1) % every == 0)
        .map(|(_, r)| {
            let mut rec = r.decode().unwrap();
            rec.record_id = format!("{}-U1", rec.record_id);
            rec
        })
        .collect()
}

/// Open leads as (person, status, AOR, rule).
type OpenLeads = Vec<(String, String, Option<String>, String)>;

/// Open leads, and the parks of one run as (person, reason).
async fn outcomes(store: &Store, run_id: &str) -> (OpenLeads, BTreeMap<String, String>) {
    let leads = store
        .list_leads(&LeadFilter {
            state: Some("open".into()),
            limit: 100_000,
            ..LeadFilter::default()
        })
        .await
        .unwrap();
    let mut open: Vec<_> = leads
        .into_iter()
        .map(|l| (l.person_key, l.status, l.aor, l.primary_rule))
        .collect();
    open.sort();
    let parks = store
        .lead_parks(run_id, 100_000)
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.person_key, p.reason))
        .collect();
    (open, parks)
}

#[test]
fn an_incremental_run_reaches_the_persons_and_outcomes_of_a_full_run() {
    rt().block_on(async {
        let ctx = LeadContext::load(None).unwrap();
        // A: a full run, then records change, then an incremental run.
        let dir_a = scratch("incr_a");
        let a = Store::open_data_dir(&dir_a).await.unwrap();
        import(&a).await;
        let full_a = run_leads(&a, &ctx, &opts(), &|_| {}).await.unwrap();
        let copies = touched_copies(&a, 9).await;
        assert!(copies.len() > 100, "{} copies", copies.len());
        a.insert_records(&copies).await.unwrap();
        let inc = run_leads(&a, &ctx, &opts(), &|_| {}).await.unwrap();
        assert_eq!(inc.kind, "incremental");
        // B: the same records, one full run.
        let dir_b = scratch("incr_b");
        let b = Store::open_data_dir(&dir_b).await.unwrap();
        import(&b).await;
        b.insert_records(&copies).await.unwrap();
        let full_b = run_leads(&b, &ctx, &opts(), &|_| {}).await.unwrap();
        assert_eq!(full_b.kind, "full");

        let (open_a, parks_a) = outcomes(&a, &inc.run_id).await;
        let (open_b, parks_b) = outcomes(&b, &full_b.run_id).await;
        assert_eq!(open_a, open_b, "open leads differ");
        assert!(!open_a.is_empty());
        // Every person the incremental run parked or sent to review, the full run did too,
        // for the same reason; the persons it evaluated are the full run's persons (same
        // keys, so the same records).
        assert!(!parks_a.is_empty());
        for (person, reason) in &parks_a {
            // A refreshed lead is parked as `open_lead` (the full run of B creates it new):
            // the open leads compared above cover it.
            if reason == "open_lead" {
                continue;
            }
            assert_eq!(parks_b.get(person), Some(reason), "{person}");
        }
        // Every person holding a changed record and worth evaluating was evaluated: as many
        // as the full run evaluates among the persons holding a copy.
        let all = all_records(&b).await;
        let copy_ids: HashSet<&str> = copies.iter().map(|r| r.record_id.as_str()).collect();
        let open_keys: HashMap<String, String> =
            a.open_lead_keys().await.unwrap().into_iter().collect();
        let expected = group_persons(&all)
            .into_iter()
            .filter(|g| {
                g.iter()
                    .any(|&i| copy_ids.contains(all[i].record_id.as_str()))
            })
            .filter(|g| {
                // The test both kinds of run apply to the persons they read whole.
                let records: Vec<SourceRecord> = g.iter().map(|&i| all[i].clone()).collect();
                worth_evaluating_records(&LeadScreen::new(&ctx), &records, &open_keys)
            })
            .count() as u64;
        assert!(
            inc.stats.persons_evaluated >= expected,
            "{:?} < {expected}",
            inc.stats
        );
        assert!(inc.stats.persons_evaluated < full_a.stats.persons_evaluated);
        a.close().await;
        b.close().await;
        let _ = std::fs::remove_dir_all(dir_a);
        let _ = std::fs::remove_dir_all(dir_b);
    });
}

#[test]
fn a_screened_incremental_run_has_the_outcomes_of_an_unscreened_one() {
    rt().block_on(async {
        let ctx = LeadContext::load(None).unwrap();
        let mut runs = Vec::new();
        for screened in [true, false] {
            let (dir, store) = imported("incr_screened").await;
            run_leads(&store, &ctx, &opts(), &|_| {}).await.unwrap();
            let copies = touched_copies(&store, 5).await;
            store.insert_records(&copies).await.unwrap();
            if screened {
                // The incremental screen reads facets with the records' links, not from the
                // digests: without any digest it turns away the same persons.
                store.clear_record_digests().await.unwrap();
            }
            let mut o = opts();
            o.screen_by_policy = screened;
            let run = run_leads(&store, &ctx, &o, &|_| {}).await.unwrap();
            assert_eq!(run.kind, "incremental");
            let (open, parks) = outcomes(&store, &run.run_id).await;
            runs.push((run.stats, open, parks));
            store.close().await;
            let _ = std::fs::remove_dir_all(dir);
        }
        let (screened, open_s, parks_s) = &runs[0];
        let (every, open_e, parks_e) = &runs[1];
        assert!(!open_s.is_empty() && !parks_s.is_empty());
        assert_eq!(open_s, open_e);
        assert_eq!(parks_s, parks_e);
        // The screen only spares evaluations that end in "no rule", and their reads.
        assert!(screened.persons_evaluated < every.persons_evaluated);
        let skipped = every.persons_evaluated - screened.persons_evaluated;
        assert_eq!(every.no_rule - screened.no_rule, skipped);
        assert!(screened.records_read < every.records_read);
        let mut a = screened.clone();
        let mut b = every.clone();
        for s in [&mut a, &mut b] {
            s.persons_evaluated = 0;
            s.no_rule = 0;
            s.records_read = 0;
        }
        assert_eq!(a, b);
    });
}

async fn all_records(store: &Store) -> Vec<SourceRecord> {
    let head = store.max_record_rev().await.unwrap();
    let raw = store.scan_record_json(0, head, 1_000_000).await.unwrap();
    raw.iter().map(|r| r.decode().unwrap()).collect()
}

/// A record holding no identifier is placed in the map by its record-id tag only when the
/// tagged slot's record is its own: a tag shared by chance places it nowhere, and a record
/// the map does not hold stays unplaced.
#[test]
fn a_record_without_identifiers_is_placed_by_its_id_only_where_the_slot_is_its_own() {
    rt().block_on(async {
        let (dir, store) = imported("place").await;
        let raw = store.scan_record_json(0, 3, 3).await.unwrap();
        assert_eq!(raw.len(), 3);
        let shared_tag = scan::map::record_id_tag(&raw[1].record_id);
        // Three groups of one record each, every slot with the same tag.
        let links = scan::map::MapLinks::new(
            &[0, 1, 2, 3],
            &[0, 1, 2],
            &[0, 1, 2],
            Vec::new(),
            |i| raw[i as usize].rev,
            |_| scan::RecordLead::from_bytes([0, 0]),
            |_| shared_tag,
        );
        let mut elsewhere = raw[0].decode().unwrap();
        elsewhere.record_id = "NOT-IN-THE-MAP".into();
        let mut unplaced: HashMap<String, SourceRecord> = [raw[1].decode().unwrap(), elsewhere]
            .into_iter()
            .map(|r| (r.record_id.clone(), r))
            .collect();
        let groups = mapped::place_by_record_id(&store, &links, &mut unplaced)
            .await
            .unwrap();
        assert_eq!(groups, vec![1]);
        assert_eq!(unplaced.keys().collect::<Vec<_>>(), vec!["NOT-IN-THE-MAP"]);
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    })
}

#[test]
fn record_heads_give_the_identifier_keys_of_whole_records() {
    rt().block_on(async {
        let (dir, store) = imported("heads").await;
        let head = store.max_record_rev().await.unwrap();
        let raw = store.scan_record_json(0, head, 1_000_000).await.unwrap();
        let revs: Vec<i64> = raw.iter().map(|r| r.rev).collect();
        let links = store.record_links_by_revs(&revs).await.unwrap();
        assert_eq!(links.len(), raw.len());
        // The facets stored in the digests, which the full run screens by.
        let mut digest_facets: HashMap<i64, LeadFacets> = HashMap::new();
        scan::for_each_digest_up_to(&store, head, |d| {
            let owned = d.to_owned_digest();
            digest_facets.insert(owned.rev, owned.facets.unwrap());
        })
        .await
        .unwrap();
        assert_eq!(digest_facets.len(), raw.len());
        let mut linked = 0;
        let mut enrollments = 0;
        let mut faceted = 0;
        for (l, r) in links.into_iter().zip(&raw) {
            let record = r.decode().unwrap();
            enrollments += usize::from(l.body_fin.is_some());
            // The facets read with the links are the digest's (the incremental screen's
            // and the full run's agree), and the decoded record's.
            assert_eq!(
                l.facets, digest_facets[&r.rev],
                "record {}",
                record.record_id
            );
            assert_eq!(
                l.facets,
                LeadFacets::of(&record),
                "record {}",
                record.record_id
            );
            faceted += usize::from(l.facets.flags != 0);
            let reached = Reached::from_links(l).unwrap();
            let mut got = reached.keys.clone();
            let mut want = person::strong_keys(&record);
            got.sort();
            want.sort();
            assert_eq!(got, want, "record {}", record.record_id);
            assert_eq!(reached.system, record.system());
            assert_eq!(reached.rev, Some(r.rev));
            linked += usize::from(!got.is_empty());
        }
        assert!(linked > 1_000);
        assert!(faceted > 100, "{faceted} records with facets");
        assert!(enrollments > 100, "{enrollments} enrollments");
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    });
}

/// A person whose fingerprint enrollment links an A-number record and a FIN record only
/// through the FIN in the enrollment's body.
fn body_fin_person() -> Vec<SourceRecord> {
    use verity_model::record::*;
    use verity_model::{ANumber, Fin, Identity, PartialDate, PersonName};
    let identity = |a: bool, fin: bool| {
        let mut i = Identity {
            name: PersonName::new("ANA", "", "LOPEZ"),
            dob: PartialDate::full(1980, 1, 2).ok(),
            country_of_birth: "MX".into(),
            ..Identity::default()
        };
        if a {
            i.ids.a_number = ANumber::parse("A012345678").ok();
        }
        if fin {
            i.ids.fin = Fin::parse("1234567890").ok();
        }
        i
    };
    let date = PartialDate::full(2020, 1, 2).unwrap();
    vec![
        SourceRecord {
            record_id: "ENF-BF-1".into(),
            identity: identity(true, false),
            body: RecordBody::Enforcement(EnforcementRecord {
                event: EnforcementEvent::RemovalOrder,
                date,
                order: Some(OrderKind::Final),
                entry: None,
                office: "BAL".into(),
                detail: String::new(),
            }),
        },
        SourceRecord {
            record_id: "BIO-BF-1".into(),
            identity: identity(true, false),
            body: RecordBody::Biometrics(BiometricsRecord {
                fin: Fin::parse("1234567890").unwrap(),
                enrolled: date,
                captured_by: verity_model::RecordSystem::Enforcement,
                fingers: 10,
            }),
        },
        SourceRecord {
            record_id: "CIT-BF-1".into(),
            identity: identity(false, true),
            body: RecordBody::Citizenship(CitizenshipRecord {
                evidence: CitizenshipEvidence::NaturalizationCertificate,
                document_number: "N1".into(),
                issued: Some(date),
            }),
        },
    ]
}

#[test]
fn identifiers_are_followed_through_an_enrollments_body_fin() {
    rt().block_on(async {
        let dir = scratch("body_fin");
        let store = Store::open_data_dir(&dir).await.unwrap();
        let records = body_fin_person();
        assert_eq!(
            group_persons(&records).len(),
            1,
            "one person by strong keys"
        );
        store.insert_records(&records).await.unwrap();
        // From the FIN-only record: the enrollment is found by its body FIN, and through its
        // A-number the enforcement record.
        let start = vec![Reached::from_record(None, records[2].clone())];
        let (reached, _, _) = follow_identifiers(&store, start).await.unwrap();
        let mut ids: Vec<&str> = reached.iter().map(|r| r.record_id.as_str()).collect();
        ids.sort();
        assert_eq!(ids, ["BIO-BF-1", "CIT-BF-1", "ENF-BF-1"]);
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    });
}

#[test]
fn the_process_cpu_clock_reads_and_does_not_go_back() {
    let first = process_cpu_seconds().expect("Linux /proc/self/stat");
    // Some work, so the clock may move.
    let mut x = 0u64;
    for i in 0..2_000_000u64 {
        x = x.wrapping_mul(31).wrapping_add(i);
    }
    assert_ne!(x, 1);
    let second = process_cpu_seconds().expect("Linux /proc/self/stat");
    assert!(first >= 0.0 && second >= first, "{first} then {second}");
}

#[test]
fn a_rev_is_in_spans_only_between_a_first_and_last() {
    let spans = [(1, 10), (11, 11), (20, 30)];
    let inside: Vec<i64> = (0..35).filter(|&r| in_spans(&spans, r)).collect();
    let want: Vec<i64> = (1..=11).chain(20..=30).collect();
    assert_eq!(inside, want);
    assert!(!in_spans(&[], 1));
}

#[test]
fn an_incremental_run_stores_the_sweep_keys_of_changed_records_without_a_digest() {
    rt().block_on(async {
        let ctx = LeadContext::load(None).unwrap();
        let (dir, store) = imported("incr_keys").await;
        run_leads(&store, &ctx, &opts(), &|_| {}).await.unwrap();
        let copies = touched_copies(&store, 7).await;
        store.insert_records(&copies).await.unwrap();
        // As if stored before migration 0008 (or by an insert stopped before its digest and
        // keys): no digest, and no sweep keys of the copies.
        store.clear_record_digests().await.unwrap();
        store
            .execute_raw_sql("DELETE FROM lead_status_hashes WHERE record_id LIKE '%-U1'")
            .await
            .unwrap();
        store
            .execute_raw_sql("DELETE FROM lead_citizen_hashes")
            .await
            .unwrap();
        let citizen: Vec<String> = copies
            .iter()
            .filter(|r| person::indicates_citizenship(r))
            .flat_map(person::name_dob_keys)
            .collect();
        let wanted = status_key_rows(&copies);
        assert!(wanted.len() > 50 && citizen.len() > 10);
        let keys: Vec<String> = wanted.iter().map(|(k, _)| k.clone()).collect();
        let holders = |rows: Vec<(String, String)>| -> HashSet<(String, String)> {
            rows.into_iter().collect()
        };
        let before = holders(store.status_key_holders(&keys).await.unwrap());
        assert!(wanted.iter().all(|row| !before.contains(row)));
        assert!(store.citizen_keys_among(&citizen).await.unwrap().is_empty());

        let inc = run_leads(&store, &ctx, &opts(), &|_| {}).await.unwrap();
        assert_eq!(inc.kind, "incremental");
        let after = holders(store.status_key_holders(&keys).await.unwrap());
        for row in &wanted {
            assert!(after.contains(row), "{row:?}");
        }
        assert_eq!(
            store.citizen_keys_among(&citizen).await.unwrap().len(),
            citizen.iter().collect::<HashSet<_>>().len()
        );
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    });
}

#[test]
fn a_changed_record_with_a_digest_but_no_row_is_reported_corrupt_not_skipped() {
    rt().block_on(async {
        let ctx = LeadContext::load(None).unwrap();
        // Both ways a run reads records from digests: an incremental run with the person map,
        // and a full run (with the last run's candidates, which lack the new records). (The
        // store path finds changes in the records table itself, so rows that are gone are
        // no change to it.)
        for mode in ["map", "full"] {
            let (dir, store) = imported("digest_without_row").await;
            let mut o = map_opts(&dir, true);
            run_leads(&store, &ctx, &o, &|_| {}).await.unwrap();
            let copies = touched_copies(&store, 7).await;
            store.insert_records(&copies).await.unwrap();
            // The copies' digests stay while their packs and rows go, as a store damaged
            // outside Verity could be: a person holding one cannot be evaluated whole.
            store
                .execute_raw_sql("UPDATE record_digests SET records_packed = NULL")
                .await
                .unwrap();
            store
                .execute_raw_sql("DELETE FROM records WHERE record_id LIKE '%-U1'")
                .await
                .unwrap();
            o.force_full = mode == "full";
            match run_leads(&store, &ctx, &o, &|_| {}).await {
                Err(RunError::Store(StoreError::Corrupt { problem, .. })) => {
                    assert!(problem.contains("not stored"), "{mode}: {problem}")
                }
                other => panic!("{mode}: {other:?}"),
            }
            store.close().await;
            let _ = std::fs::remove_dir_all(dir);
        }
    });
}

/// Imports the test world in small batches (several digest chunks).
async fn import_in_batches(store: &Store, batch_size: usize) {
    let opts = verity_store::ImportOptions {
        batch_size,
        progress: false,
    };
    verity_store::import_world(store, world(), &opts)
        .await
        .unwrap();
}

/// A run's parks as comparable tuples.
async fn park_set(store: &Store, run_id: &str) -> Vec<(String, String, String, String)> {
    let mut out: Vec<_> = store
        .lead_parks(run_id, 100_000)
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.person_key, p.rules, p.reason, p.detail))
        .collect();
    out.sort();
    out
}

#[test]
fn full_runs_from_digests_and_from_record_json_agree() {
    rt().block_on(async {
        let ctx = LeadContext::load(None).unwrap();
        // Every record's digest, as the insert stored it, is the digest of the decoded record.
        let dir = scratch("digests");
        let digested = Store::open_data_dir(&dir).await.unwrap();
        import_in_batches(&digested, 250).await;
        let head = digested.max_record_rev().await.unwrap();
        let total = digested.count_records().await.unwrap();
        let chunks = digested.record_digest_chunks(0, head, 1_000).await.unwrap();
        assert!(chunks.len() > 3, "{} chunks", chunks.len());
        let mut stored = Vec::new();
        scan::for_each_digest_up_to(&digested, head, |d| stored.push(d.to_owned_digest()))
            .await
            .unwrap();
        let mut expected = Vec::new();
        let mut after_rev = 0;
        loop {
            let page = digested.scan_records(after_rev, 1_000).await.unwrap();
            let Some((last, _)) = page.last() else { break };
            after_rev = *last;
            for (rev, r) in &page {
                expected.push(verity_store::scan::RecordDigest::of(*rev, r));
            }
        }
        assert_eq!(stored.len() as u64, total);
        assert_eq!(stored, expected);

        let with_digests = run_leads(&digested, &ctx, &opts(), &|_| {}).await.unwrap();
        // No record's JSON was read to link persons: only the evaluated persons' records.
        assert!(
            with_digests.stats.records_read < total,
            "{:?}",
            with_digests.stats
        );

        // The same world with some digests missing (the first chunk, one in the middle, the
        // last: records stored before migration 0008 or by an interrupted insert), and with
        // none: the run reads those records' JSON and gives the same persons and outcomes.
        // And with the digests but without record packs (chunks written before schema
        // version 9): the run packs each chunk from its records' JSON and reads the persons
        // from the packs, with the same outcomes.
        for missing in ["some", "all", "packs"] {
            let dir2 = scratch("no_digests");
            let store = Store::open_data_dir(&dir2).await.unwrap();
            import_in_batches(&store, 250).await;
            let chunks = store.record_digest_chunks(0, head, 1_000).await.unwrap();
            assert!(chunks.iter().all(|c| c.pack.is_some()), "{missing}");
            let (gone, json_records): (Vec<i64>, i64) = if missing == "packs" {
                store
                    .execute_raw_sql("UPDATE record_digests SET records_packed = NULL")
                    .await
                    .unwrap();
                (Vec::new(), 0)
            } else if missing == "all" {
                store.clear_record_digests().await.unwrap();
                (Vec::new(), total as i64)
            } else {
                let picked = [0, chunks.len() / 2, chunks.len() - 1];
                let gone: Vec<i64> = picked.iter().map(|&i| chunks[i].first_rev).collect();
                let n = picked.iter().map(|&i| chunks[i].records).sum();
                (gone, n)
            };
            for first in &gone {
                store
                    .execute_raw_sql(&format!(
                        "DELETE FROM record_digests WHERE first_rev = {first}"
                    ))
                    .await
                    .unwrap();
            }
            let from_json = run_leads(&store, &ctx, &opts(), &|_| {}).await.unwrap();
            assert_eq!(
                from_json.stats.records_read,
                with_digests.stats.records_read + json_records as u64,
                "{missing}: {:?}",
                from_json.stats
            );
            let mut a = from_json.stats.clone();
            let mut b = with_digests.stats.clone();
            a.records_read = 0;
            b.records_read = 0;
            assert_eq!(a, b, "{missing}");
            assert_eq!(
                lead_set(&store).await,
                lead_set(&digested).await,
                "{missing}"
            );
            assert_eq!(
                park_set(&store, &from_json.run_id).await,
                park_set(&digested, &with_digests.run_id).await,
                "{missing}"
            );
            // That run stored the missing digests: the next full run reads no JSON to link.
            let mut count = 0u64;
            scan::for_each_digest_up_to(&store, head, |_| count += 1)
                .await
                .unwrap();
            assert_eq!(count, total, "{missing}");
            // And every chunk has its pack again, holding exactly its records as stored.
            let mut packed = Vec::new();
            for c in store.record_digest_chunks(0, head, 1_000).await.unwrap() {
                let pack = c
                    .pack
                    .as_deref()
                    .unwrap_or_else(|| panic!("{missing}: no pack"));
                verity_store::scan::for_each_packed_record(c.first_rev, pack, |rev, id, json| {
                    assert!(c.first_rev <= rev && rev <= c.last_rev, "{missing}");
                    packed.push((rev, id.to_string(), json.to_string()));
                })
                .unwrap();
            }
            let stored: Vec<(i64, String, String)> = store
                .scan_record_json(0, head, u32::MAX)
                .await
                .unwrap()
                .into_iter()
                .map(|r| (r.rev, r.record_id, r.json))
                .collect();
            assert_eq!(packed, stored, "{missing}");
            let mut force = opts();
            force.force_full = true;
            let again = run_leads(&store, &ctx, &force, &|_| {}).await.unwrap();
            assert_eq!(again.kind, "full");
            assert!(again.stats.records_read < total, "{:?}", again.stats);
            store.close().await;
            let _ = std::fs::remove_dir_all(dir2);
        }
        digested.close().await;
        let _ = std::fs::remove_dir_all(dir);
    });
}

/// Every record of a store, decoded, grouped into persons as a run links them.
async fn all_persons(store: &Store) -> Vec<Vec<SourceRecord>> {
    let records = all_records(store).await;
    group_persons(&records)
        .into_iter()
        .map(|g| {
            let mut rs: Vec<SourceRecord> = g.iter().map(|&i| records[i].clone()).collect();
            rs.sort_by(|a, b| a.record_id.cmp(&b.record_id));
            rs
        })
        .collect()
}

#[test]
fn the_screen_turns_away_only_persons_no_rule_applies_to() {
    rt().block_on(async {
        let ctx = LeadContext::load(None).unwrap();
        let screen = LeadScreen::new(&ctx);
        assert!(screen.reads_rules(), "the embedded rules are read");
        let (dir, store) = imported("screen").await;
        let persons = all_persons(&store).await;
        let (mut kept, mut by_system, mut applied) = (0, 0, 0);
        // Any day, and whatever the sweeps and the store say of the person.
        let days = [
            today(),
            today() - chrono::Days::new(5 * 365),
            today() + chrono::Days::new(5 * 365),
        ];
        let contexts = [
            PersonContext::default(),
            PersonContext {
                citizen_key_match: true,
                ..PersonContext::default()
            },
            PersonContext {
                unlinked_status_record: true,
                ongoing: Ongoing {
                    active_detainer: true,
                    open_lead: true,
                    open_citizenship_claim: false,
                },
                ..PersonContext::default()
            },
        ];
        for records in &persons {
            let could = screen.could_lead_records(records);
            kept += usize::from(could);
            by_system += usize::from(records.iter().any(may_lead));
            // The screen implies the system test.
            assert!(!could || records.iter().any(may_lead));
            for day in days {
                // Every fact the screen reads from facets has a record with those facets.
                let facets = records
                    .iter()
                    .fold(0u8, |f, r| f | verity_store::scan::LeadFacets::of(r).flags);
                for fact in verity_policy::derive_facts(records, day).keys() {
                    let bits = scan::witness_bits_of(*fact);
                    assert_eq!(
                        facets & bits,
                        bits,
                        "{fact} of {} on {day}",
                        person::person_key(records)
                    );
                }
                for pc in &contexts {
                    let r = evaluate_person(&ctx, records, pc, day);
                    if r.outcome != LeadOutcome::None {
                        applied += 1;
                        assert!(
                            could,
                            "{} turned away, but evaluates to {:?} on {day}",
                            r.person_key, r.outcome
                        );
                    }
                }
            }
        }
        // The world exercises the screen: rules apply to some, and it turns many away that
        // the system test would have evaluated.
        assert!(applied > 0);
        assert!(kept * 2 < by_system, "{kept} of {by_system}");
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    });
}

#[test]
fn a_screened_full_run_has_the_outcomes_of_evaluating_every_may_lead_person() {
    rt().block_on(async {
        let ctx = LeadContext::load(None).unwrap();
        let mut runs = Vec::new();
        for screened in [true, false] {
            let (dir, store) = imported("screened").await;
            let mut o = opts();
            o.screen_by_policy = screened;
            let run = run_leads(&store, &ctx, &o, &|_| {}).await.unwrap();
            let leads = lead_set(&store).await;
            let parks = park_set(&store, &run.run_id).await;
            runs.push((run.stats, leads, parks));
            store.close().await;
            let _ = std::fs::remove_dir_all(dir);
        }
        let (screened, leads_s, parks_s) = &runs[0];
        let (every, leads_e, parks_e) = &runs[1];
        assert!(!leads_s.is_empty() && !parks_s.is_empty());
        assert_eq!(leads_s, leads_e);
        assert_eq!(parks_s, parks_e);
        // Only fewer persons are evaluated, each of the others to "no rule".
        assert!(screened.persons_evaluated < every.persons_evaluated);
        let skipped = every.persons_evaluated - screened.persons_evaluated;
        assert_eq!(every.no_rule - screened.no_rule, skipped);
        let mut a = screened.clone();
        let mut b = every.clone();
        for s in [&mut a, &mut b] {
            s.persons_evaluated = 0;
            s.no_rule = 0;
            s.records_read = 0;
        }
        assert_eq!(a, b);
        assert!(screened.records_read < every.records_read);
    });
}

/// Changes that exercise every way a person map is used: copies of records (new records
/// joining their persons), copies holding a second person's A-number (merging two persons),
/// a new person of two records joined by a new A-number, and U.S.-born records with an open
/// lead subject's name and birth date and no identifier (new citizenship evidence the changes
/// bear on, linked to no one).
async fn map_changes(store: &Store, round: &str) -> Vec<SourceRecord> {
    let mut out: Vec<SourceRecord> = touched_copies(store, 7)
        .await
        .into_iter()
        .map(|mut r| {
            r.record_id = r.record_id.replace("-U1", &format!("-{round}"));
            r
        })
        .collect();
    let with_a: Vec<SourceRecord> = out
        .iter()
        .filter(|r| r.identity.ids.a_number.is_some())
        .cloned()
        .collect();
    for (i, pair) in with_a.chunks(2).take(15).enumerate() {
        if let [a, b] = pair {
            let mut merged = a.clone();
            merged.record_id = format!("MERGE-{round}-{i}");
            merged.identity.ids.a_number = b.identity.ids.a_number.clone();
            out.push(merged);
        }
    }
    // A person new since the map: two records a lead rule could apply to, joined only by an
    // A-number no earlier record holds (one per round).
    let fresh_a = |round: &str| {
        verity_model::ANumber::parse(&format!(
            "A0999{:05}",
            round.bytes().map(u32::from).sum::<u32>()
        ))
        .ok()
    };
    let fresh = fresh_a(round);
    assert!(fresh.is_some());
    let screen = LeadScreen::new(&LeadContext::load(None).unwrap());
    let may_lead: Vec<&SourceRecord> = with_a
        .iter()
        .filter(|r| screen.could_lead_records(std::slice::from_ref(*r)))
        .collect();
    assert!(may_lead.len() >= 2);
    // Citizenship evidence added to a person of the map in the first round; the second round
    // touches that person again, and the evidence must be found among the records since the
    // map (it is linked through the person's map group).
    match round {
        "R1" => {
            let mut c = may_lead[0].clone();
            c.record_id = "CIT-R1".into();
            c.identity.country_of_birth = "US".into();
            out.push(c);
        }
        "R2" => {
            let evidence = store.get_records(&["CIT-R1".to_string()]).await.unwrap();
            assert_eq!(evidence.len(), 1);
            let mut c = evidence[0].clone();
            c.record_id = format!("CIT-TOUCH-{round}");
            c.identity.country_of_birth = "MX".into();
            out.push(c);
        }
        _ => {}
    }
    // A record a lead rule could apply to, added in the first round to a person of the map
    // none of whose records could lead; the second round touches that person with another
    // record that cannot lead: it is evaluated only if its first-round record, linked through
    // its map group, is found among the records since the map.
    match round {
        "R1" => {
            let all = all_records(store).await;
            let unleadable = group_persons(&all).into_iter().find_map(|g| {
                let records: Vec<&SourceRecord> = g.iter().map(|&i| &all[i]).collect();
                let none_leads = records.iter().all(|r| !scan::may_lead(r));
                let linked = records.iter().find(|r| !person::strong_keys(r).is_empty());
                linked
                    .filter(|_| none_leads)
                    .map(|r| r.identity.ids.clone())
            });
            assert!(unleadable.is_some());
            let mut c = may_lead[1].clone();
            c.record_id = "ORDER-R1".into();
            c.identity.ids = unleadable.unwrap_or_default();
            out.push(c);
        }
        "R2" => {
            let order = store.get_records(&["ORDER-R1".to_string()]).await.unwrap();
            let template = all_records(store)
                .await
                .into_iter()
                .find(|r| !scan::may_lead(r));
            if let (Some(order), Some(mut c)) = (order.first(), template) {
                c.record_id = format!("ORDER-TOUCH-{round}");
                c.identity.ids = order.identity.ids.clone();
                out.push(c);
            } else {
                panic!("the first round's record or a template is missing");
            }
        }
        _ => {}
    }
    if round == "R2" {
        // And a record that cannot lead alone (criminal) joining the first round's: its
        // person is evaluated only if the screen has the first round's records' values.
        let criminal = all_records(store)
            .await
            .into_iter()
            .find(|r| !scan::may_lead(r))
            .map(|mut c| {
                c.record_id = "JOIN-R2".into();
                c.identity.ids = Default::default();
                c.identity.ids.a_number = fresh_a("R1");
                c
            });
        assert!(criminal.is_some());
        out.extend(criminal);
    }
    for (i, r) in may_lead.into_iter().rev().take(2).enumerate() {
        let mut c = r.clone();
        c.record_id = format!("FRESH-{round}-{i}");
        c.identity.ids = Default::default();
        c.identity.ids.a_number = fresh.clone();
        out.push(c);
    }
    let subjects: Vec<String> = store
        .open_lead_keys()
        .await
        .unwrap()
        .into_iter()
        .filter_map(|(k, _)| k.strip_prefix("NP-").map(str::to_string))
        .take(1)
        .collect();
    for (i, r) in store
        .get_records(&subjects)
        .await
        .unwrap()
        .into_iter()
        .enumerate()
    {
        let mut c = r.clone();
        c.record_id = format!("USB-{round}-{i}");
        c.identity.country_of_birth = "US".into();
        c.identity.ids = Default::default();
        out.push(c);
    }
    // Two persons without an open lead shadowed in the first round, after the map: the second
    // round touches them (below), and its sweep finds the shadows among the records since the
    // map.
    if round == "R1" {
        let shadowed = shadows_of(store, false, "SHADOW-R1-").await;
        assert_eq!(shadowed.len(), 2);
        out.extend(shadowed);
    }
    // A new version of each shadowed person's records (see `shadows`): evaluated again, the
    // status record outside them is found in the map's sweep index (or, for those shadowed in
    // the first round, among the records since the map).
    let all = all_records(store).await;
    for (i, r) in all
        .iter()
        .filter(|r| r.record_id.starts_with("SHADOW-"))
        .enumerate()
    {
        let Some(original) = all.iter().find(|o| {
            ["SHADOW-", "SHADOW-R1-"]
                .iter()
                .any(|p| format!("{p}{}", o.record_id) == r.record_id)
        }) else {
            continue;
        };
        let mut c = original.clone();
        c.record_id = format!("TOUCH-{round}-{i}");
        out.push(c);
    }
    out
}

/// For two persons with an open lead: a copy of one of their status-bearing records without
/// identifiers (so linked to no one): an unlinked record with their full name and birth date,
/// which parks their lead once a full run has it in its sweep index.
async fn shadows(store: &Store) -> Vec<SourceRecord> {
    shadows_of(store, true, "SHADOW-").await
}

/// [`shadows`] of two persons with an open lead (`with_open`) or of two without one that a
/// lead rule could apply to, their ids starting with `prefix`.
async fn shadows_of(store: &Store, with_open: bool, prefix: &str) -> Vec<SourceRecord> {
    let screen = LeadScreen::new(&LeadContext::load(None).unwrap());
    let all = all_records(store).await;
    let open: HashSet<String> = store
        .open_lead_keys()
        .await
        .unwrap()
        .into_iter()
        .filter_map(|(k, _)| k.strip_prefix("NP-").map(str::to_string))
        .collect();
    group_persons(&all)
        .into_iter()
        .filter(|g| {
            let has_open = g.iter().any(|&i| open.contains(&all[i].record_id));
            let records: Vec<SourceRecord> = g.iter().map(|&i| all[i].clone()).collect();
            has_open == with_open && (with_open || screen.could_lead_records(&records))
        })
        .enumerate()
        .filter_map(|(n, g)| {
            let own = g
                .iter()
                .map(|&i| &all[i])
                .find(|r| r.identity.dob.is_some())?;
            // The first person's shadow copies one of its own status-bearing records (the
            // key is then held by two groups); the second's is another person's record under
            // its name (held by the shadow's group alone).
            let source = if n % 2 == 0 {
                g.iter()
                    .map(|&i| &all[i])
                    .find(|r| person::bears_on_status(r))?
            } else {
                all.iter()
                    .enumerate()
                    .find(|(i, r)| !g.contains(i) && person::bears_on_status(r))?
                    .1
            };
            let mut c = source.clone();
            c.record_id = format!("{prefix}{}", own.record_id);
            c.identity.name = own.identity.name.clone();
            c.identity.dob = own.identity.dob;
            c.identity.ids = Default::default();
            Some(c)
        })
        .take(2)
        .collect()
}

#[test]
fn an_incremental_run_with_the_person_map_has_the_outcomes_of_one_without() {
    rt().block_on(async {
        let ctx = LeadContext::load(None).unwrap();
        let mut results = Vec::new();
        // "map, no digests": the changes' digest chunks are dropped, so the run reads them
        // as JSON (an insert that stopped before storing its chunk).
        for mode in [
            "store",
            "map",
            "map, no digests",
            "kept records damaged",
            "damaged map",
            "damaged status index",
            "damaged candidates",
        ] {
            let (dir, store) = imported("incr_map").await;
            let o = map_opts(&dir, mode != "store");
            run_leads(&store, &ctx, &o, &|_| {}).await.unwrap();
            let shadowed = shadows(&store).await;
            assert_eq!(shadowed.len(), 2);
            store.insert_records(&shadowed).await.unwrap();
            let mut full_again = o.clone();
            full_again.force_full = true;
            let full = run_leads(&store, &ctx, &full_again, &|_| {}).await.unwrap();
            assert!(
                full.stats.parked.contains_key("unlinked_status_record"),
                "{:?}",
                full.stats
            );
            match mode {
                "store" => assert_eq!(full.stats.person_map, None),
                _ => {
                    let note = full.stats.person_map.clone().unwrap_or_default();
                    assert!(note.starts_with("written"), "{note}");
                }
            }
            if mode.starts_with("damaged") {
                let file = match mode {
                    "damaged candidates" => scan::map::CANDIDATES_FILE,
                    _ => scan::map::MAP_FILE,
                };
                let path = dir.join("ncatc").join(file);
                let mut bytes = std::fs::read(&path).unwrap();
                match mode {
                    // The last block checksum of the status index: under the file's checksum.
                    "damaged map" => {
                        let at = bytes.len() - 9;
                        bytes[at] ^= 0x40;
                    }
                    // Every block of the status index, which the file's checksum leaves to
                    // the look-ups: each one fails, and the store answers them all.
                    "damaged status index" => {
                        let map = scan::map::read_map(&dir.join("ncatc")).unwrap().unwrap();
                        let region = map.sweep.status_region().unwrap();
                        drop(map);
                        for at in region.step_by(scan::map::SUMMED_BLOCK) {
                            bytes[at] ^= 0x40;
                        }
                    }
                    _ => {
                        let mid = bytes.len() / 2;
                        bytes[mid] ^= 0x40;
                    }
                }
                std::fs::write(&path, bytes).unwrap();
            }
            let mut per_round = Vec::new();
            // Two rounds: the second reads the records added after the map's head twice over
            // (once as earlier, once as changed).
            for round in ["R1", "R2"] {
                let changes = map_changes(&store, round).await;
                let before = store.max_record_rev().await.unwrap();
                store.insert_records(&changes).await.unwrap();
                if mode == "map, no digests" {
                    let head = store.max_record_rev().await.unwrap();
                    let spans = store.digest_spans(before, head).await.unwrap();
                    assert!(!spans.is_empty());
                    for (first, _) in spans {
                        store.delete_record_digest_chunk(first).await.unwrap();
                    }
                }
                // The records since the map the first round kept, damaged: not used.
                if mode == "kept records damaged" && round == "R2" {
                    let kept: Vec<_> = std::fs::read_dir(dir.join("ncatc"))
                        .unwrap()
                        .map(|e| e.unwrap().path())
                        .filter(|p| p.to_string_lossy().contains("map-overlay-"))
                        .collect();
                    assert_eq!(kept.len(), 1, "{kept:?}");
                    let mut bytes = std::fs::read(&kept[0]).unwrap();
                    let mid = bytes.len() / 2;
                    bytes[mid] ^= 0x40;
                    std::fs::write(&kept[0], bytes).unwrap();
                }
                let inc = run_leads(&store, &ctx, &o, &|_| {}).await.unwrap();
                assert_eq!(inc.kind, "incremental");
                let note = inc.stats.person_map.clone();
                // The second round with a map takes the records since it from the first
                // round's (the first starts at the map's head: there are none), and every
                // round keeps its own for the next.
                if mode != "store" && !mode.starts_with("damaged map") {
                    let text = note.clone().unwrap_or_default();
                    let kept_from_last = text
                        .split(" records since it kept by the last run")
                        .next()
                        .and_then(|t| t.rsplit(' ').next())
                        .and_then(|k| k.parse::<usize>().ok());
                    match (round, mode) {
                        ("R1", _) | (_, "kept records damaged") => {
                            assert_eq!(kept_from_last, Some(0), "{mode} {round}: {text}")
                        }
                        _ => assert!(
                            kept_from_last.is_some_and(|k| k > 0),
                            "{mode} {round}: {text}"
                        ),
                    }
                    assert!(
                        text.contains("records since the map for the next run"),
                        "{text}"
                    );
                    // The changes are a sixth of this small world's records: the run says a
                    // full run is due.
                    assert!(
                        text.contains("a full run, `verity leads run --full`"),
                        "{text}"
                    );
                }
                match mode {
                    "store" => assert_eq!(note, None),
                    "map" | "map, no digests" | "damaged status index" | "kept records damaged" => {
                        assert!(
                            note.as_deref().is_some_and(
                                |n| n.starts_with("used") && n.contains("with its candidates")
                            ),
                            "{note:?}"
                        )
                    }
                    "damaged candidates" => assert!(
                        note.as_deref().is_some_and(|n| n.starts_with("used")
                            && n.contains("candidates not used")
                            && n.contains("checksum")),
                        "{note:?}"
                    ),
                    _ => assert!(
                        note.as_deref().is_some_and(|n| n.contains("checksum")),
                        "{note:?}"
                    ),
                }
                if mode == "map" {
                    assert_kept_records_are_the_records_since_the_map(&store, &dir, &ctx).await;
                }
                let (open, parks) = outcomes(&store, &inc.run_id).await;
                let mut stats = inc.stats.clone();
                stats.person_map = None;
                stats.records_read = 0;
                per_round.push((stats, open, parks));
            }
            results.push(per_round);
            store.close().await;
            let _ = std::fs::remove_dir_all(dir);
        }
        let store_path = &results[0];
        for (s, open, parks) in store_path {
            assert!(
                s.persons_evaluated > 0 && !parks.is_empty(),
                "{s:?}, {} open, {} parks",
                open.len(),
                parks.len()
            );
        }
        // The new evidence withdraws the open leads it bears on (all of them by round 2).
        assert!(store_path[0].0.leads_withdrawn > 0);
        assert!(
            store_path[0].0.citizenship_reviews > 0,
            "the changes include citizenship evidence"
        );
        for (i, other) in results.iter().enumerate().skip(1) {
            for (round, (a, b)) in store_path.iter().zip(other).enumerate() {
                assert_eq!(a.0, b.0, "mode {i}, round {round}: stats differ");
                assert_eq!(a.1, b.1, "mode {i}, round {round}: open leads differ");
                assert_eq!(a.2, b.2, "mode {i}, round {round}: parks differ");
            }
        }
    });
}

/// The records since the map an incremental run kept for the next (the last of them partly
/// from the run before it) are every record since the map, as reading and linking them again
/// gives them.
async fn assert_kept_records_are_the_records_since_the_map(
    store: &Store,
    dir: &Path,
    ctx: &LeadContext,
) {
    use scan::map::overlay::{read_overlay, MapStamp};
    let map_dir = dir.join("ncatc");
    let map = scan::map::read_map(&map_dir).unwrap().unwrap();
    let stamp = MapStamp {
        head_rev: map.head_rev,
        checksum: map.checksum,
    };
    let head = store.max_record_rev().await.unwrap();
    let kept = read_overlay(&map_dir, stamp, head).unwrap().unwrap();
    let raw = store
        .scan_record_json(map.head_rev, head, 1_000_000)
        .await
        .unwrap();
    assert!(!raw.is_empty());
    assert_eq!(kept.len(), raw.len());
    let screen = LeadScreen::new(ctx);
    for (i, r) in raw.iter().enumerate() {
        let record = r.decode().unwrap();
        let digest = RecordDigest::of(r.rev, &record);
        assert_eq!(kept.links.revs[i], r.rev);
        assert_eq!(kept.keys.id(i), record.record_id);
        assert_eq!(kept.keys.citizen.get(i), digest.citizen_keys.as_slice());
        assert_eq!(kept.keys.status.get(i), digest.status_keys.as_slice());
        assert_eq!(
            kept.links.leads[i],
            screen.decoded(&record),
            "{}",
            record.record_id
        );
        let mut groups: Vec<u32> = Vec::new();
        let mut new_identifiers: Vec<u128> = Vec::new();
        for &h in &digest.identifiers {
            match map.links.group_of_identifier(h) {
                Some(g) if !groups.contains(&g) => groups.push(g),
                Some(_) => {}
                None => new_identifiers.push(h),
            }
        }
        assert_eq!(kept.links.groups.get(i), groups.as_slice());
        assert_eq!(
            kept.links.new_identifiers.get(i),
            new_identifiers.as_slice()
        );
    }
}

/// A full run after a full run reads the records its predecessor evaluated from that run's
/// candidates file, not from the digest chunks' packs: the outcome is that of a run without
/// the file, whatever state the file is in.
#[test]
fn a_full_run_reading_the_last_candidates_has_the_outcomes_of_one_without() {
    rt().block_on(async {
        let ctx = LeadContext::load(None).unwrap();
        let mut results = Vec::new();
        let mut reads = Vec::new();
        for mode in [
            "store",
            "candidates",
            "damaged candidates",
            "other policy",
            "unreadable record",
        ] {
            let (dir, store) = imported("full_cand").await;
            let mut o = map_opts(&dir, mode != "store");
            o.force_full = true;
            run_leads(&store, &ctx, &o, &|_| {}).await.unwrap();
            let candidates = dir.join("ncatc").join(scan::map::CANDIDATES_FILE);
            match mode {
                "damaged candidates" => {
                    let mut bytes = std::fs::read(&candidates).unwrap();
                    let mid = bytes.len() / 2;
                    bytes[mid] ^= 0x40;
                    std::fs::write(&candidates, bytes).unwrap();
                }
                "unreadable record" => {
                    scan::map::rewrite_candidates_with_a_bad_record(&dir.join("ncatc")).unwrap()
                }
                "other policy" => {
                    // Written for another store or policy: its key differs.
                    let c = scan::map::read_candidates(&dir.join("ncatc"))
                        .unwrap()
                        .unwrap();
                    scan::map::write_candidates(
                        &dir.join("ncatc"),
                        c.head_rev,
                        "another|key",
                        Vec::new(),
                    )
                    .unwrap();
                }
                _ => {}
            }
            // New records after the file's head: in chunks whose packs the run reads.
            let changes = map_changes(&store, "F1").await;
            store.insert_records(&changes).await.unwrap();
            let full = run_leads(&store, &ctx, &o, &|_| {}).await.unwrap();
            assert_eq!(full.kind, "full");
            let note = full.stats.person_map.clone().unwrap_or_default();
            match mode {
                "store" => assert_eq!(full.stats.person_map, None),
                "candidates" => {
                    // "N of M records to evaluate from the last candidates", N > 0.
                    let used: u64 = note
                        .split("; ")
                        .find(|p| p.contains("from the last candidates"))
                        .and_then(|p| p.split(' ').next())
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0);
                    assert!(used > 0, "{note}");
                }
                "damaged candidates" => assert!(
                    note.contains("last candidates not used") && note.contains("checksum"),
                    "{note}"
                ),
                "unreadable record" => assert!(
                    note.contains("from the last candidates")
                        && note.contains("last candidates partly unreadable"),
                    "{note}"
                ),
                _ => assert!(note.contains("not used: another store"), "{note}"),
            }
            let (open, parks) = outcomes(&store, &full.run_id).await;
            reads.push(full.stats.records_read);
            let mut stats = full.stats.clone();
            stats.person_map = None;
            stats.records_read = 0;
            results.push((stats, open, parks));
            store.close().await;
            let _ = std::fs::remove_dir_all(dir);
        }
        // Records taken from the candidates are not counted as read from the store; without
        // usable candidates, every record evaluated is.
        assert!(reads[1] < reads[0], "{reads:?}");
        assert!(reads[1] < reads[4] && reads[4] < reads[0], "{reads:?}");
        assert_eq!(reads[2], reads[0]);
        assert_eq!(reads[3], reads[0]);
        let (stats, open, parks) = &results[0];
        assert!(stats.persons_evaluated > 0 && !open.is_empty() && !parks.is_empty());
        for (i, other) in results.iter().enumerate().skip(1) {
            assert_eq!(stats, &other.0, "mode {i}: stats differ");
            assert_eq!(open, &other.1, "mode {i}: open leads differ");
            assert_eq!(parks, &other.2, "mode {i}: parks differ");
        }
    });
}

#[test]
fn the_map_sweep_finds_status_records_outside_the_person_and_defers_what_it_cannot_tell() {
    let records = body_fin_person();
    let r = &records[..1];
    let status: Vec<u64> = person::full_name_dob_keys(&r[0])
        .iter()
        .map(|k| scan::key_hash(k))
        .collect();
    let citizen: Vec<u64> = person::name_dob_keys(&r[0])
        .iter()
        .map(|k| scan::key_hash(k))
        .collect();
    assert!(!status.is_empty() && !citizen.is_empty());
    let sweep = |holder: u32, new_holder: Option<&str>, citizen_key: Option<u64>| {
        let index = scan::SweepIndex::for_tests(
            citizen_key.into_iter().collect(),
            vec![(status[0], holder)],
        );
        // A record added since the map holding no status key, then the holder, if any.
        let mut ids: scan::map::overlay::Ragged<u8> = Default::default();
        let mut keys: scan::map::overlay::Ragged<u64> = Default::default();
        ids.push(b"SOME-OTHER-RECORD");
        keys.push(&[]);
        if let Some(id) = new_holder {
            ids.push(id.as_bytes());
            keys.push(&[status[0]]);
        }
        mapped::MapSweep::new(index, Default::default(), ids, &keys)
    };
    let matches = |sweep: mapped::MapSweep, groups: &[u32]| {
        (sweep.citizen_match(r), sweep.status_outside(r, groups))
    };
    // Held by group 5 alone: outside a person not made of group 5.
    assert_eq!(matches(sweep(5, None, None), &[5]), (false, Some(false)));
    assert_eq!(matches(sweep(5, None, None), &[3]), (false, Some(true)));
    assert_eq!(matches(sweep(5, None, None), &[]), (false, Some(true)));
    // Held by several groups: outside a person of one group; unknown for one of several.
    let many = scan::HELD_BY_MANY;
    assert_eq!(matches(sweep(many, None, None), &[3]), (false, Some(true)));
    assert_eq!(matches(sweep(many, None, None), &[3, 5]), (false, None));
    // Held by a record added since the map: outside unless it is the person's own.
    let own = r[0].record_id.as_str();
    assert_eq!(
        matches(sweep(5, Some(own), None), &[5]),
        (false, Some(false))
    );
    assert_eq!(
        matches(sweep(5, Some("OTHER-1"), None), &[5]),
        (false, Some(true))
    );
    // A citizenship key in the map's index.
    assert_eq!(
        matches(sweep(5, None, Some(citizen[0])), &[5]),
        (true, Some(false))
    );
}

#[test]
fn open_leads_are_borne_on_by_what_their_sweeps_would_match() {
    use verity_model::PartialDate;
    use verity_store::scan::{full_name_dob_key_hashes_from, name_dob_key_hashes_from};
    let date = |year, month, day| {
        Some(PartialDate {
            year,
            month: Some(month),
            day: Some(day),
        })
    };
    let rows: Vec<(String, String, String)> = [
        ("L1", "P1", "F|ROSA|19900102"),
        ("L1", "P1", "G|ANA|19900102"),
        ("L2", "P2", "F|DIAZ|19800506"),
        ("L2", "P2", "G|LUIS|19800506"),
        // The same family name and date, another given name (initial): no sweep key shared.
        ("L3", "P3", "F|DIAZ|19800506"),
        ("L3", "P3", "G|MARIA|19800506"),
        // The birth year one off: the status keys' two-year buckets meet.
        ("L4", "P4", "F|DIAZ|19810506"),
        ("L4", "P4", "G|LUIS|19810506"),
        // Another day.
        ("L5", "P5", "F|DIAZ|19800507"),
        ("L5", "P5", "G|LUIS|19800507"),
        // An alias's given name with the main family name.
        ("L6", "P6", "F|DIAZ|19800605"),
        ("L6", "P6", "G|LUISA|19800605"),
        ("L6", "P6", "G|LUIS|19800605"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    let leads = |citizen: &[u64], status: &[u64]| -> Vec<String> {
        open_leads_bearing(
            rows.clone(),
            citizen.iter().copied(),
            status.iter().copied(),
        )
        .into_iter()
        .map(|(l, _)| l)
        .collect()
    };
    // A U.S. passport for Ana Rosa, and an executed removal of Luis Diaz (born 6 May 1980,
    // which also reads as 5 June).
    let citizen = name_dob_key_hashes_from([("Rosa", "Ana")].into_iter(), date(1990, 1, 2));
    let status = full_name_dob_key_hashes_from([("Diaz", "Luis")].into_iter(), date(1980, 5, 6));
    assert_eq!(leads(&citizen, &[]), ["L1"]);
    assert_eq!(leads(&[], &status), ["L2", "L4", "L6"]);
    // Citizenship keys do not meet status keys, nor the reverse.
    assert!(leads(&status, &citizen).is_empty());
}

#[test]
fn a_name_a_lead_s_subject_gains_later_still_finds_the_lead() {
    rt().block_on(async {
        let dir = scratch("alias-keys");
        let store = Store::open_data_dir(&dir).await.unwrap();
        let ctx = LeadContext::load(None).unwrap();
        import(&store).await;
        run_leads(&store, &ctx, &opts(), &|_| {}).await.unwrap();
        // An open lead whose subject record has a full birth date (name keys need one).
        let mut found = None;
        for (person_key, lead_id) in store.open_lead_keys().await.unwrap() {
            let Some(id) = person_key.strip_prefix("NP-") else {
                continue;
            };
            let Some(r) = store.get_record(id).await.unwrap() else {
                continue;
            };
            if let Some(dob) = r
                .identity
                .dob
                .filter(|d| d.month.is_some() && d.day.is_some())
            {
                found = Some((lead_id, id.to_string(), r, dob));
                break;
            }
        }
        let (lead_id, subject_id, subject, dob) =
            found.expect("a lead on a subject with a birth date");
        // A new version of the subject's record (same identifiers, so the same person) under an
        // alias no record had: the lead is refreshed and its subject keys gain the alias.
        let alias = verity_model::PersonName {
            given: "Qopmnv".into(),
            family: "Zyxwvu".into(),
            ..verity_model::PersonName::default()
        };
        let mut with_alias = subject.clone();
        with_alias.record_id = format!("{subject_id}-ALIAS");
        with_alias.identity.aliases.push(alias.clone());
        store.insert_records(&[with_alias]).await.unwrap();
        let refreshed = run_leads(&store, &ctx, &opts(), &|_| {}).await.unwrap();
        assert!(
            refreshed.stats.leads_refreshed >= 1,
            "{:?}",
            refreshed.stats
        );
        let keys = store.open_lead_subject_keys().await.unwrap();
        assert!(
            keys.iter()
                .any(|(l, _, k)| *l == lead_id && k.starts_with("F|ZYXWVU|")),
            "the refreshed lead holds its subject's new name"
        );
        // U.S. citizenship evidence under the alias alone, linked by no identifier: the lead's
        // subject is evaluated again and the lead goes to citizenship review.
        let mut passport = subject.clone();
        passport.record_id = "CIT-ALIAS-1".into();
        passport.identity.name = alias;
        passport.identity.aliases.clear();
        passport.identity.dob = Some(dob);
        passport.identity.ids = verity_model::Identifiers::default();
        passport.body =
            verity_model::RecordBody::Citizenship(verity_model::record::CitizenshipRecord {
                evidence: verity_model::record::CitizenshipEvidence::UsPassport,
                document_number: "X9".into(),
                issued: None,
            });
        store.insert_records(&[passport]).await.unwrap();
        let after = run_leads(&store, &ctx, &opts(), &|_| {}).await.unwrap();
        assert!(after.stats.leads_withdrawn >= 1, "{:?}", after.stats);
        let lead = store.get_lead(&lead_id).await.unwrap().unwrap();
        assert_eq!(lead.state, "withdrawn", "{lead:?}");
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    });
}

/// A detainer holds a person by its key, or by one of its records' ids when it was opened from
/// a LESC answer (`S-` and the id); a key that merely ends in the id does not.
#[test]
fn active_detainers_hold_by_person_key_or_lesc_subject() {
    let records = body_fin_person();
    let keys: BTreeSet<String> = ["NP-7", "S-BIO-BF-1", "XS-ENF-BF-1"]
        .into_iter()
        .map(String::from)
        .collect();
    let detainers = ActiveDetainers::new(&keys);
    assert!(detainers.on("NP-7", &[]));
    assert!(
        detainers.on("NP-8", &records),
        "S-BIO-BF-1 is one of the records"
    );
    assert!(
        !detainers.on("NP-8", &records[2..]),
        "CIT-BF-1 has no detainer"
    );
    assert!(
        !detainers.on("NP-8", &records[..1]),
        "XS- is not a LESC subject key"
    );
    let none = BTreeSet::new();
    assert!(!ActiveDetainers::new(&none).on("NP-7", &records));
}
