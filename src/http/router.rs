//! The router: every endpoint, then the layers every request passes, innermost first.
//!
//! Order matters and is pinned by in-process tests (`tests.rs`): the body limit and the timeout
//! sit inside [`ensure_json`](super::error::ensure_json), so their 413 and 408 answers get the JSON
//! error shape too; tracing, metrics and the request id wrap everything, so 404s are counted and
//! carry an `x-request-id`.

use std::time::Duration;

use axum::{
    extract::DefaultBodyLimit,
    http::StatusCode,
    middleware::{self, map_response},
    routing::{any, get, post, MethodRouter},
    Router,
};
use tower_http::{timeout::TimeoutLayer, trace::TraceLayer};

use super::{
    authorize, discovery, error, extract, forward_auth, me, observe, ops, plan, revoke, token,
    ApiError,
};
use crate::state::AppState;

/// The methods a forward-auth endpoint answers (proxies send the original request's method).
const ANY: &[&str] = &["get", "post", "put", "patch", "delete", "head", "options"];

/// One routed path: where it is documented in the OpenAPI document (`doc_path`, with `{name}`
/// parameters; usually the same as `path`), which methods the document must describe there, and
/// its handlers. The router is built from [`ENDPOINTS`] only, and `tests/it/openapi.rs` checks every
/// entry against the document, so a route cannot be added without being documented.
#[derive(Debug)]
pub struct Endpoint {
    /// The axum route (`{*path}` for a wildcard).
    pub path: &'static str,
    /// The path in the OpenAPI document.
    pub doc_path: &'static str,
    /// Lower-case methods, as the document's keys.
    pub methods: &'static [&'static str],
    handlers: fn() -> MethodRouter<AppState>,
}

/// Every endpoint. Adding one is one entry here, its handler file, and its operation in
/// `openapi.json`.
pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint::new("/v1/authorize", &["post"], || post(authorize::authorize)),
    Endpoint::new("/v1/authorize/batch", &["post"], || {
        post(authorize::authorize_batch)
    }),
    Endpoint::new("/v1/plan", &["post"], || post(plan::plan)),
    Endpoint::new(forward_auth::PATH, ANY, || any(forward_auth::forward_auth)),
    Endpoint::documented_as("/v1/forward-auth/", forward_auth::PATH, ANY, || {
        any(forward_auth::forward_auth)
    }),
    Endpoint::documented_as(
        "/v1/forward-auth/{*path}",
        "/v1/forward-auth/{path}",
        ANY,
        || any(forward_auth::forward_auth),
    ),
    Endpoint::new("/v1/policies", &["get"], || get(ops::policies)),
    Endpoint::new("/healthz", &["get"], || get(ops::healthz)),
    Endpoint::new("/readyz", &["get"], || get(ops::readyz)),
    Endpoint::new("/v1/me", &["get"], || get(me::me)),
    Endpoint::new("/v1/token/refresh", &["post"], || {
        post(token::refresh).layer(map_response(token::no_store))
    }),
    Endpoint::new("/oauth2/token", &["post"], || post(token::oauth_token)),
    Endpoint::new("/oauth2/revoke", &["post"], || post(revoke::revoke)),
    Endpoint::new(discovery::AUTHORIZE_PATH, &["get", "post"], || {
        get(discovery::authorize).post(discovery::authorize)
    }),
    Endpoint::new("/.well-known/jwks.json", &["get"], || get(discovery::jwks)),
    Endpoint::new("/.well-known/openid-configuration", &["get"], || {
        get(discovery::openid_configuration)
    }),
    Endpoint::new("/.well-known/oauth-authorization-server", &["get"], || {
        get(discovery::authorization_server)
    }),
    Endpoint::new("/metrics", &["get"], || get(ops::metrics)),
    Endpoint::new("/openapi.json", &["get"], || get(ops::openapi)),
];

impl Endpoint {
    const fn new(
        path: &'static str,
        methods: &'static [&'static str],
        handlers: fn() -> MethodRouter<AppState>,
    ) -> Self {
        Self::documented_as(path, path, methods, handlers)
    }

    const fn documented_as(
        path: &'static str,
        doc_path: &'static str,
        methods: &'static [&'static str],
        handlers: fn() -> MethodRouter<AppState>,
    ) -> Self {
        Self {
            path,
            doc_path,
            methods,
            handlers,
        }
    }
}

/// Every endpoint, unlayered.
fn endpoints() -> Router<AppState> {
    ENDPOINTS
        .iter()
        .fold(Router::new(), |r, e| r.route(e.path, (e.handlers)()))
}

/// The full router: endpoints, JSON error shapes, body limit, timeout, tracing, metrics and the
/// request id.
pub fn router(state: AppState) -> Router {
    let limits = &state.config.limits;
    endpoints()
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn(extract::one_authorization))
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(limits.request_timeout_secs),
        ))
        .layer(middleware::from_fn(error::ensure_json))
        .layer(TraceLayer::new_for_http().make_span_with(observe::span))
        .layer(middleware::from_fn(observe::track))
        .layer(middleware::from_fn(observe::request_id))
        .with_state(state)
}
