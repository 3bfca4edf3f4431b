//! One Prometheus recorder per process.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use. Tests build several servers in one process;
/// they share it.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            // Durations are exported as histograms (buckets in seconds, from a fast automatic
            // answer to a slow review), so Prometheus can aggregate them across processes.
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Suffix("_seconds".into()),
                    &[
                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 300.0,
                        1800.0, 3600.0, 14400.0, 86400.0,
                    ],
                )
                .and_then(|b| {
                    // Intake phases are fractions of an answer: finer buckets, from 0.25 ms.
                    b.set_buckets_for_metric(
                        metrics_exporter_prometheus::Matcher::Full(
                            "verity_iaq_phase_seconds".into(),
                        ),
                        &[
                            0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5,
                            1.0, 5.0,
                        ],
                    )
                })
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Fails only when another recorder is installed already; then ours just renders
            // nothing, which the /metrics test would show.
            let _ = metrics::set_global_recorder(recorder);
            metrics::describe_counter!(
                "verity_http_requests_total",
                "HTTP requests by route and status"
            );
            metrics::describe_counter!("verity_logins_total", "Console logins by outcome");
            metrics::describe_histogram!(
                "verity_iaq_phase_seconds",
                "Wall time per phase of an IAQ intake (decide, write_gate_wait, write_commit, ...)"
            );
            metrics::describe_counter!(
                "verity_iaq_slow_total",
                "IAQ intakes slower than 50 ms (each also logged with its phases)"
            );
            metrics::describe_counter!(
                "verity_access_denied_total",
                "Requests refused by the authorization layer"
            );
            handle
        })
        .clone()
}
