//! Stage 5, audit: the decision counters and the decision log, one JSON line per decision; one
//! event per token issued or refused (target `legate::audit`), with `legate_tokens_issued_total` and
//! `legate_token_refusals_total{reason}`. Token contents never appear here beyond ids (`iss`, `jti`,
//! `sid`, customer, legal entity).
//!
//! A decision line holds who asked (issuer, `jti`, customer, legal entity), what (action, resource
//! type and id), the answer (decision, determining policies, errors), against which policy set (its
//! hash), how long it took, and the request's `x-request-id`. Allows are kept with probability
//! `log.allow_sample_rate`; denies are always kept.
//!
//! Lines go to stderr or a file (`log.decisions`) through `log.rs` (the writer thread); token events
//! are `token.rs`.

mod log;
mod token;

pub(crate) use log::{DecisionLog, DecisionsTo};
pub(crate) use token::TokenEvent;

use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::{
    decision::Decision, policy::Snapshot, request::Check, shared::rfc3339, verify::VerifiedToken,
};

/// The action an unmatched forward-auth allow is recorded under (never a schema action name:
/// those are identifiers, and this one is counted under its own label).
pub(crate) const UNMATCHED_ACTION: &str = "unmatched";

tokio::task_local! {
    /// The `x-request-id` of the request being served on this task.
    static REQUEST_ID: String;
}

/// Runs `fut` (an HTTP request's handling) with `id` as the request id its decisions are logged
/// under. A task-local rather than a parameter: every stage that records a decision (authorize,
/// forward-auth, token refresh) gets it without threading it through its signature.
pub(crate) async fn with_request_id<F: std::future::Future>(id: String, fut: F) -> F::Output {
    REQUEST_ID.scope(id, fut).await
}

fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Counts decisions and writes the decision log.
#[derive(Debug, Default)]
pub struct Audit {
    log: Option<DecisionLog>,
    allow_sample_rate: f64,
}

impl Audit {
    /// Counters only, no decision log (`log.decisions = "off"`, the CLI).
    pub fn disabled() -> Self {
        Self::default()
    }

    /// Counters, and lines to `log` with allows kept with probability `allow_sample_rate`.
    pub fn new(log: Option<DecisionLog>, allow_sample_rate: f64) -> Self {
        Self {
            log,
            allow_sample_rate,
        }
    }

    /// Records one decision.
    pub fn decision(
        &self,
        token: &VerifiedToken,
        check: &Check,
        decision: &Decision,
        snapshot: &Snapshot,
        latency: Duration,
    ) {
        // Only actions the schema declares become label values: callers cannot add series.
        let action =
            if snapshot.actions().contains_key(&check.action) || check.action == UNMATCHED_ACTION {
                check.action.clone()
            } else {
                "unknown".to_string()
            };
        metrics::counter!("legate_decisions_total", "action" => action, "decision" => decision.as_str()).increment(1);
        metrics::histogram!("legate_decision_duration_seconds").record(latency.as_secs_f64());
        let Some(log) = &self.log else {
            return;
        };
        if decision.allow && !sampled(self.allow_sample_rate) {
            return;
        }
        let line = DecisionLine {
            time: timestamp(SystemTime::now()),
            request_id: current_request_id(),
            issuer: &token.issuer,
            jti: token.jti.as_deref(),
            customer: &token.customer.0,
            legal_entity: token.legal_entity.as_ref().map(|l| l.0.as_str()),
            action: &check.action,
            resource: ResourceIds {
                kind: &check.resource.kind,
                id: &check.resource.id,
            },
            decision: decision.as_str(),
            policies: &decision.policies,
            errors: &decision.errors,
            policy_hash: snapshot.hash(),
            latency_us: u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
        };
        log.write(&line);
    }
}

/// One line of the decision log.
#[derive(Debug, Serialize)]
struct DecisionLine<'a> {
    time: String,
    request_id: Option<String>,
    issuer: &'a str,
    jti: Option<&'a str>,
    customer: &'a str,
    legal_entity: Option<&'a str>,
    action: &'a str,
    resource: ResourceIds<'a>,
    decision: &'static str,
    policies: &'a [String],
    errors: &'a [String],
    policy_hash: &'a str,
    latency_us: u64,
}

/// The resource by type and id only: attributes may hold business data.
#[derive(Debug, Serialize)]
struct ResourceIds<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: &'a str,
}

/// RFC 3339 UTC with milliseconds.
fn timestamp(t: SystemTime) -> String {
    let secs = rfc3339(t);
    let millis = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_millis())
        .unwrap_or(0);
    format!("{}.{millis:03}Z", secs.trim_end_matches('Z'))
}

fn sampled(rate: f64) -> bool {
    if rate >= 1.0 {
        return true;
    }
    if rate <= 0.0 {
        return false;
    }
    // Not a UUID's bits: a v4 UUID fixes some of them (the low 64 start with `10`).
    let mut bytes = [0u8; 8];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        return true; // when in doubt, keep the record
    }
    (u64::from_le_bytes(bytes) as f64 / u64::MAX as f64) < rate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_milliseconds() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_000_000_042);
        assert_eq!(timestamp(t), "2026-11-18T11:06:40.042Z");
    }

    #[test]
    fn sampling_keeps_all_none_or_some() {
        assert!((0..100).all(|_| sampled(1.0)));
        assert!((0..100).all(|_| !sampled(0.0)));
        let kept = (0..10_000).filter(|_| sampled(0.5)).count();
        assert!((4_000..6_000).contains(&kept), "{kept}");
    }
}
