//! Stage 5, audit: one structured event per decision (target `legate::audit`) and the decision
//! counters. Token contents never appear here beyond ids (`iss`, `jti`, customer, legal entity).

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
