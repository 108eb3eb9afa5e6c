//! Metrics: the Prometheus recorder behind `GET /metrics`, installed once per process, and the
//! description of every metric legate records.
//!
//! The `metrics` macros (`counter!`, `histogram!`, `gauge!`) are called where things happen (audit,
//! token extraction, JWKS fetches, policy reloads, issuing); this module only installs the recorder
//! they report to and renders it. A process has one global recorder, but tests run several apps in
//! one process, so [`install`] runs once (a `OnceLock`) and every app gets a clone of the same
//! [`PrometheusHandle`].

use std::{sync::OnceLock, time::Duration};

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Buckets of `legate_decision_duration_seconds`: a Cedar decision takes microseconds.
const DECISION_BUCKETS: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1,
];

/// Buckets of every other histogram (HTTP requests): sub-millisecond to the request timeout.
const REQUEST_BUCKETS: &[f64] = &[
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often histogram samples are folded into their buckets when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (first call only) and returns a handle to render
/// it. `None` when another recorder was installed first (an embedding program's): `/metrics` then
/// answers 503 and the macros report to that recorder.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(REQUEST_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("legate_decision_duration_seconds".into()),
                        DECISION_BUCKETS,
                    )
                });
            let handle = match builder.map(PrometheusBuilder::install_recorder) {
                Ok(Ok(handle)) => handle,
                Ok(Err(e)) | Err(e) => {
                    tracing::warn!(error = %e, "cannot install the Prometheus recorder; /metrics is off");
                    return None;
                }
            };
            describe();
            register();
            metrics::gauge!("legate_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            spawn_upkeep(handle.clone());
            Some(handle)
        })
        .clone()
}

/// Histogram samples wait in the recorder until a scrape or an upkeep folds them into buckets; a
/// plain thread does the upkeep so it runs whatever runtime (or none) installed the recorder.
fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("legate-metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(UPKEEP_EVERY);
            handle.run_upkeep();
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the metrics upkeep thread; scrapes still fold samples");
    }
}

/// Registers every family at start-up, at zero, so a fresh process shows all of them (a dashboard
/// or alert on a family that has not happened yet sees 0, not "no data"). Families with a small
/// closed set of labels get each series; the others one unlabelled zero series.
fn register() {
    for result in ["ok", "unchanged", "error"] {
        metrics::counter!("legate_policy_reloads_total", "result" => result).absolute(0);
    }
    for result in ["ok", "error"] {
        metrics::counter!("legate_jwks_fetches_total", "result" => result).absolute(0);
    }
    for grant in ["refresh_token", "token_exchange"] {
        metrics::counter!("legate_tokens_issued_total", "grant" => grant).absolute(0);
    }
    for result in ["revoked", "ignored"] {
        metrics::counter!("legate_token_revocations_total", "result" => result).absolute(0);
    }
    for name in [
        "legate_http_requests_total",
        "legate_decisions_total",
        "legate_token_rejections_total",
        "legate_token_refusals_total",
        "legate_entity_source_calls_total",
        "legate_token_cache_hits_total",
        "legate_token_cache_misses_total",
        "legate_decision_log_dropped_total",
    ] {
        metrics::counter!(name).absolute(0);
    }
    metrics::gauge!("legate_policies_loaded").increment(0.0);
    for name in [
        "legate_http_request_duration_seconds",
        "legate_decision_duration_seconds",
    ] {
        // Registered, not recorded: the exporter shows the family with empty buckets.
        let _ = metrics::histogram!(name);
    }
}

/// `# HELP` text for every metric legate records, including those recorded by other stages.
fn describe() {
    describe_counter!(
        "legate_http_requests_total",
        "HTTP requests answered, by method, matched route and status"
    );
    describe_histogram!(
        "legate_http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request, by method and matched route"
    );
    describe_counter!(
        "legate_decisions_total",
        "Authorization decisions, by action and decision (allow|deny)"
    );
    describe_histogram!(
        "legate_decision_duration_seconds",
        Unit::Seconds,
        "Time to build and evaluate one Cedar request"
    );
    describe_counter!(
        "legate_token_rejections_total",
        "Bearer tokens refused, by reason"
    );
    describe_counter!(
        "legate_policy_reloads_total",
        "Policy reload attempts, by result (ok|unchanged|error)"
    );
    describe_gauge!(
        "legate_policies_loaded",
        "Policies in the snapshot being served"
    );
    describe_counter!(
        "legate_tokens_issued_total",
        "Token pairs legate issued for a selected legal entity, by grant"
    );
    describe_counter!(
        "legate_token_refusals_total",
        "Token refresh or exchange requests refused, by reason"
    );
    describe_counter!(
        "legate_jwks_fetches_total",
        "JWKS fetches of trusted issuers, by result (ok|error)"
    );
    describe_counter!(
        "legate_entity_source_calls_total",
        "Calls to the customer-management service, by HTTP status"
    );
    describe_counter!(
        "legate_token_revocations_total",
        "POST /oauth2/revoke requests, by result (revoked|ignored)"
    );
    describe_counter!(
        "legate_token_cache_hits_total",
        "Bearer tokens answered from the verified-token cache (revocation still checked)"
    );
    describe_counter!(
        "legate_token_cache_misses_total",
        "Bearer tokens verified in full (not in the verified-token cache)"
    );
    describe_counter!(
        "legate_decision_log_dropped_total",
        "Decision log lines dropped because the log's queue was full (its destination too slow)"
    );
    describe_gauge!("legate_build_info", "Always 1; the version is a label");
}
