//! What every handler shares.

use crate::config::ServerConfig;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;
use verity_store::Store;
use verity_workflow::AccessPolicy;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub access: Arc<AccessPolicy>,
    pub config: Arc<ServerConfig>,
    pub metrics: PrometheusHandle,
}

impl AppState {
    pub fn new(store: Store, access: AccessPolicy, config: ServerConfig) -> Self {
        AppState {
            store,
            access: Arc::new(access),
            config: Arc::new(config),
            metrics: crate::metrics_setup::handle(),
        }
    }
}
