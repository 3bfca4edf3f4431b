//! Bookings: POST /v1/bookings takes an ANSI/NIST ten-print transaction, identifies it 1:N and
//! starts the query.
//!
//! Order of work (each step durable before the next):
//! 1. parse the transaction; one that does not parse, or is not a criminal ten-print (TOT CAR)
//!    from the authenticated agency, is refused with an ERRT-like answer naming record, field
//!    and byte offset;
//! 2. store it (idempotent by ORI + TCN) and commit: from here on it cannot be lost;
//! 3. search it 1:N against the enrolled population and store the result (FIN or none);
//! 4. build an IAQ from the Type-2 biographics (name, DOB, sex, POB), in custody, with the
//!    agency's county and field office, and submit it on the LESC path, which answers the
//!    agency and the field office; the identified FIN goes with it;
//! 5. store the submission result (EBTS SRE idea: SRF `I` identified / `N` not) and answer.
//!
//! On the embedded default steps 3-5 run inline in the request. When a work queue is attached
//! ([`use_queue`]), the request ends after step 2 with 202 and the booking id, and workers
//! ([`run_worker`], any number of processes sharing a NATS JetStream consumer) do the rest;
//! the agency then reads the result from GET /v1/bookings/{id}.
//!
//! The gallery: the synthetic world has biometrics records (FIN, fingers captured) but no
//! minutiae on disk, so each enrolled FIN's prints are derived deterministically from the FIN
//! with [`verity_biometrics::synth`] (seed [`GALLERY_SEED`], impression 0). The index is built
//! on first use (or by [`start`]) in the background, with a progress log, and catches up with
//! newly imported biometrics records by their store revision.

use crate::error::AppError;
use crate::queue::{QueueError, WorkItem, WorkQueue};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::{Arc, Mutex as StdMutex, OnceLock, RwLock};
use std::time::{Duration, Instant};
use verity_biometrics::index::{GalleryIndex, SearchOptions, SearchScratch, SubjectPrints};
use verity_biometrics::synth::{self, ImpressionParams};
use verity_biometrics::{Calibration, Minutia, MinutiaType};
use verity_formats::ansi_nist::{self, Biographics, Transaction, TransactionBuilder};
use verity_formats::fmr::{self, FingerView, MinutiaKind};
use verity_formats::FormatError;
use verity_model::{AuditAction, AuditEvent, Identity, Ori, PartialDate, PersonName, Purpose};
use verity_store::bookings::{BookingRow, BookingState, NewBooking};
use verity_store::IdKind;
use verity_workflow::lesc::intake::{country_of_pob, Iaq, QueryPurpose, NCIC_POB_CSV};
use verity_workflow::{Permission, Principal};

/// World seed of the synthetic enrolment prints (the `verity bio synth` default, so a gallery
/// written by that command and this one agree).
pub const GALLERY_SEED: u64 = 0;
/// Impression number of the enrolment prints; bookings use other numbers.
pub const ENROLMENT_IMPRESSION: u64 = 0;
/// Largest booking accepted: ten rolled and four slap images fit with room to spare.
pub const MAX_BOOKING_BYTES: usize = 32 * 1024 * 1024;
/// Open-set probability from which the best candidate counts as identified (SRF `I`).
pub const HIT_PROBABILITY: f64 = 0.99;
/// Enrolments read, synthesised and indexed per step of the gallery build.
const BUILD_PAGE: u32 = 2_000;
/// How often a booking looks for newly imported enrolments.
const CATCH_UP_EVERY: Duration = Duration::from_secs(2);
/// Work item kind on the queue.
pub const WORK_KIND: &str = "booking";

/// Console pages of this area: (path, permission, handler).
pub fn staff_routes() -> Vec<(&'static str, Permission, MethodRouter<AppState>)> {
    Vec::new()
}

/// Agency API routes of this area: (path, permission, handler).
pub fn agency_routes() -> Vec<(&'static str, Permission, MethodRouter<AppState>)> {
    vec![
        (
            "/v1/bookings",
            Permission::SubmitQuery,
            // A ten-print transaction with images is far larger than any other request.
            post(submit_booking).layer(DefaultBodyLimit::max(MAX_BOOKING_BYTES)),
        ),
        (
            "/v1/bookings/{booking_id}",
            Permission::SubmitQuery,
            get(booking_status),
        ),
    ]
}

/// Navigation entries of this area: (href, label, permission).
pub const NAV: &[(&str, &str, Permission)] = &[];

// ---------------------------------------------------------------------------------------------
// Per-server runtime: the gallery and the optional work queue.

/// What the booking flow keeps per server: the gallery and, when attached, the work queue.
pub struct BookingRuntime {
    gallery: Gallery,
    queue: OnceLock<WorkQueue>,
}

impl BookingRuntime {
    /// An empty gallery and no work queue: the in-process default.
    pub(crate) fn new() -> BookingRuntime {
        BookingRuntime {
            gallery: Gallery::default(),
            queue: OnceLock::new(),
        }
    }
}

/// The booking runtime of this server.
pub fn runtime(state: &AppState) -> Arc<BookingRuntime> {
    state.bookings.clone()
}

/// Starts building the gallery in the background (server start); bookings that arrive first
/// wait for it. Returns at once.
pub fn start(state: &AppState) {
    let rt = runtime(state);
    let store = state.store.clone();
    tokio::spawn(async move {
        if let Err(e) = rt.gallery.catch_up(&store, true).await {
            tracing::error!(error = %e, "booking gallery build failed");
        }
    });
}

/// Hands bookings to workers through `queue` instead of processing them in the request.
/// Returns false when a queue was already attached.
pub fn use_queue(state: &AppState, queue: WorkQueue) -> bool {
    runtime(state).queue.set(queue).is_ok()
}

// ---------------------------------------------------------------------------------------------
// Gallery.

#[derive(Default)]
struct GalleryInner {
    index: GalleryIndex,
    fins: HashSet<String>,
}

/// The enrolled population's prints, indexed for 1:N search.
#[derive(Default)]
struct Gallery {
    inner: RwLock<GalleryInner>,
    /// Store revision read up to, and when the store was last asked; held while catching up so
    /// only one task builds.
    progress: tokio::sync::Mutex<CatchUp>,
    scratches: StdMutex<Vec<SearchScratch>>,
}

#[derive(Default)]
struct CatchUp {
    after_rev: i64,
    last_check: Option<Instant>,
}

#[derive(Debug, thiserror::Error)]
enum GalleryError {
    #[error(transparent)]
    Store(#[from] verity_store::StoreError),
    #[error("gallery index: {0}")]
    Index(#[from] verity_biometrics::IndexError),
    #[error("gallery build task stopped: {0}")]
    Task(String),
}

impl Gallery {
    /// Reads enrolments newer than the last seen revision and indexes them. Unless `force`,
    /// does nothing when the store was asked less than [`CATCH_UP_EVERY`] ago.
    async fn catch_up(&self, store: &verity_store::Store, force: bool) -> Result<(), GalleryError> {
        let mut progress = self.progress.lock().await;
        if !force
            && progress
                .last_check
                .is_some_and(|t| t.elapsed() < CATCH_UP_EVERY)
        {
            return Ok(());
        }
        let first_build = progress.last_check.is_none();
        let started = Instant::now();
        let mut added = 0usize;
        loop {
            let page = store
                .enrolments_since(progress.after_rev, BUILD_PAGE)
                .await?;
            let Some((last_rev, _)) = page.last() else {
                break;
            };
            let last_rev = *last_rev;
            let todo: Vec<(String, u8)> = {
                let inner = self.read();
                let mut seen = HashSet::new();
                page.into_iter()
                    .filter(|(_, e)| !inner.fins.contains(&e.fin) && seen.insert(e.fin.clone()))
                    .map(|(_, e)| (e.fin, e.fingers))
                    .collect()
            };
            let prints = tokio::task::spawn_blocking(move || enrolment_prints(todo))
                .await
                .map_err(|e| GalleryError::Task(e.to_string()))?;
            {
                let mut inner = self.write();
                for (fin, p) in prints {
                    if inner.fins.insert(fin.clone()) {
                        inner.index.insert(&fin, &p)?;
                        added += 1;
                    }
                }
            }
            progress.after_rev = last_rev;
            if first_build {
                tracing::info!(
                    enrolled = self.read().index.len(),
                    seconds = started.elapsed().as_secs_f32(),
                    "booking gallery: building"
                );
            }
        }
        progress.last_check = Some(Instant::now());
        if first_build || added > 0 {
            tracing::info!(
                enrolled = self.read().index.len(),
                heap_mb = self.read().index.heap_bytes() / (1024 * 1024),
                added,
                seconds = started.elapsed().as_secs_f32(),
                "booking gallery ready"
            );
        }
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, GalleryInner> {
        // Index inserts finish or fail before the guard drops; a poisoned lock still holds a
        // usable index.
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, GalleryInner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    fn len(&self) -> usize {
        self.read().index.len()
    }

    /// The best candidate: (FIN, probability) when it reaches [`HIT_PROBABILITY`], and the
    /// best probability either way.
    fn identify(&self, probe: &SubjectPrints) -> (Option<String>, Option<f64>) {
        let mut scratch = self
            .scratches
            .lock()
            .ok()
            .and_then(|mut s| s.pop())
            .unwrap_or_default();
        let options = SearchOptions {
            top: 1,
            ..SearchOptions::default()
        };
        let (fin, score) = {
            let inner = self.read();
            let found = inner
                .index
                .search(probe, &options, Calibration::builtin(), &mut scratch);
            match found.first() {
                Some(c) if c.probability >= HIT_PROBABILITY => (
                    inner.index.name(c.subject).map(str::to_string),
                    Some(c.probability),
                ),
                Some(c) => (None, Some(c.probability)),
                None => (None, None),
            }
        };
        if let Ok(mut s) = self.scratches.lock() {
            s.push(scratch);
        }
        (fin, score)
    }
}

/// Synthesises the enrolment prints of FINs (fingers 1..=n captured), on all cores.
fn enrolment_prints(todo: Vec<(String, u8)>) -> Vec<(String, SubjectPrints)> {
    let threads = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
        .clamp(1, 8);
    let chunk = todo.len().div_ceil(threads).max(1);
    let rolled = ImpressionParams::rolled();
    std::thread::scope(|scope| {
        let handles: Vec<_> = todo
            .chunks(chunk)
            .map(|part| {
                let rolled = &rolled;
                scope.spawn(move || {
                    part.iter()
                        .map(|(fin, fingers)| (fin.clone(), enrolment(fin, *fingers, rolled)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

fn enrolment(fin: &str, fingers: u8, params: &ImpressionParams) -> SubjectPrints {
    let mut prints = synth::ten_print(GALLERY_SEED, fin, ENROLMENT_IMPRESSION, params);
    prints.truncate(usize::from(fingers.clamp(1, 10)));
    SubjectPrints { fingers: prints }
}

/// A transaction's finger views in the matcher's form (rescaled to 500 ppi).
fn probe_prints(tx: &Transaction) -> SubjectPrints {
    let (ppcm, views) = tx.finger_views();
    SubjectPrints {
        fingers: views
            .iter()
            .map(|v| {
                let minutiae = v
                    .minutiae
                    .iter()
                    .map(|m| {
                        let kind = match m.kind {
                            MinutiaKind::RidgeEnding => MinutiaType::RidgeEnding,
                            MinutiaKind::Bifurcation => MinutiaType::Bifurcation,
                            MinutiaKind::Other => MinutiaType::Other,
                        };
                        Minutia::from_degrees(
                            f32::from(m.x),
                            f32::from(m.y),
                            m.angle_degrees,
                            kind,
                            ppcm,
                        )
                    })
                    .collect();
                (v.finger_position, minutiae)
            })
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// Synthetic bookings (tests, demo and load scripts).

/// A CAR transaction from `ori` with Type-2 biographics from `identity` and ten rolled prints
/// of the synthetic person `print_fin` (impression `impression_seed`; use 1 or more for a
/// booking of an enrolled person, since 0 is the enrolment itself). A `print_fin` nobody
/// enrolled gives a non-mated booking.
pub fn synthetic_booking(
    ori: &str,
    tcn: &str,
    date_ccyymmdd: &str,
    identity: &Identity,
    print_fin: &str,
    impression_seed: u64,
) -> Vec<u8> {
    let mut builder = TransactionBuilder::car(ori, tcn, date_ccyymmdd).biographics(Biographics {
        name: Some(identity.name.clone()),
        dob: identity.dob,
        sex: identity.sex,
        pob: ncic_pob(&identity.country_of_birth),
        fbi: identity.ids.fbi_number.clone(),
        sid: identity.ids.state_id.clone(),
        date_of_arrest: PartialDate::parse_with(date_ccyymmdd, "%Y%m%d").ok(),
        ..Biographics::default()
    });
    for (finger, minutiae) in synth::ten_print(
        GALLERY_SEED,
        print_fin,
        impression_seed,
        &ImpressionParams::rolled(),
    ) {
        builder = builder.finger(finger_view(finger, &minutiae));
    }
    ansi_nist::write_transaction(&builder.build())
}

/// A booking of the enrolled person `fin`, with biographics from that person's stored
/// records; `None` when no record carries the FIN.
pub async fn booking_for_enrolled(
    store: &verity_store::Store,
    fin: &str,
    ori: &str,
    tcn: &str,
    impression_seed: u64,
) -> Result<Option<Vec<u8>>, verity_store::StoreError> {
    let records = store.records_by_identifier(IdKind::Fin, fin).await?;
    let Some(record) = records.first() else {
        return Ok(None);
    };
    let today = chrono::Utc::now().format("%Y%m%d").to_string();
    Ok(Some(synthetic_booking(
        ori,
        tcn,
        &today,
        &record.identity,
        fin,
        impression_seed,
    )))
}

fn finger_view(finger: u8, minutiae: &[Minutia]) -> FingerView {
    FingerView {
        finger_position: finger,
        view_number: 0,
        impression_type: 1,
        quality: 80,
        minutiae: minutiae
            .iter()
            .map(|m| fmr::Minutia {
                kind: match m.kind {
                    MinutiaType::RidgeEnding => MinutiaKind::RidgeEnding,
                    MinutiaType::Bifurcation => MinutiaKind::Bifurcation,
                    MinutiaType::Other => MinutiaKind::Other,
                },
                x: u16::try_from(m.x.max(0)).unwrap_or(0),
                y: u16::try_from(m.y.max(0)).unwrap_or(0),
                angle_degrees: m.degrees(),
                quality: 60,
            })
            .collect(),
        extended_data: Vec::new(),
    }
}

/// The NCIC place-of-birth code for an ISO country (U.S. births: `US`); `None` when unknown.
fn ncic_pob(iso_country: &str) -> Option<String> {
    if iso_country.is_empty() {
        return None;
    }
    if iso_country == "US" {
        return Some("US".into());
    }
    NCIC_POB_CSV
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut cols = l.split(',');
            Some((cols.next()?.trim(), cols.next()?.trim()))
        })
        .find(|(_, country)| *country == iso_country)
        .map(|(code, _)| code.to_string())
}

// ---------------------------------------------------------------------------------------------
// HTTP.

/// The submission result, after the EBTS SRE: identified or not, the FIN, the query started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingResponse {
    pub booking_id: String,
    pub ori: String,
    pub tcn: String,
    /// `received` while a worker still has it, then `done` (or `failed`).
    pub state: String,
    /// `I` identified, `N` not identified; absent until the search ran.
    pub srf: Option<String>,
    pub biometric_match: bool,
    pub fin: Option<String>,
    /// Calibrated probability that the booking and the FIN are the same person.
    pub score: Option<f64>,
    /// The IAQ started from the booking.
    pub query_id: Option<String>,
    /// Whether the query ran to an answer in the request (the IAR then goes out by the LESC
    /// path) or waits for processing.
    pub query_state: Option<String>,
    pub message: String,
    /// True when this TCN was already received: the stored booking is answered, nothing new.
    #[serde(default)]
    pub duplicate: bool,
}

/// The ERRT-like refusal: where the transaction is wrong and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingError {
    /// Always `ERRT`.
    pub tot: String,
    /// The TCN of the refused transaction, when it could be read.
    pub tcr: Option<String>,
    /// e.g. `Type-2 #1`
    pub record: Option<String>,
    /// e.g. `2.022`
    pub field: Option<String>,
    pub offset: Option<usize>,
    pub problem: String,
    /// One sentence with all of the above.
    pub message: String,
}

fn errt(
    tcr: Option<&str>,
    record: Option<String>,
    field: Option<&str>,
    offset: Option<usize>,
    problem: String,
) -> Response {
    let place = [
        record.clone(),
        field.map(|f| format!("field {f}")),
        offset.map(|o| format!("byte {o}")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(", ");
    let message = if place.is_empty() {
        format!("booking refused: {problem}")
    } else {
        format!("booking refused: {place}: {problem}")
    };
    metrics::counter!("verity_bookings_refused_total").increment(1);
    (
        StatusCode::BAD_REQUEST,
        Json(BookingError {
            tot: "ERRT".into(),
            tcr: tcr.map(str::to_string),
            record,
            field: field.map(str::to_string),
            offset,
            problem,
            message,
        }),
    )
        .into_response()
}

fn errt_from_format(e: &FormatError) -> Response {
    match e {
        FormatError::Record {
            record_type,
            record_index,
            field,
            offset,
            problem,
        } => errt(
            None,
            Some(format!("Type-{record_type} #{record_index}")),
            Some(field),
            Some(*offset),
            problem.clone(),
        ),
        FormatError::Binary {
            format,
            offset,
            field,
            problem,
        } => errt(
            None,
            Some((*format).to_string()),
            Some(field),
            Some(*offset),
            problem.clone(),
        ),
        other => errt(None, None, None, None, other.to_string()),
    }
}

/// What is wrong with a parsed transaction as a booking from `ori`, as an ERRT response.
fn check_booking(tx: &Transaction, ori: &Ori) -> Result<(), Box<Response>> {
    let tcn = Some(tx.tcn());
    let type1 = || Some("Type-1 #0".to_string());
    if tx.tot() != "CAR" {
        return Err(Box::new(errt(
            tcn,
            type1(),
            Some("1.004"),
            None,
            format!(
                "TOT '{}' is not CAR (criminal ten-print, answer required)",
                tx.tot()
            ),
        )));
    }
    if tx.ori() != ori.as_str() {
        return Err(Box::new(errt(
            tcn,
            type1(),
            Some("1.008"),
            None,
            format!("ORI '{}' is not the authenticated agency {ori}", tx.ori()),
        )));
    }
    let tcn_text = tx.tcn().trim();
    if tcn_text.is_empty() || tcn_text.len() > 64 {
        return Err(Box::new(errt(
            None,
            type1(),
            Some("1.009"),
            None,
            "TCN must have 1 to 64 characters".into(),
        )));
    }
    let b = tx.biographics();
    if b.name.as_ref().is_none_or(|n| n.family.trim().is_empty()) {
        return Err(Box::new(errt(
            tcn,
            Some("Type-2".into()),
            Some("2.018"),
            None,
            "NAM (name) is required: the immigration query needs it".into(),
        )));
    }
    let (_, views) = tx.finger_views();
    if views.iter().all(|v| v.minutiae.is_empty()) {
        return Err(Box::new(errt(
            tcn,
            Some("Type-9".into()),
            None,
            None,
            "no finger minutiae: a ten-print booking needs Type-9 minutiae records".into(),
        )));
    }
    Ok(())
}

/// Why a stored booking could not be taken further now. It stays stored and resumes later
/// (redelivery, [`resume_unfinished`]); the agency is told so.
#[derive(Debug, thiserror::Error)]
pub enum BookingFailure {
    #[error(transparent)]
    App(#[from] AppError),
    /// A dependency (gallery, queue, worker task) is not available.
    #[error("{0}")]
    Unavailable(String),
}

impl From<verity_store::StoreError> for BookingFailure {
    fn from(e: verity_store::StoreError) -> Self {
        BookingFailure::App(AppError::Store(e))
    }
}

impl IntoResponse for BookingFailure {
    fn into_response(self) -> Response {
        match self {
            BookingFailure::App(e) => e.into_response(),
            BookingFailure::Unavailable(m) => {
                tracing::error!(problem = %m, "booking processing unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(serde_json::json!({ "error": m })),
                )
                    .into_response()
            }
        }
    }
}

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

async fn submit_booking(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: Bytes,
) -> Response {
    let Some(ori) = who.agency.clone() else {
        return AppError::BadRequest("bookings come from an agency".into()).into_response();
    };
    let tx = match ansi_nist::read_transaction(&body) {
        Ok(tx) => tx,
        Err(e) => return errt_from_format(&e),
    };
    if let Err(refusal) = check_booking(&tx, &ori) {
        return *refusal;
    }
    match accept(&state, &ori, tx.tcn().trim(), body.to_vec()).await {
        Ok((status, resp)) => (status, Json(resp)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Stores the booking (committed), then processes it inline or queues it.
async fn accept(
    state: &AppState,
    ori: &Ori,
    tcn: &str,
    transaction: Vec<u8>,
) -> Result<(StatusCode, BookingResponse), BookingFailure> {
    let new = NewBooking {
        booking_id: format!("BKG-{}", uuid::Uuid::new_v4().simple()),
        ori: ori.to_string(),
        tcn: tcn.to_string(),
        received_micros: now_micros(),
        transaction,
    };
    let (row, created) = state.store.insert_booking(&new).await?;
    metrics::counter!("verity_bookings_received_total", "duplicate" => (!created).to_string())
        .increment(1);
    let rt = runtime(state);
    let row = match (rt.queue.get(), row.state) {
        (_, BookingState::Done | BookingState::Failed) => row,
        (Some(queue), _) => {
            if created {
                queue
                    .publish(&WorkItem {
                        kind: WORK_KIND.into(),
                        id: row.booking_id.clone(),
                    })
                    .await
                    .map_err(|e| queue_failure(&e))?;
            }
            row
        }
        (None, _) => process(state, &rt, &row.booking_id).await?,
    };
    let mut resp = response_of(&row);
    resp.duplicate = !created;
    let status = match row.state {
        BookingState::Done => StatusCode::OK,
        BookingState::Failed => StatusCode::UNPROCESSABLE_ENTITY,
        BookingState::Received | BookingState::Identified => StatusCode::ACCEPTED,
    };
    Ok((status, resp))
}

fn queue_failure(e: &QueueError) -> BookingFailure {
    tracing::error!(error = %e, "booking stored but not queued; it is resumed from the store");
    BookingFailure::Unavailable(
        "the booking is stored but could not be queued for processing; it will be processed when the queue returns"
            .into(),
    )
}

async fn booking_status(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(booking_id): Path<String>,
) -> Response {
    let row = match state.store.get_booking(&booking_id).await {
        Ok(r) => r,
        Err(e) => return AppError::from(e).into_response(),
    };
    match row {
        Some(row) if who.agency.as_ref().is_some_and(|o| o.as_str() == row.ori) => {
            Json(response_of(&row)).into_response()
        }
        // Another agency's booking does not exist for this caller.
        _ => AppError::NotFound.into_response(),
    }
}

/// The answer for a stored booking: its stored result when done, else its progress.
fn response_of(row: &BookingRow) -> BookingResponse {
    if let Some(stored) = row
        .result_json
        .as_deref()
        .and_then(|j| serde_json::from_str::<BookingResponse>(j).ok())
    {
        return stored;
    }
    let identified = row.state != BookingState::Received;
    BookingResponse {
        booking_id: row.booking_id.clone(),
        ori: row.ori.clone(),
        tcn: row.tcn.clone(),
        state: row.state.code().into(),
        srf: identified.then(|| if row.fin.is_some() { "I" } else { "N" }.to_string()),
        biometric_match: row.fin.is_some(),
        fin: row.fin.clone(),
        score: row.score,
        query_id: row.query_id.clone(),
        query_state: None,
        message: match row.state {
            BookingState::Failed => format!(
                "processing failed: {}",
                row.error.as_deref().unwrap_or("no reason recorded")
            ),
            _ => "received; identification pending".into(),
        },
        duplicate: false,
    }
}

// ---------------------------------------------------------------------------------------------
// Processing (inline or by a worker).

/// Runs the rest of a stored booking: 1:N search, then the query. Safe to repeat: each step
/// only moves the booking forward, and the query is idempotent by (ORI, message id).
pub async fn process_booking(
    state: &AppState,
    booking_id: &str,
) -> Result<BookingState, BookingFailure> {
    let rt = runtime(state);
    Ok(process(state, &rt, booking_id).await?.state)
}

async fn process(
    state: &AppState,
    rt: &Arc<BookingRuntime>,
    booking_id: &str,
) -> Result<BookingRow, BookingFailure> {
    let started = Instant::now();
    let Some(mut row) = state.store.get_booking(booking_id).await? else {
        return Err(AppError::NotFound.into());
    };
    if matches!(row.state, BookingState::Done | BookingState::Failed) {
        return Ok(row);
    }
    // Stored bytes were checked at intake; a failure here means the row was altered.
    let tx = match ansi_nist::read_transaction(&row.transaction) {
        Ok(tx) => tx,
        Err(e) => {
            let problem = format!("stored transaction does not parse: {e}");
            return Ok(state
                .store
                .fail_booking(booking_id, &problem, now_micros())
                .await?);
        }
    };
    if row.state == BookingState::Received {
        if let Err(e) = rt.gallery.catch_up(&state.store, false).await {
            // Without a gallery no search can be trusted; the booking stays `received` and is
            // retried (redelivery or restart).
            tracing::error!(error = %e, booking_id, "booking gallery unavailable");
            return Err(BookingFailure::Unavailable(
                "the fingerprint gallery is unavailable; the booking is stored and will be processed"
                    .into(),
            ));
        }
        let probe = probe_prints(&tx);
        let (fin, score) = identify_blocking(rt, probe).await?;
        row = state
            .store
            .record_booking_identification(booking_id, fin.as_deref(), score, now_micros())
            .await?;
        // Who was identified from whose prints, and how sure: an auditable decision.
        state
            .store
            .append_audit(AuditEvent {
                actor: "system".into(),
                agency: Ori::parse(&row.ori).ok(),
                purpose: Purpose::CriminalJustice,
                action: AuditAction::Decision {
                    subject: format!("booking:{booking_id}"),
                    decision: match &row.fin {
                        Some(f) => format!("SRF I: FIN {f}"),
                        None => "SRF N: no biometric match".into(),
                    },
                    reason: format!(
                        "ten-print 1:N search, best same-person probability {}",
                        row.score.map_or("none".into(), |p| format!("{p:.6}"))
                    ),
                },
            })
            .await?;
    }
    if row.state == BookingState::Identified {
        let iaq = booking_iaq(state, &row, &tx).await?;
        let (query_id, query_state) = submit_query(state, iaq, row.fin.as_deref()).await?;
        let srf = if row.fin.is_some() { "I" } else { "N" };
        let resp = BookingResponse {
            booking_id: row.booking_id.clone(),
            ori: row.ori.clone(),
            tcn: row.tcn.clone(),
            state: BookingState::Done.code().into(),
            srf: Some(srf.into()),
            biometric_match: row.fin.is_some(),
            fin: row.fin.clone(),
            score: row.score,
            query_id: Some(query_id.clone()),
            query_state: Some(query_state),
            message: match &row.fin {
                Some(fin) => {
                    format!("identified as FIN {fin}; immigration query {query_id} started")
                }
                None => {
                    format!("no biometric match; biographic immigration query {query_id} started")
                }
            },
            duplicate: false,
        };
        let json = serde_json::to_string(&resp).map_err(|e| {
            BookingFailure::Unavailable(format!("booking result not serialisable: {e}"))
        })?;
        row = state
            .store
            .finish_booking(booking_id, Some(&query_id), &json, now_micros())
            .await?;
        metrics::counter!("verity_bookings_processed_total", "srf" => srf).increment(1);
        metrics::histogram!("verity_booking_processing_seconds")
            .record(started.elapsed().as_secs_f64());
    }
    Ok(row)
}

async fn identify_blocking(
    rt: &Arc<BookingRuntime>,
    probe: SubjectPrints,
) -> Result<(Option<String>, Option<f64>), BookingFailure> {
    // The search is CPU-bound (milliseconds): keep it off the async workers.
    let rt = rt.clone();
    tokio::task::spawn_blocking(move || rt.gallery.identify(&probe))
        .await
        .map_err(|e| BookingFailure::Unavailable(format!("identification task stopped: {e}")))
}

/// The IAQ a booking starts: Type-2 biographics, in custody, the agency's county.
async fn booking_iaq(
    state: &AppState,
    row: &BookingRow,
    tx: &Transaction,
) -> Result<Iaq, AppError> {
    let b = tx.biographics();
    let ori = Ori::parse(&row.ori)
        .map_err(|e| AppError::BadRequest(format!("stored booking ORI: {e}")))?;
    let agency = state.store.get_agency(&ori).await?;
    let pob_code = b.pob.clone().unwrap_or_default();
    let country_of_birth = country_of_pob(&pob_code).unwrap_or_default().to_string();
    let mut ids = verity_model::Identifiers {
        a_number: b.a_number.clone(),
        fbi_number: b.fbi.clone(),
        state_id: b.sid.clone(),
        ssn: b.ssn.clone(),
        ..Default::default()
    };
    // The biometric match is the strongest identifier there is; a FIN the agency sent in
    // 2.017 is only a claim and is kept when nothing matched.
    ids.fin = match &row.fin {
        Some(fin) => verity_model::Fin::parse(fin).ok(),
        None => b.fin.clone(),
    };
    let mut remarks = format!("Booking {} (TCN {})", row.booking_id, row.tcn);
    match (&row.fin, row.score) {
        (Some(fin), Some(p)) => remarks.push_str(&format!(
            "; ten-print identified FIN {fin} (probability {p:.6})"
        )),
        _ => remarks.push_str("; no biometric match"),
    }
    Ok(Iaq {
        message_id: booking_message_id(&row.tcn),
        ori,
        purpose: QueryPurpose::C,
        attention: "BOOKING".into(),
        phone: String::new(),
        name: b
            .name
            .clone()
            .unwrap_or_else(|| PersonName::new("", "", "")),
        dob: b.dob,
        sex: b.sex,
        pob_code,
        country_of_birth,
        in_custody: true,
        // The charge is not in the EBTS fields read here.
        offense_code: "0399".into(),
        ids,
        driver_license: String::new(),
        encounter_state: agency.as_ref().map(|a| a.state.clone()).unwrap_or_default(),
        encounter_county: agency
            .as_ref()
            .map(|a| a.county.clone())
            .unwrap_or_default(),
        citizenship_claimed: false,
        remarks,
    })
}

/// The IAQ message id of a booking: a repeat of the booking is a repeat of the query.
fn booking_message_id(tcn: &str) -> String {
    let mut id = format!("BOOKING-{tcn}");
    id.truncate(64);
    id
}

/// Submits the booking's IAQ on the LESC path (durable, processed, answered to the agency and
/// the field office by `lesc_api`); returns (query id, query state).
async fn submit_query(
    state: &AppState,
    iaq: Iaq,
    biometric_fin: Option<&str>,
) -> Result<(String, String), AppError> {
    let submitted = crate::lesc_api::submit(
        state,
        crate::lesc_api::Submission {
            iaq,
            channel: crate::lesc_api::Channel::Booking,
            raw_text: None,
            biometric_fin: biometric_fin.and_then(|f| verity_model::Fin::parse(f).ok()),
        },
    )
    .await?;
    Ok((submitted.query_id, submitted.row.state))
}

// ---------------------------------------------------------------------------------------------
// Workers.

/// What a worker did before it stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerReport {
    /// Booking ids processed to `done` or `failed`, in order.
    pub processed: Vec<String>,
}

/// Takes bookings from `queue` and processes them until `stop_after_idle` passes with no work
/// (`None`: forever). An item is acknowledged only after its booking reached `done` or
/// `failed`; otherwise it returns to the queue for another attempt.
pub async fn run_worker(
    state: &AppState,
    queue: &WorkQueue,
    stop_after_idle: Option<Duration>,
) -> Result<WorkerReport, QueueError> {
    let mut report = WorkerReport::default();
    let poll = Duration::from_millis(500);
    let mut idle_since = Instant::now();
    loop {
        match queue.next(poll).await? {
            None => {
                if stop_after_idle.is_some_and(|d| idle_since.elapsed() >= d) {
                    return Ok(report);
                }
            }
            Some(delivery) => {
                idle_since = Instant::now();
                if delivery.item.kind != WORK_KIND {
                    tracing::warn!(kind = %delivery.item.kind, "booking worker: not a booking; left for others");
                    continue;
                }
                let id = delivery.item.id.clone();
                match process_booking(state, &id).await {
                    Ok(BookingState::Done | BookingState::Failed)
                    | Err(BookingFailure::App(AppError::NotFound)) => {
                        delivery.ack().await?;
                        report.processed.push(id);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(error = %e, booking_id = %id, "booking processing failed; it will be redelivered");
                    }
                }
            }
        }
    }
}

/// Queues every booking left unfinished (after a restart), or processes them inline when no
/// queue is attached. Returns how many were handed on.
pub async fn resume_unfinished(state: &AppState) -> Result<usize, BookingFailure> {
    let rt = runtime(state);
    let open = state.store.unfinished_bookings(10_000).await?;
    for b in &open {
        match rt.queue.get() {
            Some(q) => q
                .publish(&WorkItem {
                    kind: WORK_KIND.into(),
                    id: b.booking_id.clone(),
                })
                .await
                .map_err(|e| queue_failure(&e))?,
            None => {
                process(state, &rt, &b.booking_id).await?;
            }
        }
    }
    Ok(open.len())
}

/// Enrolled subjects in this server's gallery (0 until the first build step finished).
pub fn gallery_len(state: &AppState) -> usize {
    runtime(state).gallery.len()
}

/// Heap bytes held by this server's gallery index.
pub fn gallery_heap_bytes(state: &AppState) -> usize {
    runtime(state).gallery.read().index.heap_bytes()
}

/// Builds (or catches up) this server's gallery and waits for it.
pub async fn build_gallery(state: &AppState) -> Result<usize, BookingFailure> {
    let rt = runtime(state);
    rt.gallery
        .catch_up(&state.store, true)
        .await
        .map_err(|e| BookingFailure::Unavailable(format!("gallery build: {e}")))?;
    Ok(rt.gallery.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ncic_codes_for_iso_countries() {
        assert_eq!(ncic_pob("MX").as_deref(), Some("MX"));
        assert_eq!(ncic_pob("HN").as_deref(), Some("HO"));
        assert_eq!(ncic_pob("US").as_deref(), Some("US"));
        assert_eq!(ncic_pob(""), None);
    }

    #[test]
    fn message_id_is_bounded() {
        assert_eq!(booking_message_id("T1"), "BOOKING-T1");
        assert_eq!(booking_message_id(&"X".repeat(100)).len(), 64);
    }

    #[test]
    fn a_mated_probe_is_identified_and_a_stranger_is_not() {
        let g = Gallery::default();
        {
            let mut inner = g.write();
            for i in 0..5 {
                let fin = format!("{:010}", 1_000_000_000u64 + i);
                let p = enrolment(&fin, 10, &ImpressionParams::rolled());
                inner.index.insert(&fin, &p).expect("insert");
                inner.fins.insert(fin);
            }
        }
        let identity = Identity {
            name: PersonName::new("ANA", "", "KALO"),
            ..Identity::default()
        };
        let mated = synthetic_booking("MD0030000", "T1", "20260101", &identity, "1000000003", 1);
        let tx = ansi_nist::read_transaction(&mated).expect("parses");
        let (fin, score) = g.identify(&probe_prints(&tx));
        assert_eq!(fin.as_deref(), Some("1000000003"), "score {score:?}");
        let stranger = synthetic_booking("MD0030000", "T2", "20260101", &identity, "9000000001", 1);
        let tx = ansi_nist::read_transaction(&stranger).expect("parses");
        assert_eq!(g.identify(&probe_prints(&tx)).0, None);
    }
}
