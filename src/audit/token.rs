//! Token events: one line per token pair issued or refused (target `legate::audit`), with
//! `legate_tokens_issued_total` and `legate_token_refusals_total{reason}`. Ids only, never a token.

use super::Audit;

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
