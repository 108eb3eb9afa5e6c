//! Stage 5, audit: one structured event per decision (target `legate::audit`) and the decision
//! counters; one event per token issued or refused, with `legate_tokens_issued_total` and
//! `legate_token_refusals_total{reason}`. Token contents never appear here beyond ids (`iss`, `jti`,
//! `sid`, customer, legal entity).

use std::time::Duration;

use crate::{decision::Decision, policy::Snapshot, request::Check, verify::VerifiedToken};

/// Where decision events go and how allows are sampled.
#[derive(Debug, Clone)]
pub struct Audit {
    allow_sample_rate: f64,
    enabled: bool,
}

impl Default for Audit {
    fn default() -> Self {
        Self {
            allow_sample_rate: 1.0,
            enabled: true,
        }
    }
}

impl Audit {
    /// `enabled = false` writes no events (counters still count); allows are kept with probability
    /// `allow_sample_rate`, denies always.
    pub fn new(enabled: bool, allow_sample_rate: f64) -> Self {
        Self {
            allow_sample_rate,
            enabled,
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
        metrics::counter!("legate_decisions_total", "action" => check.action.clone(), "decision" => decision.as_str()).increment(1);
        metrics::histogram!("legate_decision_duration_seconds").record(latency.as_secs_f64());
        if !self.enabled || (decision.allow && !sampled(self.allow_sample_rate)) {
            return;
        }
        tracing::info!(
            target: "legate::audit",
            issuer = %token.issuer,
            jti = token.jti.as_deref().unwrap_or(""),
            customer = %token.customer,
            legal_entity = token.legal_entity.as_ref().map(|l| l.0.as_str()).unwrap_or(""),
            action = %check.action,
            resource_type = %check.resource.kind,
            resource_id = %check.resource.id,
            decision = decision.as_str(),
            policies = ?decision.policies,
            errors = ?decision.errors,
            policy_hash = %snapshot.hash,
            latency_us = latency.as_micros() as u64,
            "decision"
        );
    }
}

/// What the audit log says about one token issue or refusal: ids only, never a token.
#[derive(Debug, Clone, Default)]
pub struct TokenEvent {
    /// `refresh_token` or `token_exchange`.
    pub grant: &'static str,
    /// The customer, once known.
    pub customer: Option<String>,
    /// The legal entity of the presented token.
    pub from_entity: Option<String>,
    /// The legal entity asked for.
    pub to_entity: Option<String>,
    /// `jti` of the presented token.
    pub old_jti: Option<String>,
    /// `jti` of the new access token.
    pub new_jti: Option<String>,
    /// `jti` of the new refresh token.
    pub new_refresh_jti: Option<String>,
    /// The rotation family (`sid`).
    pub family: Option<String>,
}

impl Audit {
    /// Records a token pair issued. Written whatever `log.decisions` says: issuing is rare and
    /// security-relevant.
    pub fn token_issued(&self, e: &TokenEvent) {
        metrics::counter!("legate_tokens_issued_total", "grant" => e.grant).increment(1);
        tracing::info!(
            target: "legate::audit",
            event = "token_issued",
            grant = e.grant,
            customer = e.customer.as_deref().unwrap_or(""),
            from_entity = e.from_entity.as_deref().unwrap_or(""),
            to_entity = e.to_entity.as_deref().unwrap_or(""),
            old_jti = e.old_jti.as_deref().unwrap_or(""),
            new_jti = e.new_jti.as_deref().unwrap_or(""),
            new_refresh_jti = e.new_refresh_jti.as_deref().unwrap_or(""),
            family = e.family.as_deref().unwrap_or(""),
            "token issued"
        );
    }

    /// Records a refusal: nothing was issued. `reason` is a short label, `detail` the error text.
    pub fn token_refused(&self, e: &TokenEvent, reason: &'static str, detail: &str) {
        metrics::counter!("legate_token_refusals_total", "reason" => reason).increment(1);
        tracing::warn!(
            target: "legate::audit",
            event = "token_refused",
            grant = e.grant,
            reason,
            detail,
            customer = e.customer.as_deref().unwrap_or(""),
            from_entity = e.from_entity.as_deref().unwrap_or(""),
            to_entity = e.to_entity.as_deref().unwrap_or(""),
            old_jti = e.old_jti.as_deref().unwrap_or(""),
            family = e.family.as_deref().unwrap_or(""),
            "token refused"
        );
    }
}

fn sampled(rate: f64) -> bool {
    if rate >= 1.0 {
        return true;
    }
    if rate <= 0.0 {
        return false;
    }
    let r = uuid::Uuid::new_v4().as_u128() as u64;
    (r as f64 / u64::MAX as f64) < rate
}
