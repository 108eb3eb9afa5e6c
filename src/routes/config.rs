//! The `[[routes]]` entries as the configuration file writes them; [`super::RouteTable::compile`]
//! turns them into the table forward-auth matches against (once, at start-up).

use serde::Deserialize;

/// One `[[routes]]` entry for forward-auth.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// HTTP method, or `*` for any.
    pub method: String,
    /// Path pattern with `{param}` segments.
    pub path: String,
    /// Cedar action asked.
    pub action: String,
    /// Resource template.
    pub resource: RouteResource,
}

/// The resource a route asks about; `{param}`, `{customer}` and `{legal_entity}` are substituted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteResource {
    /// Entity type, with or without the namespace.
    #[serde(rename = "type")]
    pub kind: String,
    /// Entity id template.
    pub id: String,
    /// Optional fixed attributes (Cedar JSON values; strings are templates).
    pub attrs: Option<toml::Table>,
}
