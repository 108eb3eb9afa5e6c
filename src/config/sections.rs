//! The configuration's sections as the file writes them, each with its documented defaults.

use std::path::PathBuf;

use serde::Deserialize;

use crate::{audit::DecisionsTo, verify::ClaimNames};

/// `[policies]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoliciesConfig {
    /// Directory holding `*.cedar`, `schema.cedarschema` and `entities.json`.
    pub dir: PathBuf,
    /// Safety net for filesystems that lose events: re-hash the directory this often (0 = never).
    pub check_interval_secs: u64,
    /// How long the watcher waits for a burst of file events to settle.
    pub debounce_ms: u64,
}

impl Default for PoliciesConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("policies"),
            check_interval_secs: 10,
            debounce_ms: 200,
        }
    }
}

impl PoliciesConfig {
    /// `debounce_ms` as a duration.
    pub fn debounce(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.debounce_ms)
    }

    /// `check_interval_secs` as a duration; `None` when the periodic check is off (0).
    pub fn check_every(&self) -> Option<std::time::Duration> {
        (self.check_interval_secs > 0)
            .then(|| std::time::Duration::from_secs(self.check_interval_secs))
    }
}

/// One `[[trust]]` entry: an identity provider whose tokens legate accepts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustConfig {
    /// Exact `iss` value.
    pub issuer: String,
    /// Accepted `aud` values (the token must name at least one).
    pub audience: Vec<String>,
    /// JWKS: a file path or an http(s) URL.
    pub jwks: String,
    /// Algorithm allow-list for this issuer.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// Minimum seconds between two JWKS fetches triggered by unknown `kid`s.
    #[serde(default = "default_jwks_refresh")]
    pub jwks_min_refresh_secs: u64,
}

fn default_algorithms() -> Vec<String> {
    vec!["RS256".into(), "ES256".into(), "EdDSA".into()]
}

fn default_jwks_refresh() -> u64 {
    5
}

/// `[claims]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClaimsConfig {
    /// Claim naming the customer (the Cedar principal).
    pub customer: String,
    /// Claim naming the selected legal entity.
    pub legal_entity: String,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway_secs: u64,
}

impl Default for ClaimsConfig {
    fn default() -> Self {
        Self {
            customer: "sub".into(),
            legal_entity: "legalEntityId".into(),
            leeway_secs: 30,
        }
    }
}

impl From<&ClaimsConfig> for ClaimNames {
    fn from(c: &ClaimsConfig) -> Self {
        Self {
            customer: c.customer.clone(),
            legal_entity: c.legal_entity.clone(),
        }
    }
}

/// `[issue]`: the tokens legate mints when a customer switches legal entity.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IssueConfig {
    /// `iss` of issued tokens; `public_url` when unset.
    pub issuer: Option<String>,
    /// `aud` of issued access tokens.
    pub audience: Vec<String>,
    /// PEM private keys; the first signs, all are published.
    pub keys: Vec<PathBuf>,
    /// Lifetime of an access token.
    pub access_ttl_secs: u64,
    /// Lifetime of a refresh token.
    pub refresh_ttl_secs: u64,
    /// No token outlives the original login by more than this.
    pub max_session_secs: u64,
    /// `client_id` of issued tokens when neither the request nor the presented token names one.
    pub default_client_id: String,
    /// Give a login without a legal entity the customer's default one.
    pub default_entity: bool,
}

impl Default for IssueConfig {
    fn default() -> Self {
        Self {
            issuer: None,
            audience: vec!["storefront".into()],
            keys: Vec::new(),
            access_ttl_secs: 900,
            refresh_ttl_secs: 28_800,
            max_session_secs: 28_800,
            default_client_id: "legate".into(),
            default_entity: true,
        }
    }
}

/// One `[[clients]]` entry: a confidential OAuth client (`client_secret_basic` / `_post`).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// `client_id`.
    pub id: String,
    /// Hex SHA-256 of the client secret (the secret itself is never configured).
    pub secret_sha256: String,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// `[store]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `memory` or `redis`.
    pub kind: StoreKind,
    /// For `redis`.
    pub url: Option<String>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            kind: StoreKind::Memory,
            url: None,
        }
    }
}

/// Where refresh-token rotation state lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// In this process only.
    Memory,
    /// Shared by replicas.
    Redis,
}

/// `[limits]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest accepted request body.
    pub body_bytes: usize,
    /// Most checks in one batch.
    pub batch_max: usize,
    /// Longest a request may take before it is answered 408.
    pub request_timeout_secs: u64,
    /// Longest a client may take to send a whole request head (from accept, or from the first
    /// byte of a keep-alive connection's next request) before the connection is dropped.
    pub header_timeout_secs: u64,
    /// Longest a keep-alive connection may sit idle between requests before it is closed.
    pub idle_timeout_secs: u64,
    /// Most connections served at once; beyond it new connections wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            body_bytes: 1_048_576,
            batch_max: 1000,
            request_timeout_secs: 10,
            header_timeout_secs: 5,
            idle_timeout_secs: 60,
            max_connections: 10_000,
        }
    }
}

/// `[forward_auth]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardAuthConfig {
    /// What an unmatched route gets: `deny` (403) or `allow`.
    pub unmatched: Unmatched,
    /// Header carrying the customer id on allow.
    pub customer_header: String,
    /// Header carrying the legal entity on allow.
    pub legal_entity_header: String,
    /// Cookie read for the token when there is no `Authorization` header.
    pub cookie: Option<String>,
}

impl Default for ForwardAuthConfig {
    fn default() -> Self {
        Self {
            unmatched: Unmatched::Deny,
            customer_header: "X-Customer-Id".into(),
            legal_entity_header: "legalEntityId".into(),
            cookie: None,
        }
    }
}

/// `forward_auth.unmatched`: what a request no route matches gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unmatched {
    /// 403 `forbidden` (the default).
    Deny,
    /// 200, with a decision log line and a counted decision like any other allow.
    Allow,
}

/// `log.format`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (the default).
    Text,
    /// One JSON object per line.
    Json,
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `legate=debug`.
    pub level: String,
    /// Decision log: `off`, `stderr`, or a file path.
    pub decisions: DecisionsTo,
    /// Fraction of allows written to the decision log (denies are always written).
    pub allow_sample_rate: f64,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
            decisions: DecisionsTo::Stderr,
            allow_sample_rate: 1.0,
        }
    }
}

/// `[shutdown]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// How long in-flight requests get to finish after SIGTERM.
    pub grace_secs: u64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self { grace_secs: 20 }
    }
}
