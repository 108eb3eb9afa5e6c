//! Stage 1, HTTP in: thin handlers, one file per endpoint group, and the router that joins them.

pub mod authorize;
pub mod error;
pub mod extract;
pub mod forward_auth;
pub mod ops;

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
        .route(forward_auth::PATH, any(forward_auth::forward_auth))
        .route("/v1/forward-auth/", any(forward_auth::forward_auth))
        .route("/v1/forward-auth/{*path}", any(forward_auth::forward_auth))
        .route("/v1/policies", get(ops::policies))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
}
