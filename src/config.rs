//! Configuration: one TOML file, overlaid with `LEGATE_*` environment variables, validated once.
//!
//! In: the file's text and a list of `(name, value)` pairs (the process environment in `main`, a `Vec`
//! in tests). Out: a [`Config`] whose values are all checked, or a [`ConfigError`] that lists every
//! problem found, not just the first. Nothing else in legate reads the environment.
//!
//! Precedence: file, then `LEGATE_<KEY>` (top level) and `LEGATE_<SECTION>__<KEY>` (inside a
//! section). Arrays of tables (`[[trust]]`, `[[routes]]`) can only be set in the file.

use std::{net::SocketAddr, path::PathBuf};

use serde::{de::DeserializeOwned, Deserialize};

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
}

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
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            body_bytes: 1_048_576,
            batch_max: 1000,
            request_timeout_secs: 10,
        }
    }
}

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

/// `[forward_auth]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardAuthConfig {
    /// What an unmatched route gets: `deny` (403) or `allow`.
    pub unmatched: String,
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
            unmatched: "deny".into(),
            customer_header: "X-Customer-Id".into(),
            legal_entity_header: "legalEntityId".into(),
            cookie: None,
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter, e.g. `info` or `legate=debug`.
    pub level: String,
    /// Decision log: `off`, `stderr`, or a file path.
    pub decisions: String,
    /// Fraction of allows written to the decision log (denies are always written).
    pub allow_sample_rate: f64,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "text".into(),
            level: "info".into(),
            decisions: "stderr".into(),
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

/// Algorithms legate knows how to verify (RFC 8725: no `none`, no HMAC for issuers with key sets).
pub const SUPPORTED_ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

impl Config {
    /// Parses `text` (TOML), overlays `env` (only names starting with `LEGATE_` are read), and
    /// validates the result.
    pub fn parse(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let mut table: toml::Table = match text.parse() {
            Ok(t) => t,
            Err(e) => {
                return Err(ConfigError {
                    problems: vec![format!("not valid TOML: {}", e.to_string().trim())],
                })
            }
        };
        overlay_env(&mut table, env, &mut problems);

        let listen: String = take(&mut table, "listen", &mut problems)
            .unwrap_or_else(|| "127.0.0.1:8181".to_string());
        let public_url: Option<String> = take(&mut table, "public_url", &mut problems);
        let namespace: String =
            take(&mut table, "namespace", &mut problems).unwrap_or_else(|| "Shop".to_string());
        let policies: PoliciesConfig =
            take(&mut table, "policies", &mut problems).unwrap_or_default();
        let trust: Vec<TrustConfig> = take(&mut table, "trust", &mut problems).unwrap_or_default();
        let claims: ClaimsConfig = take(&mut table, "claims", &mut problems).unwrap_or_default();
        let issue: IssueConfig = take(&mut table, "issue", &mut problems).unwrap_or_default();
        let entities: EntitiesConfig =
            take(&mut table, "entities", &mut problems).unwrap_or_default();
        let store: StoreConfig = take(&mut table, "store", &mut problems).unwrap_or_default();
        let limits: LimitsConfig = take(&mut table, "limits", &mut problems).unwrap_or_default();
        let routes: Vec<RouteConfig> =
            take(&mut table, "routes", &mut problems).unwrap_or_default();
        let clients: Vec<ClientConfig> =
            take(&mut table, "clients", &mut problems).unwrap_or_default();
        let forward_auth: ForwardAuthConfig =
            take(&mut table, "forward_auth", &mut problems).unwrap_or_default();
        let log: LogConfig = take(&mut table, "log", &mut problems).unwrap_or_default();
        let shutdown: ShutdownConfig =
            take(&mut table, "shutdown", &mut problems).unwrap_or_default();
        for key in table.keys() {
            problems.push(format!("unknown key `{key}`"));
        }

        let listen_addr = match listen.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                problems.push(format!(
                    "`listen` = {listen:?} is not an address like 127.0.0.1:8181"
                ));
                None
            }
        };
        let public_url = public_url
            .unwrap_or_else(|| format!("http://{listen}"))
            .trim_end_matches('/')
            .to_string();
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            problems.push(format!(
                "`public_url` = {public_url:?} must start with http:// or https://"
            ));
        }
        if namespace.is_empty() || namespace.contains(char::is_whitespace) {
            problems.push(format!(
                "`namespace` = {namespace:?} is not a Cedar namespace"
            ));
        }
        check_trust(&trust, &mut problems);
        check_claims(&claims, &mut problems);
        check_issue(&issue, &trust, &mut problems);
        let own_issuer = issue.issuer.as_deref().unwrap_or(&public_url);
        if issue.audience.iter().any(|a| a == own_issuer) {
            // Refresh tokens have `aud` = legate's issuer; an access audience equal to it would
            // blur the line between the two kinds (the `typ` check still holds, but keep both).
            problems.push(format!(
                "`issue.audience` may not contain legate's own issuer {own_issuer:?} (the audience of its refresh tokens)"
            ));
        }
        if entities.source == EntitySourceKind::Http {
            match &entities.url {
                Some(u) if u.starts_with("http://") || u.starts_with("https://") => {}
                Some(u) => problems.push(format!("`entities.url` = {u:?} is not an http(s) URL")),
                None => problems
                    .push("`entities.source` is \"http\" but `entities.url` is not set".into()),
            }
        }
        if store.kind == StoreKind::Redis && store.url.is_none() {
            problems.push("`store.kind` is \"redis\" but `store.url` is not set".into());
        }
        if limits.body_bytes == 0 || limits.batch_max == 0 || limits.request_timeout_secs == 0 {
            problems.push("`limits` values must be greater than 0".into());
        }
        if !matches!(forward_auth.unmatched.as_str(), "deny" | "allow") {
            problems.push(format!(
                "`forward_auth.unmatched` = {:?} must be \"deny\" or \"allow\"",
                forward_auth.unmatched
            ));
        }
        check_forward_auth(&routes, &forward_auth, &mut problems);
        check_clients(&clients, &issue, &mut problems);
        if !matches!(log.format.as_str(), "text" | "json") {
            problems.push(format!(
                "`log.format` = {:?} must be \"text\" or \"json\"",
                log.format
            ));
        }
        if !(0.0..=1.0).contains(&log.allow_sample_rate) {
            problems.push("`log.allow_sample_rate` must be between 0 and 1".into());
        }

        match listen_addr {
            Some(listen) if problems.is_empty() => Ok(Config {
                listen,
                public_url,
                namespace,
                policies,
                trust,
                claims,
                issue,
                entities,
                store,
                limits,
                routes,
                clients,
                forward_auth,
                log,
                shutdown,
            }),
            _ => Err(ConfigError { problems }),
        }
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

/// Applies `LEGATE_KEY` / `LEGATE_SECTION__KEY` variables onto the parsed file.
fn overlay_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
    problems: &mut Vec<String>,
) {
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix("LEGATE_") else {
            continue;
        };
        // Variables read elsewhere (e.g. by the test suite) but not configuration keys.
        if rest.is_empty() || rest == "LOG" || rest.starts_with("TEST_") {
            continue;
        }
        let value = env_value(&raw);
        let rest = rest.to_ascii_lowercase();
        match rest.split_once("__") {
            None => {
                table.insert(rest, value);
            }
            Some((section, key)) => {
                let entry = table
                    .entry(section.to_string())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                match entry {
                    toml::Value::Table(t) => {
                        t.insert(key.to_string(), value);
                    }
                    _ => problems.push(format!(
                        "{name}: `{section}` is not a section that can be set from the environment"
                    )),
                }
            }
        }
    }
}

/// Reads an environment value as a TOML value (`60`, `true`, `["a"]`), else as a plain string.
fn env_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

fn check_trust(trust: &[TrustConfig], problems: &mut Vec<String>) {
    for (i, t) in trust.iter().enumerate() {
        let at = format!("[[trust]] #{} ({:?})", i + 1, t.issuer);
        if t.issuer.is_empty() {
            problems.push(format!("{at}: `issuer` is empty"));
        }
        if t.audience.is_empty() {
            problems.push(format!(
                "{at}: `audience` is empty; tokens must be bound to an audience"
            ));
        }
        if t.jwks.is_empty() {
            problems.push(format!("{at}: `jwks` is empty"));
        }
        if t.algorithms.is_empty() {
            problems.push(format!("{at}: `algorithms` is empty"));
        }
        for alg in &t.algorithms {
            if !SUPPORTED_ALGORITHMS.contains(&alg.as_str()) {
                problems.push(format!(
                    "{at}: algorithm {alg:?} is not allowed (choose from {})",
                    SUPPORTED_ALGORITHMS.join(", ")
                ));
            }
        }
        if trust[..i].iter().any(|o| o.issuer == t.issuer) {
            problems.push(format!("{at}: issuer listed twice"));
        }
    }
}

fn check_claims(claims: &ClaimsConfig, problems: &mut Vec<String>) {
    if claims.customer.is_empty() || claims.legal_entity.is_empty() {
        problems.push("`claims.customer` and `claims.legal_entity` must name claims".into());
    }
    if claims.leeway_secs > 300 {
        problems.push("`claims.leeway_secs` above 300 is not a small leeway".into());
    }
}

fn check_issue(issue: &IssueConfig, trust: &[TrustConfig], problems: &mut Vec<String>) {
    if let Some(iss) = &issue.issuer {
        if trust.iter().any(|t| &t.issuer == iss) {
            problems.push(format!(
                "`issue.issuer` {iss:?} is also a [[trust]] issuer; legate's tokens must be told apart"
            ));
        }
    }
    if issue.audience.is_empty() {
        problems.push("`issue.audience` is empty".into());
    }
    if issue.access_ttl_secs == 0 || issue.refresh_ttl_secs == 0 || issue.max_session_secs == 0 {
        problems.push("`issue` lifetimes must be greater than 0".into());
    }
}

fn check_clients(clients: &[ClientConfig], issue: &IssueConfig, problems: &mut Vec<String>) {
    if issue.default_client_id.is_empty() {
        problems.push("`issue.default_client_id` is empty".into());
    }
    for (i, c) in clients.iter().enumerate() {
        let at = format!("[[clients]] #{} ({:?})", i + 1, c.id);
        if c.id.is_empty() || c.id.chars().any(char::is_control) {
            problems.push(format!(
                "{at}: `id` must be non-empty, without control characters"
            ));
        }
        if c.secret_sha256.len() != 64 || !c.secret_sha256.chars().all(|h| h.is_ascii_hexdigit()) {
            problems.push(format!(
                "{at}: `secret_sha256` must be 64 hex digits (the SHA-256 of the secret)"
            ));
        }
        if clients[..i].iter().any(|o| o.id == c.id) {
            problems.push(format!("{at}: client listed twice"));
        }
    }
}

fn check_forward_auth(routes: &[RouteConfig], fa: &ForwardAuthConfig, problems: &mut Vec<String>) {
    if let Err(mut p) = crate::routes::RouteTable::compile(routes) {
        problems.append(&mut p);
    }
    for (key, name) in [
        ("customer_header", &fa.customer_header),
        ("legal_entity_header", &fa.legal_entity_header),
    ] {
        if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            problems.push(format!(
                "`forward_auth.{key}` = {name:?} is not an HTTP header name"
            ));
        }
    }
    if fa
        .customer_header
        .eq_ignore_ascii_case(&fa.legal_entity_header)
    {
        problems.push(
            "`forward_auth.customer_header` and `forward_auth.legal_entity_header` must differ"
                .into(),
        );
    }
    if let Some(c) = &fa.cookie {
        let token_char = |c: char| c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?={}".contains(c);
        if c.is_empty() || !c.chars().all(token_char) {
            problems.push(format!(
                "`forward_auth.cookie` = {c:?} is not a cookie name"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn empty_file_gives_the_documented_defaults() {
        let c = Config::parse("", env(&[])).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8181");
        assert_eq!(c.public_url, "http://127.0.0.1:8181");
        assert_eq!(c.issuer(), "http://127.0.0.1:8181");
        assert_eq!(c.namespace, "Shop");
        assert_eq!(c.claims.customer, "sub");
        assert_eq!(c.claims.legal_entity, "legalEntityId");
        assert_eq!(c.claims.leeway_secs, 30);
        assert_eq!(c.limits.batch_max, 1000);
        assert_eq!(c.limits.body_bytes, 1_048_576);
        assert_eq!(c.issue.access_ttl_secs, 900);
        assert_eq!(c.entities.source, EntitySourceKind::File);
        assert_eq!(c.store.kind, StoreKind::Memory);
    }

    #[test]
    fn env_overrides_file_at_top_level_and_in_sections() {
        let c = Config::parse(
            "listen = \"127.0.0.1:1\"\n[limits]\nbatch_max = 5\n",
            env(&[
                ("LEGATE_LISTEN", "127.0.0.1:9999"),
                ("LEGATE_LIMITS__BATCH_MAX", "7"),
                ("LEGATE_CLAIMS__LEGAL_ENTITY", "le"),
                ("HOME", "/root"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.limits.batch_max, 7);
        assert_eq!(c.claims.legal_entity, "le");
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let err = Config::parse(
            "listen = \"nowhere\"\nbogus = 1\n[limits]\nbatch_max = \"many\"\n\
             [[trust]]\nissuer = \"https://idp\"\naudience = []\njwks = \"k.json\"\nalgorithms = [\"none\", \"HS256\"]\n",
            env(&[]),
        )
        .unwrap_err();
        let all = err.problems.join("\n");
        assert!(all.contains("unknown key `bogus`"), "{all}");
        assert!(all.contains("`limits`"), "{all}");
        assert!(all.contains("`listen`"), "{all}");
        assert!(all.contains("\"none\" is not allowed"), "{all}");
        assert!(all.contains("\"HS256\" is not allowed"), "{all}");
        assert!(all.contains("`audience` is empty"), "{all}");
        assert!(err.problems.len() >= 6, "{all}");
    }

    #[test]
    fn unknown_key_inside_a_section_is_refused() {
        let err = Config::parse("[claims]\ncustomr = \"sub\"\n", env(&[])).unwrap_err();
        assert!(err.problems[0].contains("customr"), "{:?}", err.problems);
    }

    #[test]
    fn issue_audience_may_not_be_legates_own_issuer() {
        let err = Config::parse(
            "public_url = \"http://l:1\"\n[issue]\naudience = [\"http://l:1\"]\n",
            env(&[]),
        )
        .unwrap_err();
        assert!(
            err.problems[0].contains("refresh tokens"),
            "{:?}",
            err.problems
        );
    }

    #[test]
    fn issue_issuer_may_not_be_a_trusted_issuer() {
        let err = Config::parse(
            "[[trust]]\nissuer = \"https://x\"\naudience = [\"a\"]\njwks = \"j\"\n[issue]\nissuer = \"https://x\"\n",
            env(&[]),
        )
        .unwrap_err();
        assert!(err.problems[0].contains("told apart"));
    }

    #[test]
    fn bad_routes_and_forward_auth_settings_are_config_problems() {
        let err = Config::parse(
            "listen = \"nowhere\"\n\
             [[routes]]\nmethod = \"GET\"\npath = \"/orders/{id}\"\naction = \"viewOrder\"\n\
             resource = { type = \"Order\", id = \"{order}\" }\n\
             [[routes]]\nmethod = \"GET\"\npath = \"orders\"\naction = \"listOrders\"\n\
             resource = { type = \"Order\", id = \"all\" }\n\
             [forward_auth]\nlegal_entity_header = \"legal entity\"\ncookie = \"a;b\"\n",
            env(&[]),
        )
        .unwrap_err();
        let all = err.problems.join("\n");
        assert!(all.contains("`listen`"), "{all}");
        assert!(
            all.contains(
                "[[routes]] #1 (GET /orders/{id}): `resource.id`: unknown placeholder {order}"
            ),
            "{all}"
        );
        assert!(all.contains("[[routes]] #2 (GET orders): `path`"), "{all}");
        assert!(all.contains("`forward_auth.legal_entity_header`"), "{all}");
        assert!(all.contains("`forward_auth.cookie`"), "{all}");
    }

    #[test]
    fn clients_are_checked_and_never_printed_with_their_hash() {
        let good = "a".repeat(64);
        let c = Config::parse(
            &format!("[[clients]]\nid = \"shop\"\nsecret_sha256 = \"{good}\"\n"),
            env(&[]),
        )
        .unwrap();
        assert_eq!(c.clients.len(), 1);
        assert!(
            !format!("{c:?}").contains(&good),
            "the hash is not in Debug output"
        );
        assert_eq!(c.issue.default_client_id, "legate");
        assert!(c.issue.default_entity);
        let err = Config::parse(
            &format!(
                "[issue]\ndefault_client_id = \"\"\n\
                 [[clients]]\nid = \"\"\nsecret_sha256 = \"xyz\"\n\
                 [[clients]]\nid = \"a\"\nsecret_sha256 = \"{good}\"\n\
                 [[clients]]\nid = \"a\"\nsecret_sha256 = \"{good}\"\n"
            ),
            env(&[]),
        )
        .unwrap_err();
        let all = err.problems.join("\n");
        assert!(all.contains("`issue.default_client_id` is empty"), "{all}");
        assert!(all.contains("#1 (\"\"): `id` must be non-empty"), "{all}");
        assert!(
            all.contains("#1 (\"\"): `secret_sha256` must be 64 hex digits"),
            "{all}"
        );
        assert!(all.contains("#3 (\"a\"): client listed twice"), "{all}");
    }

    #[test]
    fn routes_parse_with_the_documented_defaults() {
        let c = Config::parse(
            "[[routes]]\nmethod = \"GET\"\npath = \"/legal-entities/{id}\"\n\
             action = \"selectLegalEntity\"\nresource = { type = \"LegalEntity\", id = \"{id}\" }\n",
            env(&[]),
        )
        .unwrap();
        assert_eq!(c.routes.len(), 1);
        assert_eq!(c.forward_auth.unmatched, "deny");
        assert_eq!(c.forward_auth.customer_header, "X-Customer-Id");
        assert_eq!(c.forward_auth.legal_entity_header, "legalEntityId");
        assert_eq!(c.forward_auth.cookie, None);
    }
}
