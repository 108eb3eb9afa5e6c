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
    middleware,
    routing::{any, get, post},
    Router,
};
use tower_http::{timeout::TimeoutLayer, trace::TraceLayer};

use super::{authorize, discovery, error, forward_auth, me, observe, ops, token, ApiError};
use crate::state::AppState;

/// Every endpoint, unlayered.
fn endpoints() -> Router<AppState> {
    Router::new()
        .route("/v1/authorize", post(authorize::authorize))
        .route("/v1/authorize/batch", post(authorize::authorize_batch))
        .route(forward_auth::PATH, any(forward_auth::forward_auth))
        .route("/v1/forward-auth/", any(forward_auth::forward_auth))
        .route("/v1/forward-auth/{*path}", any(forward_auth::forward_auth))
        .route("/v1/policies", get(ops::policies))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/v1/me", get(me::me))
        .route("/v1/token/refresh", post(token::refresh))
        .route("/oauth2/token", post(token::oauth_token))
        .route("/.well-known/jwks.json", get(discovery::jwks))
        .route(
            "/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
}

/// The full router: endpoints, JSON error shapes, body limit, timeout, tracing, metrics and the
/// request id.
pub fn router(state: AppState) -> Router {
    let limits = &state.config.limits;
    endpoints()
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
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
