//! Configuration: one TOML file, overlaid with `LEGATE_*` environment variables, validated once.
//!
//! In: the file's text and a list of `(name, value)` pairs (the process environment in `main`, a `Vec`
//! in tests). Out: a [`Config`] whose values are all checked, or a [`ConfigError`] that lists every
//! problem found, not just the first. Nothing else in legate reads the environment.
//!
//! Precedence: file, then `LEGATE_<KEY>` (top level) and `LEGATE_<SECTION>__<KEY>` (inside a
//! section). Arrays of tables (`[[trust]]`, `[[routes]]`, `[[clients]]`) can only be set in the file.

mod checks;
mod env;
mod sections;

pub(crate) use crate::entities::{EntitiesConfig, EntitySourceKind};
pub(crate) use crate::routes::RouteConfig;
pub(crate) use sections::*;

use std::net::SocketAddr;

use serde::de::DeserializeOwned;

/// Every problem found in a configuration, in the order found.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .problems.join("\n  - "))]
pub struct ConfigError {
    /// One plain sentence per problem.
    pub problems: Vec<String>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// Base URL of the discovery documents (no trailing slash).
    pub public_url: String,
    /// Cedar namespace that short type names are resolved in.
    pub namespace: String,
    /// Where the policies live and how they are watched.
    pub policies: PoliciesConfig,
    /// Trusted identity providers.
    pub trust: Vec<TrustConfig>,
    /// Which token claims carry the customer and the selected legal entity.
    pub claims: ClaimsConfig,
    /// The tokens legate issues itself.
    pub issue: IssueConfig,
    /// Where assignments and legal-entity data come from.
    pub entities: EntitiesConfig,
    /// Refresh-token rotation state.
    pub store: StoreConfig,
    /// Request limits.
    pub limits: LimitsConfig,
    /// Forward-auth routes.
    pub routes: Vec<RouteConfig>,
    /// OAuth clients that must authenticate; empty: every caller is a public client.
    pub clients: Vec<ClientConfig>,
    /// Forward-auth behaviour.
    pub forward_auth: ForwardAuthConfig,
    /// Logging.
    pub log: LogConfig,
    /// Shutdown behaviour.
    pub shutdown: ShutdownConfig,
    /// `/v1/plan`: how resource types are stored, for the SQL form.
    pub plan: crate::plan::PlanConfig,
    /// What the environment overlay ignored: one sentence per `LEGATE_*` variable that names no
    /// key (the caller logs them).
    pub warnings: Vec<String>,
}

/// Algorithms legate knows how to verify (RFC 8725: no `none`, no HMAC for issuers with key sets).
pub(crate) const SUPPORTED_ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// The listen address when none is configured.
const DEFAULT_LISTEN: &str = "127.0.0.1:8181";

impl Config {
    /// Parses `text` (TOML), overlays `env` (only names starting with `LEGATE_` are read), and
    /// validates the result.
    pub fn parse(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError {
            problems: vec![format!("not valid TOML: {}", e.to_string().trim())],
        })?;
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        env::overlay(&mut table, env, &mut problems, &mut warnings);
        let mut config = Self::read(&mut table, &mut problems);
        config.warnings = warnings;
        checks::all(&config, &mut problems);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError { problems })
        }
    }

    /// Takes every section out of `table` (defaults for the missing ones); what is left over is
    /// an unknown key.
    fn read(table: &mut toml::Table, problems: &mut Vec<String>) -> Self {
        let listen: String =
            take(table, "listen", problems).unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let public_url: Option<String> = take(table, "public_url", problems);
        let config = Config {
            listen: listen.parse().unwrap_or_else(|_| {
                problems.push(format!(
                    "`listen` = {listen:?} is not an address like {DEFAULT_LISTEN}"
                ));
                SocketAddr::from(([127, 0, 0, 1], 8181))
            }),
            public_url: public_url
                .unwrap_or_else(|| format!("http://{listen}"))
                .trim_end_matches('/')
                .to_string(),
            namespace: take(table, "namespace", problems).unwrap_or_else(|| "Shop".to_string()),
            policies: take(table, "policies", problems).unwrap_or_default(),
            trust: take(table, "trust", problems).unwrap_or_default(),
            claims: take(table, "claims", problems).unwrap_or_default(),
            issue: take(table, "issue", problems).unwrap_or_default(),
            entities: take(table, "entities", problems).unwrap_or_default(),
            store: take(table, "store", problems).unwrap_or_default(),
            limits: take(table, "limits", problems).unwrap_or_default(),
            routes: take(table, "routes", problems).unwrap_or_default(),
            clients: take(table, "clients", problems).unwrap_or_default(),
            forward_auth: take(table, "forward_auth", problems).unwrap_or_default(),
            log: take(table, "log", problems).unwrap_or_default(),
            shutdown: take(table, "shutdown", problems).unwrap_or_default(),
            plan: take(table, "plan", problems).unwrap_or_default(),
            warnings: Vec::new(),
        };
        for key in table.keys() {
            problems.push(format!("unknown key `{key}`"));
        }
        config
    }

    /// The `iss` of tokens legate issues.
    pub fn issuer(&self) -> &str {
        self.issue.issuer.as_deref().unwrap_or(&self.public_url)
    }
}

/// Removes `key` from `table` and deserializes it, recording a problem when it has the wrong shape.
fn take<T: DeserializeOwned>(
    table: &mut toml::Table,
    key: &str,
    problems: &mut Vec<String>,
) -> Option<T> {
    let value = table.remove(key)?;
    match value.try_into::<T>() {
        Ok(v) => Some(v),
        Err(e) => {
            let msg = e.to_string();
            problems.push(format!("`{key}`: {}", msg.trim()));
            None
        }
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
