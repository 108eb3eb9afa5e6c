//! The checks a parsed configuration must pass; each problem is one plain sentence, and every
//! problem is reported, not just the first.

use super::{
    ClaimsConfig, ClientConfig, Config, ForwardAuthConfig, IssueConfig, TrustConfig,
    SUPPORTED_ALGORITHMS,
};
use super::{EntitySourceKind, StoreKind};

/// Every check of a whole configuration, in the order the file reads.
pub(super) fn all(c: &Config, problems: &mut Vec<String>) {
    if !(c.public_url.starts_with("http://") || c.public_url.starts_with("https://")) {
        problems.push(format!(
            "`public_url` = {:?} must start with http:// or https://",
            c.public_url
        ));
    }
    if c.namespace.is_empty() || c.namespace.contains(char::is_whitespace) {
        problems.push(format!(
            "`namespace` = {:?} is not a Cedar namespace",
            c.namespace
        ));
    }
    trust(&c.trust, problems);
    claims(&c.claims, problems);
    issue(&c.issue, &c.trust, problems);
    default_issuer(c, problems);
    let own_issuer = c.issuer();
    if c.issue.audience.iter().any(|a| a == own_issuer) {
        // Refresh tokens have `aud` = legate's issuer; an access audience equal to it would
        // blur the line between the two kinds (the `typ` check still holds, but keep both).
        problems.push(format!(
            "`issue.audience` may not contain legate's own issuer {own_issuer:?} (the audience of its refresh tokens)"
        ));
    }
    if c.entities.source == EntitySourceKind::Http {
        match &c.entities.url {
            Some(u) if u.starts_with("http://") || u.starts_with("https://") => {}
            Some(u) => problems.push(format!("`entities.url` = {u:?} is not an http(s) URL")),
            None => {
                problems.push("`entities.source` is \"http\" but `entities.url` is not set".into())
            }
        }
    }
    if c.store.kind == StoreKind::Redis && c.store.url.is_none() {
        problems.push("`store.kind` is \"redis\" but `store.url` is not set".into());
    }
    let l = &c.limits;
    if l.body_bytes == 0 || l.batch_max == 0 || l.request_timeout_secs == 0 {
        problems.push("`limits` values must be greater than 0".into());
    }
    connection_limits(l, problems);
    forward_auth(&c.forward_auth, problems);
    clients(&c.clients, &c.issue, problems);
    if !(0.0..=1.0).contains(&c.log.allow_sample_rate) {
        problems.push("`log.allow_sample_rate` must be between 0 and 1".into());
    }
}

fn clients(clients: &[ClientConfig], issue: &IssueConfig, problems: &mut Vec<String>) {
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

pub(super) fn trust(trust: &[TrustConfig], problems: &mut Vec<String>) {
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

fn claims(claims: &ClaimsConfig, problems: &mut Vec<String>) {
    if claims.customer.is_empty() || claims.legal_entity.is_empty() {
        problems.push("`claims.customer` and `claims.legal_entity` must name claims".into());
    }
    let reserved = |name: &str| crate::verify::RESERVED_CLAIMS.contains(&name);
    if claims.customer != "sub" && reserved(&claims.customer) {
        problems.push(format!(
            "`claims.customer` = {:?} is a claim legate sets itself in the tokens it issues; \
             use \"sub\" or a name of your own",
            claims.customer
        ));
    }
    if reserved(&claims.legal_entity) {
        problems.push(format!(
            "`claims.legal_entity` = {:?} is a claim legate sets itself in the tokens it issues; \
             use a name of your own (e.g. \"legalEntityId\")",
            claims.legal_entity
        ));
    }
    if !claims.customer.is_empty() && claims.customer == claims.legal_entity {
        problems
            .push("`claims.customer` and `claims.legal_entity` must name different claims".into());
    }
    if claims.leeway_secs > 300 {
        problems.push("`claims.leeway_secs` above 300 is not a small leeway".into());
    }
}

fn issue(issue: &IssueConfig, trust: &[TrustConfig], problems: &mut Vec<String>) {
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

/// Without `issue.issuer` legate's issuer is `public_url`; that one must not be a `[[trust]]`
/// issuer either, or legate's own entry shadows the identity provider (every IdP token 401).
/// Trailing slashes are not told apart here, to refuse rather than guess.
fn default_issuer(c: &Config, problems: &mut Vec<String>) {
    if c.issue.issuer.is_some() {
        return;
    }
    let own = c.public_url.trim_end_matches('/');
    if c.trust
        .iter()
        .any(|t| t.issuer.trim_end_matches('/') == own)
    {
        problems.push(format!(
            "`public_url` {:?} is legate's issuer (`issue.issuer` is not set) and also a [[trust]] \
             issuer; legate's tokens must be told apart: set `issue.issuer` or `public_url` to a URL \
             of legate's own",
            c.public_url
        ));
    }
}

fn forward_auth(fa: &ForwardAuthConfig, problems: &mut Vec<String>) {
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

/// Upper bounds of the connection limits: beyond them a value is a typo, not a choice.
pub(super) const MAX_HEADER_TIMEOUT_SECS: u64 = 300;
/// See [`MAX_HEADER_TIMEOUT_SECS`].
pub(super) const MAX_IDLE_TIMEOUT_SECS: u64 = 3600;
/// See [`MAX_HEADER_TIMEOUT_SECS`].
pub(super) const MAX_CONNECTIONS: usize = 1_000_000;

/// `limits.header_timeout_secs`, `idle_timeout_secs`, `max_connections`: above 0, below a bound.
fn connection_limits(l: &super::LimitsConfig, problems: &mut Vec<String>) {
    let bounded = [
        (
            "header_timeout_secs",
            l.header_timeout_secs,
            MAX_HEADER_TIMEOUT_SECS,
        ),
        (
            "idle_timeout_secs",
            l.idle_timeout_secs,
            MAX_IDLE_TIMEOUT_SECS,
        ),
        (
            "max_connections",
            l.max_connections as u64,
            MAX_CONNECTIONS as u64,
        ),
    ];
    for (key, value, max) in bounded {
        if value == 0 || value > max {
            problems.push(format!(
                "`limits.{key}` = {value} must be between 1 and {max}"
            ));
        }
    }
}
