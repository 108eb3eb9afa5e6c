//! Stage 1, HTTP in: thin handlers, one file per endpoint group, and the router that joins them.

pub mod authorize;
pub mod discovery;
pub mod error;
pub mod extract;
pub mod forward_auth;
pub mod me;
pub mod observe;
pub mod ops;
pub mod plan;
pub mod token;

use axum::{
    routing::{any, get, post},
    Router,
};

use crate::app::AppState;
pub use error::ApiError;

/// Every endpoint, unlayered (see `app::router` for limits, timeouts and tracing).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/authorize", post(authorize::authorize))
        .route("/v1/authorize/batch", post(authorize::authorize_batch))
        .route("/v1/plan", post(plan::plan))
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
