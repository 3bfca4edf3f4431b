//! What every handler shares.

use crate::config::ServerConfig;
use crate::lesc_api::LescRuntime;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;
use verity_store::Store;
use verity_workflow::lesc::engine::Engine;
use verity_workflow::lesc::snapshot::RecordSnapshot;
use verity_workflow::AccessPolicy;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub access: Arc<AccessPolicy>,
    pub config: Arc<ServerConfig>,
    pub metrics: PrometheusHandle,
    /// The LESC engine, policies and tables (see `lesc_api`).
    pub lesc: Arc<LescRuntime>,
    /// The booking gallery and optional work queue (see `bookings`).
    pub bookings: Arc<crate::bookings::BookingRuntime>,
}

impl AppState {
    /// A state whose LESC engine knows no records yet; [`AppState::with_engine`] gives it one.
    pub fn new(store: Store, access: AccessPolicy, config: ServerConfig) -> Self {
        let lesc = LescRuntime::embedded()
            // The embedded tables are compiled in and validated by their own unit tests and
            // by `verity up` before the state is built.
            .expect("embedded LESC rules, policy and reference tables are valid");
        AppState {
            store,
            access: Arc::new(access),
            config: Arc::new(config),
            metrics: crate::metrics_setup::handle(),
            lesc: Arc::new(lesc),
            bookings: Arc::new(crate::bookings::BookingRuntime::new()),
        }
    }

    /// The same state answering with `engine` (built from the store at start).
    pub fn with_engine(mut self, engine: Engine) -> Result<Self, String> {
        self.lesc = Arc::new(LescRuntime::new(engine)?);
        Ok(self)
    }

    /// The same state answering with `engine` and reading records from `snapshot` (both
    /// built from the same records at start), and from the store for records stored since.
    pub fn with_engine_and_snapshot(
        mut self,
        engine: Engine,
        snapshot: RecordSnapshot,
    ) -> Result<Self, String> {
        self.lesc = Arc::new(LescRuntime::new(engine)?.with_snapshot(snapshot));
        Ok(self)
    }

    /// Starts the LESC background work: the recovery of queries left `received` (now and
    /// whenever woken) and the monitor (queue gauges, SLA breaches, hit escalation).
    pub fn start_lesc(&self) {
        crate::lesc_api::start_background(self);
    }

    /// Processes every query still `received`; returns how many. (Also run by `start_lesc`.)
    pub async fn recover_lesc(&self) -> Result<usize, crate::error::AppError> {
        crate::lesc_api::recover(self).await
    }

    /// One pass of the LESC monitor (gauges, hit escalation), for tests and tools.
    pub async fn lesc_monitor_once(&self) -> Result<(), crate::error::AppError> {
        crate::lesc_api::monitor_once(self).await
    }

    /// Submits a JSON IAQ body as agency `ori`, as POST /v1/iaq does (demo and load tools).
    /// Returns (query id, state) or the problems in words.
    pub async fn submit_iaq_json(
        &self,
        ori: &verity_model::Ori,
        body: &[u8],
    ) -> Result<(String, String), String> {
        crate::lesc_api::submit_json(self, ori, body).await
    }
}
