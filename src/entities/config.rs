//! The `[entities]` section: where assignments and legal-entity data come from. Owned here so the
//! entity sources need nothing from `config` (which re-exports it).

use serde::Deserialize;

/// `[entities]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EntitiesConfig {
    /// `file` (`policies/entities.json`) or `http` (the customer-management service).
    pub source: EntitySourceKind,
    /// For `http`: `{customer}` is replaced by the customer id.
    pub url: Option<String>,
    /// For `http`: how long an answer is reused.
    pub cache_ttl_secs: u64,
    /// For `http`: how long one call may take.
    pub timeout_ms: u64,
}

impl Default for EntitiesConfig {
    fn default() -> Self {
        Self {
            source: EntitySourceKind::File,
            url: None,
            cache_ttl_secs: 60,
            timeout_ms: 2_000,
        }
    }
}

/// Where entity data comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntitySourceKind {
    /// `entities.json` beside the policies.
    File,
    /// The customer-management service.
    Http,
}
