//! One Prometheus recorder per process.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use. Tests build several servers in one process;
/// they share it.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only when another recorder is installed already; then ours just renders
            // nothing, which the /metrics test would show.
            let _ = metrics::set_global_recorder(recorder);
            metrics::describe_counter!(
                "verity_http_requests_total",
                "HTTP requests by route and status"
            );
            metrics::describe_counter!("verity_logins_total", "Console logins by outcome");
            metrics::describe_counter!(
                "verity_access_denied_total",
                "Requests refused by the authorization layer"
            );
            handle
        })
        .clone()
}
